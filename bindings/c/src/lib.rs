//! The C face of loadmon: a small, stable ABI over `loadmon::blocking`.
//!
//! Conventions: opaque handles with `_new`/`_free` (here `_start`/`_free`) pairs; functions
//! return an `int` status (`LOADMON_OK` = 0, see `LoadmonStatus`); a failing call sets a
//! per-thread message readable with `loadmon_last_error()`. Outputs are written only on success.
//! No panic unwinds into C: every entry point catches it and returns `LOADMON_INTERNAL`.
//! Strings returned to C are freed with `loadmon_string_free()`.
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use loadmon::blocking::{run_client, EventPoll, Events, ServerHandle};
use loadmon::client::{ClientConfig, Context, Workload};
use loadmon::file_writer::{FileWriter, FileWriterConfig, KeepFiles, SyncMode};
use loadmon::server::ServerConfig;
use loadmon::Error;

/// Status codes returned by every `int` function. Numbers are stable and never reused.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadmonStatus {
    /// Success.
    LOADMON_OK = 0,
    /// A NULL pointer, invalid UTF-8 or an out-of-range value was passed.
    LOADMON_INVALID_ARGUMENT = 1,
    /// A setting is invalid (the seed's validation rules, a bad sync mode, …).
    LOADMON_CONFIG = 2,
    /// A file or socket operation failed (the message names the path or address).
    LOADMON_IO = 3,
    /// The peer broke the protocol, refused us, or speaks another major version.
    LOADMON_PROTOCOL = 4,
    /// Something did not happen in time (e.g. `loadmon_server_wait` with a timeout).
    LOADMON_TIMEOUT = 5,
    /// A bug in loadmon (including a caught panic). Please report it.
    LOADMON_INTERNAL = 6,
    /// The workload (a C callback) failed, or the run was interrupted.
    LOADMON_WORKLOAD = 7,
}

use LoadmonStatus::*;

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_error(msg: impl Into<String>) {
    let msg = msg.into().replace('\0', " ");
    let c = CString::new(msg).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Records `e` as this thread's last error and returns its status code.
fn fail(e: Error) -> c_int {
    let code = match &e {
        Error::Config(_) => LOADMON_CONFIG,
        Error::File { .. } | Error::Net { .. } | Error::Disconnected(_) => LOADMON_IO,
        Error::Protocol(_) | Error::VersionMismatch { .. } | Error::Refused(_) => LOADMON_PROTOCOL,
        Error::Timeout(_) => LOADMON_TIMEOUT,
        Error::Workload(_) | Error::Interrupted(_) => LOADMON_WORKLOAD,
        _ => LOADMON_INTERNAL,
    };
    set_error(e.to_string());
    code as c_int
}

fn invalid(msg: &str) -> c_int {
    set_error(msg);
    LOADMON_INVALID_ARGUMENT as c_int
}

/// Runs `body`, turning a panic into `LOADMON_INTERNAL` with a message.
fn guard(body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(format!("internal error: panic in loadmon: {what}"));
            LOADMON_INTERNAL as c_int
        }
    }
}

/// A required C string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn required_str(p: *const c_char, name: &str) -> Result<String, c_int> {
    if p.is_null() {
        return Err(invalid(&format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| invalid(&format!("{name} is not valid UTF-8")))
}

/// An optional C string argument (NULL = not set).
///
/// # Safety
/// As [`required_str`].
unsafe fn optional_str(p: *const c_char, name: &str) -> Result<Option<String>, c_int> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { required_str(p, name) }.map(Some)
    }
}

/// Hands a Rust string to C (freed with `loadmon_string_free`), if the caller wants it.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
unsafe fn give_string(out: *mut *mut c_char, s: String) {
    if !out.is_null() {
        let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { *out = c.into_raw() };
    }
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// The core client settings from the fields both C client configs share.
fn client_config(
    host: String,
    port: u16,
    heartbeat_period_ms: u32,
    stats_period_ms: u32,
    connect_timeout_ms: u32,
    token: Option<String>,
) -> ClientConfig {
    ClientConfig {
        host,
        port,
        heartbeat_period: millis(heartbeat_period_ms),
        stats_period: millis(stats_period_ms),
        connect_timeout: millis(connect_timeout_ms),
        token,
        ..ClientConfig::default()
    }
}

/// A duration as whole milliseconds for a C config field (saturating).
fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Settings of a server. Initialise with `loadmon_server_config_default()`, then change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonServerConfig {
    /// Address to bind (default "127.0.0.1"). Must not be NULL.
    pub host: *const c_char,
    /// Port to bind; 0 picks a free one (read it with `loadmon_server_port`). Default 1234.
    pub port: u16,
    /// Most clients at once; extra ones are refused. Default 5.
    pub max_clients: u32,
    /// The first client id. Default 100.
    pub first_client_id: u32,
    /// Milliseconds without a heartbeat before a client is TIMED OUT. Default 15000.
    pub heartbeat_timeout_ms: u32,
    /// Where to write the JSON report when the server stops; NULL for none.
    pub report_json_path: *const c_char,
    /// Milliseconds a new connection has to send get_cid. Default 10000.
    pub handshake_timeout_ms: u32,
    /// Shared secret clients must send; NULL for none.
    pub token: *const c_char,
    /// Directory for the session log file; NULL for no file.
    pub log_dir: *const c_char,
    /// "host:port" for the HTTP JSON API, Prometheus /metrics and dashboard (port 0 picks one;
    /// read it with `loadmon_server_http_port`); NULL (the default) for none.
    pub http: *const c_char,
    /// Where to write the CSV report when the server stops; NULL for none.
    pub report_csv_path: *const c_char,
    /// Where to write the HTML report (table and charts) when the server stops; NULL for none.
    pub report_html_path: *const c_char,
}

/// Settings of a file-writing test client. Initialise with
/// `loadmon_test_client_config_default()`, then change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonTestClientConfig {
    /// Server host (default "127.0.0.1"). Must not be NULL.
    pub host: *const c_char,
    /// Server port. Default 1234.
    pub port: u16,
    /// Run time, seconds. Default 15.
    pub run_time_s: u32,
    /// Chunk size, MB (MiB). Default 10.
    pub chunk_size_mb: u32,
    /// File size, MB (MiB). Default 50.
    pub file_size_mb: u32,
    /// Directory for the data files (default "client_files"). Must not be NULL.
    pub out_dir: *const c_char,
    /// Smallest chunk allowed, MB. Default 10.
    pub min_chunk_size_mb: u32,
    /// "none", "file" (fsync each file) or "direct" (O_DIRECT); NULL means "none".
    pub sync: *const c_char,
    /// Finished files to keep; 0 keeps all. Default 2.
    pub keep_files: u32,
    /// Milliseconds between heartbeats. Default 5000.
    pub heartbeat_period_ms: u32,
    /// Milliseconds between stats reports. Default 10000.
    pub stats_period_ms: u32,
    /// Milliseconds to keep retrying an unreachable server. Default 5000.
    pub connect_timeout_ms: u32,
    /// Shared secret for the server; NULL for none.
    pub token: *const c_char,
}

/// Settings of a generic client (`loadmon_client_run`). Initialise with
/// `loadmon_client_config_default()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonClientConfig {
    /// Server host (default "127.0.0.1"). Must not be NULL.
    pub host: *const c_char,
    /// Server port. Default 1234.
    pub port: u16,
    /// Milliseconds between heartbeats. Default 5000.
    pub heartbeat_period_ms: u32,
    /// Milliseconds between stats reports. Default 10000.
    pub stats_period_ms: u32,
    /// Run time the callback can count down with `loadmon_client_context_time_is_up`;
    /// 0 for none. Default 0.
    pub run_time_ms: u32,
    /// Milliseconds to keep retrying an unreachable server. Default 5000.
    pub connect_timeout_ms: u32,
    /// File size and chunk size (MB) announced in `file_stats`; 0 and 0 announce nothing.
    pub chunk_size_mb: u32,
    /// See `chunk_size_mb`.
    pub file_size_mb: u32,
    /// Shared secret for the server; NULL for none.
    pub token: *const c_char,
}

const DEFAULT_HOST: &CStr = c"127.0.0.1";
const DEFAULT_OUT_DIR: &CStr = c"client_files";

/// Fills `cfg` with the defaults (loopback, port 1234, 5 clients, first id 100, 15 s heartbeat
/// timeout, no JSON report). Does nothing if `cfg` is NULL.
///
/// # Safety
/// `cfg` is NULL or points to a writable `LoadmonServerConfig`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_config_default(cfg: *mut LoadmonServerConfig) {
    if cfg.is_null() {
        return;
    }
    let d = ServerConfig::default();
    let c = LoadmonServerConfig {
        host: DEFAULT_HOST.as_ptr(),
        port: d.port,
        max_clients: u32::try_from(d.max_clients).unwrap_or(u32::MAX),
        first_client_id: d.first_client_id,
        heartbeat_timeout_ms: ms(d.heartbeat_timeout),
        report_json_path: std::ptr::null(),
        handshake_timeout_ms: ms(d.handshake_timeout),
        token: std::ptr::null(),
        log_dir: std::ptr::null(),
        http: std::ptr::null(),
        report_csv_path: std::ptr::null(),
        report_html_path: std::ptr::null(),
    };
    // SAFETY: non-NULL and writable per the contract.
    unsafe { cfg.write(c) };
}

/// Fills `cfg` with the seed's defaults (15 s, 10 MB chunks, 50 MB files, `client_files`).
/// Does nothing if `cfg` is NULL.
///
/// # Safety
/// `cfg` is NULL or points to a writable `LoadmonTestClientConfig`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_test_client_config_default(cfg: *mut LoadmonTestClientConfig) {
    if cfg.is_null() {
        return;
    }
    let (c, w) = (ClientConfig::default(), FileWriterConfig::default());
    let v = LoadmonTestClientConfig {
        host: DEFAULT_HOST.as_ptr(),
        port: c.port,
        run_time_s: w.run_time_s as u32,
        chunk_size_mb: w.chunk_size_mb as u32,
        file_size_mb: w.file_size_mb as u32,
        out_dir: DEFAULT_OUT_DIR.as_ptr(),
        min_chunk_size_mb: w.min_chunk_size_mb as u32,
        sync: std::ptr::null(),
        keep_files: match w.keep_files {
            KeepFiles::All => 0,
            KeepFiles::Last(n) => u32::try_from(n).unwrap_or(u32::MAX),
        },
        heartbeat_period_ms: ms(c.heartbeat_period),
        stats_period_ms: ms(c.stats_period),
        connect_timeout_ms: ms(c.connect_timeout),
        token: std::ptr::null(),
    };
    // SAFETY: non-NULL and writable per the contract.
    unsafe { cfg.write(v) };
}

/// Fills `cfg` with the generic client's defaults. Does nothing if `cfg` is NULL.
///
/// # Safety
/// `cfg` is NULL or points to a writable `LoadmonClientConfig`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_config_default(cfg: *mut LoadmonClientConfig) {
    if cfg.is_null() {
        return;
    }
    let c = ClientConfig::default();
    let v = LoadmonClientConfig {
        host: DEFAULT_HOST.as_ptr(),
        port: c.port,
        heartbeat_period_ms: ms(c.heartbeat_period),
        stats_period_ms: ms(c.stats_period),
        run_time_ms: 0,
        connect_timeout_ms: ms(c.connect_timeout),
        chunk_size_mb: 0,
        file_size_mb: 0,
        token: std::ptr::null(),
    };
    // SAFETY: non-NULL and writable per the contract.
    unsafe { cfg.write(v) };
}

/// A running server (opaque).
pub struct LoadmonServer {
    handle: ServerHandle,
}

/// Starts a server in the background and returns its handle in `*out`.
///
/// Returns `LOADMON_OK`, `LOADMON_INVALID_ARGUMENT` (NULL `cfg`/`out`/`host`, bad UTF-8),
/// `LOADMON_CONFIG` or `LOADMON_IO` (the address cannot be bound).
///
/// # Safety
/// `cfg` points to a valid config whose strings are NULL or NUL-terminated; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_start(
    cfg: *const LoadmonServerConfig,
    out: *mut *mut LoadmonServer,
) -> c_int {
    guard(|| {
        if cfg.is_null() || out.is_null() {
            return invalid("loadmon_server_start: cfg and out must not be NULL");
        }
        // SAFETY: non-NULL per the check; valid per the contract.
        let c = unsafe { *cfg };
        // SAFETY (every optional_str/required_str below): strings are NULL or NUL-terminated per the contract.
        let parsed = (|| -> Result<ServerConfig, c_int> {
            Ok(ServerConfig {
                host: unsafe { required_str(c.host, "host") }?,
                port: c.port,
                max_clients: c.max_clients as usize,
                first_client_id: c.first_client_id,
                heartbeat_timeout: millis(c.heartbeat_timeout_ms),
                handshake_timeout: millis(c.handshake_timeout_ms),
                token: unsafe { optional_str(c.token, "token") }?,
                report_json: unsafe { optional_str(c.report_json_path, "report_json_path") }?
                    .map(PathBuf::from),
                log_dir: unsafe { optional_str(c.log_dir, "log_dir") }?.map(PathBuf::from),
                http: unsafe { optional_str(c.http, "http") }?,
                report_csv: unsafe { optional_str(c.report_csv_path, "report_csv_path") }?
                    .map(PathBuf::from),
                report_html: unsafe { optional_str(c.report_html_path, "report_html_path") }?
                    .map(PathBuf::from),
                ..ServerConfig::default()
            })
        })();
        let config = match parsed {
            Ok(c) => c,
            Err(code) => return code,
        };
        match ServerHandle::start(config) {
            Ok(handle) => {
                // SAFETY: `out` is non-NULL and writable.
                unsafe { *out = Box::into_raw(Box::new(LoadmonServer { handle })) };
                LOADMON_OK as c_int
            }
            Err(e) => fail(e),
        }
    })
}

/// The port the server is bound to (the real one when 0 was asked); 0 if `server` is NULL.
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_port(server: *const LoadmonServer) -> u16 {
    // SAFETY: NULL or live per the contract.
    match unsafe { server.as_ref() } {
        Some(s) => catch_unwind(AssertUnwindSafe(|| s.handle.port())).unwrap_or(0),
        None => 0,
    }
}

/// The HTTP listener's port; 0 if the server has none or `server` is NULL.
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_http_port(server: *const LoadmonServer) -> u16 {
    // SAFETY: NULL or live per the contract.
    match unsafe { server.as_ref() } {
        Some(s) => catch_unwind(AssertUnwindSafe(|| {
            s.handle.http_addr().map_or(0, |a| a.port())
        }))
        .unwrap_or(0),
        None => 0,
    }
}

/// A subscription to a server's live events (see `loadmon_server_events`).
pub struct LoadmonEvents {
    events: Events,
}

/// Subscribes to the server's live events (client connected, id assigned, status changed,
/// stats sample, file rollover, heartbeat missed, refused, lagged, and the final report last)
/// and returns the subscription in `*out`, to read with `loadmon_events_next` and free with
/// `loadmon_events_free`. Subscribe before clients connect to see every event.
///
/// # Safety
/// `server` is a live handle; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_events(
    server: *const LoadmonServer,
    out: *mut *mut LoadmonEvents,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return invalid("loadmon_server_events: server is NULL");
        };
        if out.is_null() {
            return invalid("loadmon_server_events: out is NULL");
        }
        match s.handle.events() {
            Ok(events) => {
                // SAFETY: `out` is non-NULL and writable.
                unsafe { *out = Box::into_raw(Box::new(LoadmonEvents { events })) };
                LOADMON_OK as c_int
            }
            Err(e) => fail(e),
        }
    })
}

/// Waits up to `timeout_ms` (0 = as long as it takes) for the next event. `LOADMON_OK` with
/// the event as one line of JSON (no newline; `"event"` names the kind) in `*event_json`, to
/// free with `loadmon_string_free`; `LOADMON_OK` with `*event_json` set to NULL once the stream
/// is over (after the final report); `LOADMON_TIMEOUT` if none came in time.
///
/// # Safety
/// `events` is a live subscription used by one thread at a time; `event_json` is writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_events_next(
    events: *mut LoadmonEvents,
    timeout_ms: u32,
    event_json: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live, and not shared between threads, per the contract.
        let Some(ev) = (unsafe { events.as_mut() }) else {
            return invalid("loadmon_events_next: events is NULL");
        };
        if event_json.is_null() {
            return invalid("loadmon_events_next: event_json is NULL");
        }
        let timeout = (timeout_ms > 0).then(|| millis(timeout_ms));
        match ev.events.next_timeout(timeout) {
            EventPoll::Event(e) => {
                // SAFETY: non-NULL and writable per the check and the contract.
                unsafe { give_string(event_json, e.to_json_line().trim_end().to_string()) };
                LOADMON_OK as c_int
            }
            EventPoll::Ended => {
                // SAFETY: as above.
                unsafe { *event_json = std::ptr::null_mut() };
                LOADMON_OK as c_int
            }
            EventPoll::Timeout => fail(Error::Timeout(format!("no event within {timeout_ms} ms"))),
        }
    })
}

/// Frees a subscription. NULL is a no-op.
///
/// # Safety
/// `events` is NULL or a live subscription, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn loadmon_events_free(events: *mut LoadmonEvents) {
    if !events.is_null() {
        // SAFETY: a live subscription from `loadmon_server_events`, given up by the caller.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(events) })));
    }
}

/// Waits until the server stops by itself (at least one client came and all are gone), up to
/// `timeout_ms` (0 = wait forever). On `LOADMON_OK`, `*report_json` (if `report_json` is not
/// NULL) receives the JSON report, to free with `loadmon_string_free`. `LOADMON_TIMEOUT` if the
/// server is still running.
///
/// # Safety
/// `server` is a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_wait(
    server: *mut LoadmonServer,
    timeout_ms: u32,
    report_json: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return invalid("loadmon_server_wait: server is NULL");
        };
        let timeout = (timeout_ms > 0).then(|| millis(timeout_ms));
        match s.handle.wait(timeout) {
            Ok(report) => {
                // SAFETY: NULL or writable per the contract.
                unsafe { give_string(report_json, report.to_json()) };
                LOADMON_OK as c_int
            }
            Err(e) => fail(e),
        }
    })
}

/// Stops the server (running clients become ABORTED, reason "server stopped"), waits for the
/// report and returns it in `*report_json` (if not NULL). Stopping a stopped server returns
/// the same report.
///
/// # Safety
/// `server` is a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_stop(
    server: *mut LoadmonServer,
    report_json: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return invalid("loadmon_server_stop: server is NULL");
        };
        match s.handle.stop() {
            Ok(report) => {
                // SAFETY: NULL or writable per the contract.
                unsafe { give_string(report_json, report.to_json()) };
                LOADMON_OK as c_int
            }
            Err(e) => fail(e),
        }
    })
}

/// The report in `*report_json`, to free with `loadmon_string_free`: the final report once the
/// run is over — also when `loadmon_server_wait`/`_stop` returned `LOADMON_IO` because a report
/// file could not be written — and the report so far while it runs.
///
/// # Safety
/// `server` is a live handle; `report_json` is writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_report(
    server: *const LoadmonServer,
    report_json: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return invalid("loadmon_server_report: server is NULL");
        };
        if report_json.is_null() {
            return invalid("loadmon_server_report: report_json is NULL");
        }
        // SAFETY: non-NULL and writable per the check and the contract.
        unsafe { give_string(report_json, s.handle.report().to_json()) };
        LOADMON_OK as c_int
    })
}

/// A JSON array of every client so far, with live figures (the JSON report's client objects
/// plus `last_heartbeat_age_s`), in `*clients_json`.
///
/// # Safety
/// `server` is a live handle; `clients_json` is writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_snapshot(
    server: *const LoadmonServer,
    clients_json: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        let Some(s) = (unsafe { server.as_ref() }) else {
            return invalid("loadmon_server_snapshot: server is NULL");
        };
        if clients_json.is_null() {
            return invalid("loadmon_server_snapshot: clients_json is NULL");
        }
        let json = serde_json::to_string(&s.handle.snapshot()).unwrap_or_else(|_| "[]".into());
        // SAFETY: non-NULL and writable per the contract.
        unsafe { give_string(clients_json, json) };
        LOADMON_OK as c_int
    })
}

/// Stops the server if it is running and frees the handle. `NULL` is a no-op. Using the
/// handle afterwards is undefined behaviour.
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_free(server: *mut LoadmonServer) {
    if server.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: allocated by Box::into_raw in loadmon_server_start, freed once.
        drop(unsafe { Box::from_raw(server) });
    }));
}

/// Runs one file-writing test client to the end (validation, connect, write for the run time,
/// `done`). On `LOADMON_OK`, `*result_json` (if not NULL) receives the result as JSON
/// (`client_id`, `files_written`, `bytes_written`, `run_time_s`, `throughput_mb_s`,
/// `chunk_p50_ms`, `chunk_p99_ms`, `heartbeats_sent`, `stats_sent`).
///
/// # Safety
/// `cfg` points to a valid config whose strings are NULL or NUL-terminated; `result_json` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_test_client_run(
    cfg: *const LoadmonTestClientConfig,
    result_json: *mut *mut c_char,
) -> c_int {
    guard(|| {
        if cfg.is_null() {
            return invalid("loadmon_test_client_run: cfg is NULL");
        }
        // SAFETY: non-NULL; valid per the contract.
        let c = unsafe { *cfg };
        // SAFETY (all): strings are NULL or NUL-terminated per the contract.
        let strings = (|| -> Result<_, c_int> {
            Ok((
                unsafe { required_str(c.host, "host") }?,
                unsafe { required_str(c.out_dir, "out_dir") }?,
                unsafe { optional_str(c.sync, "sync") }?,
                unsafe { optional_str(c.token, "token") }?,
            ))
        })();
        let (host, out_dir, sync, token) = match strings {
            Ok(s) => s,
            Err(code) => return code,
        };
        let sync = match sync.as_deref().map(str::parse::<SyncMode>).transpose() {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => return fail(e),
        };
        let client = client_config(
            host,
            c.port,
            c.heartbeat_period_ms,
            c.stats_period_ms,
            c.connect_timeout_ms,
            token,
        );
        let writer = FileWriterConfig {
            run_time_s: f64::from(c.run_time_s),
            chunk_size_mb: u64::from(c.chunk_size_mb),
            file_size_mb: u64::from(c.file_size_mb),
            min_chunk_size_mb: u64::from(c.min_chunk_size_mb),
            out_dir: PathBuf::from(out_dir),
            sync,
            keep_files: match c.keep_files {
                0 => KeepFiles::All,
                n => KeepFiles::Last(n as usize),
            },
        };
        match FileWriter::new(writer).and_then(|w| run_client(client, w)) {
            Ok(r) => {
                // SAFETY: NULL or writable per the contract.
                unsafe { give_string(result_json, r.to_json()) };
                LOADMON_OK as c_int
            }
            Err(e) => fail(e),
        }
    })
}

/// What a custom workload callback receives (opaque). Valid only during the callback.
pub struct LoadmonClientContext {
    inner: Context,
    error: Option<String>,
}

/// A custom workload: called once after the server's `run_tests`. Return 0 for success (the
/// client sends `done`); anything else fails the run (the server marks the client FAILED with
/// the message given to `loadmon_client_context_set_error`, or a generic one).
pub type LoadmonWorkloadFn =
    Option<unsafe extern "C" fn(ctx: *mut LoadmonClientContext, user_data: *mut c_void) -> c_int>;

struct CWorkload {
    run_tests: unsafe extern "C" fn(*mut LoadmonClientContext, *mut c_void) -> c_int,
    user_data: *mut c_void,
    run_time: Option<Duration>,
    file_stats: Option<(u64, u64)>,
}

// SAFETY: the C caller hands `user_data` to the engine for the duration of
// `loadmon_client_run`, documented as used from one engine thread.
unsafe impl Send for CWorkload {}

impl Workload for CWorkload {
    fn file_stats(&self) -> Option<(u64, u64)> {
        self.file_stats
    }

    fn run_time(&self) -> Option<Duration> {
        self.run_time
    }

    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        let mut c = LoadmonClientContext {
            inner: ctx.clone(),
            error: None,
        };
        // SAFETY: the function pointer and user_data come from the C caller, who promises the
        // callback is callable with these arguments while loadmon_client_run runs.
        let code = unsafe { (self.run_tests)(&mut c, self.user_data) };
        if code == 0 {
            Ok(())
        } else {
            Err(Error::Workload(c.error.take().unwrap_or_else(|| {
                format!("the run_tests callback returned {code}")
            })))
        }
    }
}

/// Runs a generic client whose workload is `run_tests(ctx, user_data)`, called on an engine
/// thread after the server's `run_tests`; heartbeats and stats are sent meanwhile. On
/// `LOADMON_OK`, `*result_json` (if not NULL) receives the result. A non-zero return from the
/// callback gives `LOADMON_WORKLOAD`.
///
/// # Safety
/// `cfg` is valid; `run_tests` is a valid function; `user_data` is whatever the callback
/// expects (it is used from another thread); `result_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_run(
    cfg: *const LoadmonClientConfig,
    run_tests: LoadmonWorkloadFn,
    user_data: *mut c_void,
    result_json: *mut *mut c_char,
) -> c_int {
    guard(|| {
        if cfg.is_null() {
            return invalid("loadmon_client_run: cfg is NULL");
        }
        let Some(run_tests) = run_tests else {
            return invalid("loadmon_client_run: run_tests is NULL");
        };
        // SAFETY: non-NULL; valid per the contract.
        let c = unsafe { *cfg };
        // SAFETY: strings are NULL or NUL-terminated per the contract.
        let (host, token) = match (unsafe { required_str(c.host, "host") }, unsafe {
            optional_str(c.token, "token")
        }) {
            (Ok(h), Ok(t)) => (h, t),
            (Err(code), _) | (_, Err(code)) => return code,
        };
        let config = client_config(
            host,
            c.port,
            c.heartbeat_period_ms,
            c.stats_period_ms,
            c.connect_timeout_ms,
            token,
        );
        let workload = CWorkload {
            run_tests,
            user_data,
            run_time: (c.run_time_ms > 0).then(|| millis(c.run_time_ms)),
            file_stats: match (c.chunk_size_mb, c.file_size_mb) {
                (0, 0) => None,
                (ch, f) => Some((u64::from(ch), u64::from(f))),
            },
        };
        match run_client(config, workload) {
            Ok(r) => {
                // SAFETY: NULL or writable per the contract.
                unsafe { give_string(result_json, r.to_json()) };
                LOADMON_OK as c_int
            }
            Err(e) => fail(e),
        }
    })
}

/// The client id the server assigned; 0 if `ctx` is NULL.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_id(ctx: *const LoadmonClientContext) -> u32 {
    // SAFETY: NULL or live per the contract.
    unsafe { ctx.as_ref() }.map_or(0, |c| c.inner.client_id())
}

/// 1 if the run should end (run time over, server gone, cancelled), 0 if not; 1 if `ctx` is
/// NULL.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_time_is_up(
    ctx: *const LoadmonClientContext,
) -> c_int {
    // SAFETY: NULL or live per the contract.
    unsafe { ctx.as_ref() }.map_or(1, |c| c_int::from(c.inner.time_is_up()))
}

/// Milliseconds left of the run time, or -1 if the client has none (or `ctx` is NULL).
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_remaining_ms(
    ctx: *const LoadmonClientContext,
) -> i64 {
    // SAFETY: NULL or live per the contract.
    unsafe { ctx.as_ref() }
        .and_then(|c| c.inner.remaining())
        .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Reports one completed file (`file_roll`).
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_file_rollover(
    ctx: *mut LoadmonClientContext,
) -> c_int {
    // SAFETY: NULL or live per the contract.
    match unsafe { ctx.as_ref() } {
        Some(c) => match c.inner.file_rollover() {
            Ok(()) => LOADMON_OK as c_int,
            Err(e) => fail(e),
        },
        None => invalid("loadmon_client_context_file_rollover: ctx is NULL"),
    }
}

/// Records one write of `n_bytes` that took `latency_us` microseconds.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_record_write(
    ctx: *mut LoadmonClientContext,
    n_bytes: u64,
    latency_us: u64,
) -> c_int {
    // SAFETY: NULL or live per the contract.
    match unsafe { ctx.as_ref() } {
        Some(c) => match c
            .inner
            .record_write(n_bytes, Duration::from_micros(latency_us))
        {
            Ok(()) => LOADMON_OK as c_int,
            Err(e) => fail(e),
        },
        None => invalid("loadmon_client_context_record_write: ctx is NULL"),
    }
}

/// Sends `send_stats:<cpu_pct>:<mem_pct>`; `LOADMON_CONFIG` for a negative or non-finite value.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_send_stats(
    ctx: *mut LoadmonClientContext,
    cpu_pct: f64,
    mem_pct: f64,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        match unsafe { ctx.as_ref() } {
            Some(c) => match c.inner.send_stats(cpu_pct, mem_pct) {
                Ok(()) => LOADMON_OK as c_int,
                Err(e) => fail(e),
            },
            None => invalid("loadmon_client_context_send_stats: ctx is NULL"),
        }
    })
}

/// Sets the failure reason the server will record if the callback returns non-zero.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback; `message` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_set_error(
    ctx: *mut LoadmonClientContext,
    message: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        let Some(c) = (unsafe { ctx.as_mut() }) else {
            return invalid("loadmon_client_context_set_error: ctx is NULL");
        };
        // SAFETY: NULL or NUL-terminated per the contract.
        match unsafe { required_str(message, "message") } {
            Ok(m) => {
                c.error = Some(m);
                LOADMON_OK as c_int
            }
            Err(code) => code,
        }
    })
}

/// Renders a JSON report (from `loadmon_server_wait`/`_stop`) as the seed's text report, in
/// `*text` (free with `loadmon_string_free`). `LOADMON_CONFIG` if the JSON is not a report.
///
/// # Safety
/// `report_json` is NULL or NUL-terminated; `text` is writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_report_text(
    report_json: *const c_char,
    text: *mut *mut c_char,
) -> c_int {
    guard(|| {
        if text.is_null() {
            return invalid("loadmon_report_text: text is NULL");
        }
        // SAFETY: NULL or NUL-terminated per the contract.
        let json = match unsafe { required_str(report_json, "report_json") } {
            Ok(j) => j,
            Err(code) => return code,
        };
        match loadmon::Report::from_json(&json) {
            Ok(r) => {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { give_string(text, r.to_text()) };
                LOADMON_OK as c_int
            }
            Err(e) => fail(e),
        }
    })
}

/// This thread's last error message, or NULL if no call on this thread has failed. Valid until
/// the next failing call on the same thread; do not free it.
#[no_mangle]
pub extern "C" fn loadmon_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
}

/// Frees a string returned by loadmon. `NULL` is a no-op.
///
/// # Safety
/// `s` is NULL or a string returned by loadmon, freed only once.
#[no_mangle]
pub unsafe extern "C" fn loadmon_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: allocated by CString::into_raw in give_string, freed once.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The library version, e.g. "0.1.0" (static; do not free).
#[no_mangle]
pub extern "C" fn loadmon_version() -> *const c_char {
    static VERSION: &CStr = {
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        }
    };
    VERSION.as_ptr()
}
