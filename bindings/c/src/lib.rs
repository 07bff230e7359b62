//! The C face of loadmon: a small, stable ABI over `loadmon::blocking`.
//!
//! Conventions (the models are rustls-ffi, sqlite3 and libcurl):
//! - Opaque handles with `_start`/`_free` pairs; `_free(NULL)` is a no-op.
//! - Every function that can fail returns a `LoadmonStatus` (`LOADMON_OK` = 0) and writes its
//!   outputs through pointers, only on success; a failing call sets a per-thread message readable
//!   with `loadmon_last_error()`. A few getters that cannot fail for a live handle return their
//!   value instead; each one's doc comment says so and what NULL gives.
//! - Every `extern "C"` function runs inside one guard (`ffi`, `ffi_value`, `ffi_void`):
//!   no panic unwinds into C (it becomes `LOADMON_INTERNAL`), NULL arguments are
//!   `LOADMON_INVALID_ARGUMENT`. A test (`tests/guard.rs`) checks that no function skips it.
//! - Strings returned to C are freed with `loadmon_string_free()`.
//! - Numbers in configs are `int64_t` and converted with `loadmon::config`, so an out-of-range
//!   value is `LOADMON_CONFIG` naming the field, as in Python; `-1` stands for Python's `None`
//!   where a setting has no value (`LOADMON_KEEP_ALL`, `LOADMON_NO_RUN_TIME`,
//!   `LOADMON_NO_FILE_STATS`, `LOADMON_NO_FLEET`, `LOADMON_NO_START_TIMEOUT`). Durations are milliseconds (`_ms`) everywhere.
//! - Config structs can grow: each starts with `struct_size`, set by its `_default` function
//!   from the caller's `sizeof`; a smaller (older) struct is accepted and the fields it lacks
//!   take their defaults. Fields are only ever appended, and no struct has tail padding (a unit
//!   test checks), so an appended field always starts at or after every older `sizeof`.
#![allow(non_camel_case_types)]

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use loadmon::blocking::{ClientHandle, EventPoll, Events, ServerHandle, WorkerHandle};
use loadmon::client::{ClientConfig, ClientResult, Context, Workload};
use loadmon::config::{self, integer, millis, wait_timeout_ms, Count, Zero};
use loadmon::error::ErrorKind;
use loadmon::file_writer::{FileWriter, FileWriterConfig, KeepFiles, SyncMode};
use loadmon::logging::{
    set_log_sink, LogDelivery, LogLevel, LogRecord, LOG_DRAIN, LOG_QUEUE_CAPACITY,
};
use loadmon::plan::Plan;
use loadmon::server::{FleetConfig, ServerConfig};
use loadmon::worker::{WorkerConfig, WorkerSummary};
use loadmon::Error;

/// Major version of the library (`LOADMON_VERSION_MAJOR`); the SONAME is
/// `libloadmon.so.<major>`. Checked against the crate version when the library is built.
pub const LOADMON_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const LOADMON_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const LOADMON_VERSION_PATCH: u32 = 0;

/// A decimal string as a number, at compile time (for the version check).
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "version part is not a number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The header's version macros are generated from the constants above: a version bump in
// Cargo.toml that forgets them does not build.
const _: () = assert!(
    LOADMON_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR"))
        && LOADMON_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR"))
        && LOADMON_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")),
    "LOADMON_VERSION_* must match the crate version"
);

/// `keep_files`: keep every finished file (can fill the disk on a long run).
pub const LOADMON_KEEP_ALL: i64 = -1;
/// `run_time_ms` of `LoadmonClientConfig`: the client has no run time (the callback decides
/// when it is done).
pub const LOADMON_NO_RUN_TIME: i64 = -1;
/// `chunk_size_mb`/`file_size_mb` of `LoadmonClientConfig`: announce no `file_stats`.
pub const LOADMON_NO_FILE_STATS: i64 = -1;
/// A `timeout_ms` that waits as long as it takes (any negative value does).
pub const LOADMON_WAIT_FOREVER: i64 = -1;
/// `expect_clients` of `LoadmonServerConfig`: no fleet mode (each client starts at its
/// `ready`, as the seed's server did); 0 is `LOADMON_CONFIG`.
pub const LOADMON_NO_FLEET: i64 = -1;
/// `start_timeout_ms` of `LoadmonServerConfig`: wait for every expected client however long.
pub const LOADMON_NO_START_TIMEOUT: i64 = -1;

/// Status codes returned by every function that can fail. Numbers are stable and never
/// reused; `loadmon_status_str()` names them.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadmonStatus {
    /// Success.
    LOADMON_OK = 0,
    /// A NULL pointer, invalid UTF-8 or a bad `struct_size` was passed.
    LOADMON_INVALID_ARGUMENT = 1,
    /// A setting is invalid: out of range (the field is named), the seed's validation rules, a
    /// bad sync mode, …
    LOADMON_CONFIG = 2,
    /// A file or socket operation failed, or the peer went away (the message names the path
    /// or address).
    LOADMON_IO = 3,
    /// The peer broke the protocol, refused us, or speaks another major version.
    LOADMON_PROTOCOL = 4,
    /// Something did not happen in time (e.g. `loadmon_server_wait` with a timeout).
    LOADMON_TIMEOUT = 5,
    /// A bug in loadmon (including a caught panic). Please report it.
    LOADMON_INTERNAL = 6,
    /// The workload (a C callback) failed, or the run was interrupted.
    LOADMON_WORKLOAD = 7,
    /// The call does not fit the state of what it is called on (e.g. setting the log callback
    /// from inside the log callback, reporting to a run that is over).
    LOADMON_STATE = 8,
}

use LoadmonStatus::*;

/// The status for an error kind: the one mapping from the core's errors, with no wildcard arm
/// (a new kind must be mapped here to build).
fn status_of(kind: ErrorKind) -> LoadmonStatus {
    match kind {
        ErrorKind::Config => LOADMON_CONFIG,
        ErrorKind::File | ErrorKind::Net | ErrorKind::Bind | ErrorKind::Disconnected => LOADMON_IO,
        ErrorKind::Protocol | ErrorKind::VersionMismatch | ErrorKind::Refused => LOADMON_PROTOCOL,
        ErrorKind::Timeout => LOADMON_TIMEOUT,
        ErrorKind::Workload | ErrorKind::Interrupted => LOADMON_WORKLOAD,
        ErrorKind::State => LOADMON_STATE,
        ErrorKind::Internal => LOADMON_INTERNAL,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

fn set_error(msg: &str) {
    let c = c_string(msg);
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Why a call failed, before it becomes a status and this thread's last error.
#[derive(Debug)]
enum Fail {
    /// A NULL pointer, bad UTF-8 or a bad `struct_size` (`LOADMON_INVALID_ARGUMENT`).
    Invalid(String),
    /// An error of the core (its kind gives the status).
    Core(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Core(e)
    }
}

type Res<T = ()> = Result<T, Fail>;

fn invalid(msg: impl Into<String>) -> Fail {
    Fail::Invalid(msg.into())
}

/// Records a failure of `name` as this thread's last error; returns its status.
fn record(name: &str, f: Fail) -> LoadmonStatus {
    match f {
        Fail::Invalid(m) => {
            set_error(&format!("{name}: {m}"));
            LOADMON_INVALID_ARGUMENT
        }
        Fail::Core(e) => {
            set_error(&e.to_string());
            status_of(e.kind())
        }
    }
}

/// Runs `body` for the function `name`, turning a panic into an internal error: the result
/// or the panic's error, never an unwind into C.
fn guarded<T>(name: &str, body: impl FnOnce() -> Res<T>) -> Res<T> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|p| Err(Error::from_panic(name, p.as_ref()).into()))
}

/// The guard of every function returning a status: `LOADMON_OK`, or the failure's status with
/// this thread's last error set.
fn ffi(name: &str, body: impl FnOnce() -> Res) -> LoadmonStatus {
    match guarded(name, body) {
        Ok(()) => LOADMON_OK,
        Err(f) => record(name, f),
    }
}

/// The guard of a getter that returns its value: `fallback` (documented per getter) on a
/// failure, with this thread's last error set.
fn ffi_value<T>(name: &str, fallback: T, body: impl FnOnce() -> Res<T>) -> T {
    match guarded(name, body) {
        Ok(v) => v,
        Err(f) => {
            record(name, f);
            fallback
        }
    }
}

/// The guard of a function returning nothing (`_free`): a failure only sets the last error.
fn ffi_void(name: &str, body: impl FnOnce() -> Res) {
    if let Err(f) = guarded(name, body) {
        record(name, f);
    }
}

/// A non-NULL pointer as a shared reference.
///
/// # Safety
/// `p` is NULL or valid for reads of a `T` for the call.
unsafe fn arg<'a, T>(p: *const T, what: &str) -> Res<&'a T> {
    // SAFETY: NULL or valid per the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// A non-NULL pointer as a mutable reference.
///
/// # Safety
/// `p` is NULL or valid for reads and writes of a `T` for the call, not aliased.
unsafe fn arg_mut<'a, T>(p: *mut T, what: &str) -> Res<&'a mut T> {
    // SAFETY: NULL or valid per the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// Frees a handle given to C by `Box::into_raw`; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or from `Box::into_raw`, not used afterwards and freed only once.
unsafe fn free_boxed<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A non-NULL output pointer.
fn out_arg<T>(p: *mut T, what: &str) -> Res<*mut T> {
    if p.is_null() {
        Err(invalid(format!("{what} is NULL")))
    } else {
        Ok(p)
    }
}

/// A required C string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn required_str(p: *const c_char, name: &str) -> Res<String> {
    if p.is_null() {
        return Err(invalid(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| invalid(format!("{name} is not valid UTF-8")))
}

/// An optional C string argument (NULL = not set).
///
/// # Safety
/// As [`required_str`].
unsafe fn optional_str(p: *const c_char, name: &str) -> Res<Option<String>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { required_str(p, name) }.map(Some)
    }
}

/// An optional array of C strings ended by a NULL entry (NULL = none). At most `max` + 1
/// entries are read: more than `max` is the core's error to report.
///
/// # Safety
/// `p` is NULL or points to an array of NUL-terminated strings ended by a NULL entry.
unsafe fn optional_str_list(p: *const *const c_char, name: &str, max: usize) -> Res<Vec<String>> {
    let mut out = Vec::new();
    if p.is_null() {
        return Ok(out);
    }
    for i in 0..=max {
        // SAFETY: every entry before `i` was non-NULL, so the array goes on to `i` at least.
        let entry = unsafe { p.add(i).read() };
        if entry.is_null() {
            break;
        }
        // SAFETY: a non-NULL entry is NUL-terminated per the contract.
        out.push(unsafe { required_str(entry, &format!("{name}[{i}]")) }?);
    }
    Ok(out)
}

/// Hands a Rust string to C (freed with `loadmon_string_free`), if the caller wants it.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
unsafe fn give_string(out: *mut *mut c_char, s: &str) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { *out = c_string(s).into_raw() };
    }
}

/// A C integer setting whose only bounds are its type's (`LOADMON_CONFIG` naming `name` if it
/// does not fit).
fn int<T: loadmon::config::Integer>(name: &str, v: i64) -> Res<T> {
    Ok(integer::<T>(name, i128::from(v))?)
}

/// A C integer setting with the core's rule for it (`LOADMON_CONFIG` naming `name` and the
/// rule's bounds if it is outside them).
fn count<T: loadmon::config::Integer>(rule: Count, name: &str, v: i64) -> Res<T> {
    Ok(rule.get::<T>(name, i128::from(v))?)
}

/// A C millisecond setting as a duration, with the core's rule for it (`zero`: whether 0 is
/// allowed); out of bounds is `LOADMON_CONFIG` naming `name` and the bounds.
fn ms_setting(name: &str, v: i64, zero: Zero) -> Res<Duration> {
    Ok(millis(name, v, zero)?)
}

/// A duration as whole milliseconds for a C config default.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An unsigned default as a C `int64_t`.
fn num(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// A run time in seconds (the core's `f64`) as C milliseconds, for a config default.
fn run_time_ms(s: f64) -> i64 {
    Duration::try_from_secs_f64(s).map_or(i64::MAX, ms)
}

/// `keep_files` as C has it (`LOADMON_KEEP_ALL` for all), for a config default.
fn keep_files_c(k: KeepFiles) -> i64 {
    match k {
        KeepFiles::All => LOADMON_KEEP_ALL,
        KeepFiles::Last(n) => num(n),
    }
}

/// A C `keep_files` setting named `name` (`LOADMON_KEEP_ALL` or at least 1) with the core's
/// rules.
fn keep_files_setting(name: &str, v: i64) -> Res<KeepFiles> {
    Ok(match v {
        LOADMON_KEEP_ALL => KeepFiles::All,
        n => KeepFiles::setting(name, i128::from(n), "LOADMON_KEEP_ALL")?,
    })
}

/// A C sync mode (NULL: the default).
///
/// # Safety
/// `p` is NULL or NUL-terminated.
unsafe fn sync_setting(p: *const c_char, name: &str) -> Res<SyncMode> {
    // SAFETY: forwarded contract.
    Ok(match unsafe { optional_str(p, name) }? {
        Some(s) => s.parse::<SyncMode>()?,
        None => SyncMode::default(),
    })
}

/// A config struct that starts with `struct_size` and grows by appending fields.
///
/// # Safety
/// `FIELDS` lists every field after `struct_size` as (offset, size), in order; the struct is
/// `repr(C)`, `Copy`, and made of plain data and raw pointers.
unsafe trait Growable: Copy {
    /// The struct as the `_default` function fills it, at full size.
    fn defaults() -> Self;
    /// (offset, size) of every field after `struct_size`.
    const FIELDS: &'static [(usize, usize)];
    /// The name for messages.
    const NAME: &'static str;
}

/// The caller's config of `struct_size` bytes over the defaults: each field that lies wholly
/// within `struct_size` comes from the caller, the others keep their defaults.
///
/// # Safety
/// `p` is NULL or points to at least `p->struct_size` readable bytes laid out as `T`'s prefix.
unsafe fn read_config<T: Growable>(p: *const T, what: &str) -> Res<T> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL; every config starts with a size_t struct_size.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    check_size::<T>(size, what)?;
    let mut out = T::defaults();
    let (src, dst) = (p.cast::<u8>(), (&raw mut out).cast::<u8>());
    for &(off, len) in T::FIELDS.iter().filter(|&&(off, len)| off + len <= size) {
        // SAFETY: the field lies within the caller's `size` bytes and within `out`; the
        // ranges are distinct objects.
        unsafe { std::ptr::copy_nonoverlapping(src.add(off), dst.add(off), len) };
    }
    Ok(out)
}

/// Writes the defaults into the caller's config of `size` bytes: `struct_size`, then each
/// field that lies wholly within `size`.
///
/// # Safety
/// `p` is NULL or points to at least `size` writable bytes.
unsafe fn write_defaults<T: Growable>(p: *mut T, size: usize) -> Res {
    let p = out_arg(p, "cfg")?;
    check_size::<T>(size, "struct_size")?;
    let d = T::defaults();
    let (src, dst) = ((&raw const d).cast::<u8>(), p.cast::<u8>());
    // SAFETY: `size` writable bytes per the contract; struct_size is the first field.
    unsafe { dst.cast::<usize>().write_unaligned(size) };
    for &(off, len) in T::FIELDS.iter().filter(|&&(off, len)| off + len <= size) {
        // SAFETY: as above; `d` is a distinct local.
        unsafe { std::ptr::copy_nonoverlapping(src.add(off), dst.add(off), len) };
    }
    Ok(())
}

fn check_size<T: Growable>(size: usize, what: &str) -> Res {
    let full = size_of::<T>();
    let least = size_of::<usize>();
    if size < least || size > full {
        return Err(invalid(format!(
            "{what}: struct_size {size} is not a {} of {least} to {full} bytes (initialise it \
             with its _default function and sizeof; a larger one is from a newer loadmon)",
            T::NAME
        )));
    }
    Ok(())
}

macro_rules! fields {
    ($t:ty: $($f:ident),* $(,)?) => {
        &[$((
            std::mem::offset_of!($t, $f),
            {
                const fn size<T, F>(_: fn(&T) -> &F) -> usize {
                    size_of::<F>()
                }
                size(|c: &$t| &c.$f)
            },
        )),*]
    };
}

/// Settings of a server. Initialise with `loadmon_server_config_default(&cfg, sizeof cfg)`,
/// then change fields. Durations are milliseconds; an out-of-range number is `LOADMON_CONFIG`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonServerConfig {
    /// `sizeof` the caller's struct, set by `loadmon_server_config_default`; lets a program built
    /// against an older header (a smaller struct) work with a newer library.
    pub struct_size: usize,
    /// Address to bind (default "127.0.0.1"). Must not be NULL.
    pub host: *const c_char,
    /// Port to bind, 0 to 65535; 0 picks a free one (read it with `loadmon_server_port`).
    /// Default 1234.
    pub port: i64,
    /// Most clients at once; extra ones are refused. Default 5.
    pub max_clients: i64,
    /// The first client id. Default 100.
    pub first_client_id: i64,
    /// Milliseconds without a heartbeat before a client is TIMED OUT (positive). Default 15000.
    pub heartbeat_timeout_ms: i64,
    /// Milliseconds a new connection has to send get_cid (positive). Default 10000.
    pub handshake_timeout_ms: i64,
    /// Where to write the JSON report when the server stops; NULL (the default) for none.
    pub report_json_path: *const c_char,
    /// Shared secret clients must prove they know (it is never sent); NULL (the default) for
    /// none.
    pub token: *const c_char,
    /// Directory for the session log file; NULL (the default) for no file.
    pub log_dir: *const c_char,
    /// "host:port" for the HTTP JSON API, Prometheus /metrics and dashboard (port 0 picks one;
    /// read it with `loadmon_server_http_port`); NULL (the default) for none.
    pub http: *const c_char,
    /// Where to write the CSV report when the server stops; NULL (the default) for none.
    pub report_csv_path: *const c_char,
    /// Where to write the HTML report (table and charts) when the server stops; NULL (the
    /// default) for none.
    pub report_html_path: *const c_char,
    /// Fleet mode: the clients to wait for before any starts (1 to 1000000, at most
    /// `max_clients`); every worker (`loadmon_worker_start`) gets the plan below. Default
    /// `LOADMON_NO_FLEET`: no fleet mode, and the `plan_` and `start_timeout_ms` fields are not
    /// used.
    pub expect_clients: i64,
    /// Fleet mode: start whoever is ready this many milliseconds after the server started
    /// (positive), or `LOADMON_NO_START_TIMEOUT` (the default) to wait for every expected
    /// client. Set without `expect_clients`: `LOADMON_CONFIG`.
    pub start_timeout_ms: i64,
    /// The fleet's plan: run time, milliseconds (positive). Default 15000.
    pub plan_run_time_ms: i64,
    /// The fleet's plan: chunk size, MB. Default 10.
    pub plan_chunk_size_mb: i64,
    /// The fleet's plan: file size, MB. Default 50.
    pub plan_file_size_mb: i64,
    /// The fleet's plan: smallest chunk allowed, MB. Default 10.
    pub plan_min_chunk_size_mb: i64,
    /// The fleet's plan: "none", "file" or "direct"; NULL means "none".
    pub plan_sync: *const c_char,
    /// The fleet's plan: finished files each worker keeps, at least 1, or `LOADMON_KEEP_ALL`.
    /// Default 2.
    pub plan_keep_files: i64,
    /// Host names the HTTP listener answers to besides IP addresses and "localhost" ("*": any):
    /// an array of strings ended by a NULL entry; NULL (the default) for none. A request for
    /// another name gets 421 (DNS rebinding).
    pub http_allow_hosts: *const *const c_char,
    /// 1: also take the token in clear (`token:<secret>`) from a loadmon that predates the
    /// challenge-response; 0 (the default): refuse it. Needs `token`. Anything else is
    /// `LOADMON_CONFIG`.
    pub allow_clear_token: i64,
}

/// A string default of the core as a C string that lives as long as the program (the `_default`
/// functions hand out pointers to it): made once, from the core's value.
fn default_str(cell: &'static OnceLock<CString>, value: impl FnOnce() -> String) -> *const c_char {
    cell.get_or_init(|| c_string(&value())).as_ptr()
}

// One per default of the core, each filled from it (never from another struct's default).
static DEFAULT_SERVER_HOST: OnceLock<CString> = OnceLock::new();
static DEFAULT_CLIENT_HOST: OnceLock<CString> = OnceLock::new();
static DEFAULT_WORKER_HOST: OnceLock<CString> = OnceLock::new();
static DEFAULT_OUT_DIR: OnceLock<CString> = OnceLock::new();
static DEFAULT_WORKER_OUT_DIR: OnceLock<CString> = OnceLock::new();

// SAFETY: repr(C), Copy, plain data and raw pointers; FIELDS lists every field after struct_size.
unsafe impl Growable for LoadmonServerConfig {
    fn defaults() -> Self {
        let d = ServerConfig::default();
        let p = Plan::default();
        LoadmonServerConfig {
            struct_size: size_of::<Self>(),
            host: default_str(&DEFAULT_SERVER_HOST, || d.host.clone()),
            port: i64::from(d.port),
            max_clients: num(d.max_clients),
            first_client_id: i64::from(d.first_client_id),
            heartbeat_timeout_ms: ms(d.heartbeat_timeout),
            handshake_timeout_ms: ms(d.handshake_timeout),
            report_json_path: std::ptr::null(),
            token: std::ptr::null(),
            log_dir: std::ptr::null(),
            http: std::ptr::null(),
            report_csv_path: std::ptr::null(),
            report_html_path: std::ptr::null(),
            expect_clients: LOADMON_NO_FLEET,
            start_timeout_ms: LOADMON_NO_START_TIMEOUT,
            plan_run_time_ms: run_time_ms(p.run_time_s),
            plan_chunk_size_mb: num(p.chunk_size_mb),
            plan_file_size_mb: num(p.file_size_mb),
            plan_min_chunk_size_mb: num(p.min_chunk_size_mb),
            plan_sync: std::ptr::null(),
            plan_keep_files: keep_files_c(p.keep_files),
            http_allow_hosts: std::ptr::null(),
            allow_clear_token: i64::from(d.allow_clear_token),
        }
    }
    const FIELDS: &'static [(usize, usize)] = fields!(LoadmonServerConfig: host, port,
        max_clients, first_client_id, heartbeat_timeout_ms, handshake_timeout_ms,
        report_json_path, token, log_dir, http, report_csv_path, report_html_path,
        expect_clients, start_timeout_ms, plan_run_time_ms, plan_chunk_size_mb,
        plan_file_size_mb, plan_min_chunk_size_mb, plan_sync, plan_keep_files,
        http_allow_hosts, allow_clear_token);
    const NAME: &'static str = "LoadmonServerConfig";
}

/// Settings of a file-writing test client. Initialise with
/// `loadmon_test_client_config_default(&cfg, sizeof cfg)`, then change fields. Durations are
/// milliseconds, sizes MB (MiB); an out-of-range number is `LOADMON_CONFIG`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonTestClientConfig {
    /// `sizeof` the caller's struct, set by `loadmon_test_client_config_default`.
    pub struct_size: usize,
    /// Server host (default "127.0.0.1"). Must not be NULL.
    pub host: *const c_char,
    /// Server port, 1 to 65535. Default 1234.
    pub port: i64,
    /// Run time, milliseconds (positive, at most 10^12). Default 15000.
    pub run_time_ms: i64,
    /// Chunk size, MB. Default 10.
    pub chunk_size_mb: i64,
    /// File size, MB. Default 50.
    pub file_size_mb: i64,
    /// Directory for the data files (default "client_files"). Must not be NULL.
    pub out_dir: *const c_char,
    /// Smallest chunk allowed, MB. Default 10.
    pub min_chunk_size_mb: i64,
    /// "none", "file" (fsync each file) or "direct" (O_DIRECT); NULL means "none".
    pub sync: *const c_char,
    /// Finished files to keep: at least 1, or `LOADMON_KEEP_ALL`; 0 is `LOADMON_CONFIG`.
    /// Default 2.
    pub keep_files: i64,
    /// Milliseconds between heartbeats (positive). Default 5000.
    pub heartbeat_period_ms: i64,
    /// Milliseconds between stats reports (positive). Default 10000.
    pub stats_period_ms: i64,
    /// Milliseconds to keep retrying an unreachable server; 0 makes one attempt. Default 5000.
    pub connect_timeout_ms: i64,
    /// Shared secret for the server; NULL (the default) for none.
    pub token: *const c_char,
    /// Directory for the session log file (`client_log_<time>.txt`); NULL (the default) for no
    /// file.
    pub log_dir: *const c_char,
    /// 1: send the token in clear to a server that offers no challenge-response (a loadmon
    /// from before it); 0 (the default): such a server is an error. Needs `token`. Anything
    /// else is `LOADMON_CONFIG`.
    pub allow_clear_token: i64,
}

// SAFETY: as for LoadmonServerConfig.
unsafe impl Growable for LoadmonTestClientConfig {
    fn defaults() -> Self {
        let (c, w) = (ClientConfig::default(), FileWriterConfig::default());
        LoadmonTestClientConfig {
            struct_size: size_of::<Self>(),
            host: default_str(&DEFAULT_CLIENT_HOST, || c.host.clone()),
            port: i64::from(c.port),
            run_time_ms: run_time_ms(w.run_time_s),
            chunk_size_mb: num(w.chunk_size_mb),
            file_size_mb: num(w.file_size_mb),
            out_dir: default_str(&DEFAULT_OUT_DIR, || {
                w.out_dir.to_string_lossy().into_owned()
            }),
            min_chunk_size_mb: num(w.min_chunk_size_mb),
            sync: std::ptr::null(),
            keep_files: keep_files_c(w.keep_files),
            heartbeat_period_ms: ms(c.heartbeat_period),
            stats_period_ms: ms(c.stats_period),
            connect_timeout_ms: ms(c.connect_timeout),
            token: std::ptr::null(),
            log_dir: std::ptr::null(),
            allow_clear_token: i64::from(c.allow_clear_token),
        }
    }
    const FIELDS: &'static [(usize, usize)] = fields!(LoadmonTestClientConfig: host, port,
        run_time_ms, chunk_size_mb, file_size_mb, out_dir, min_chunk_size_mb, sync, keep_files,
        heartbeat_period_ms, stats_period_ms, connect_timeout_ms, token, log_dir, allow_clear_token);
    const NAME: &'static str = "LoadmonTestClientConfig";
}

/// Settings of a generic client (`loadmon_client_run`). Initialise with
/// `loadmon_client_config_default(&cfg, sizeof cfg)`. Durations are milliseconds; an
/// out-of-range number is `LOADMON_CONFIG`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonClientConfig {
    /// `sizeof` the caller's struct, set by `loadmon_client_config_default`.
    pub struct_size: usize,
    /// Server host (default "127.0.0.1"). Must not be NULL.
    pub host: *const c_char,
    /// Server port, 1 to 65535. Default 1234.
    pub port: i64,
    /// Milliseconds between heartbeats (positive). Default 5000.
    pub heartbeat_period_ms: i64,
    /// Milliseconds between stats reports (positive). Default 10000.
    pub stats_period_ms: i64,
    /// Run time the callback can count down with `loadmon_client_context_time_is_up`
    /// (positive), or `LOADMON_NO_RUN_TIME` (the default) for none.
    pub run_time_ms: i64,
    /// Milliseconds to keep retrying an unreachable server; 0 makes one attempt. Default 5000.
    pub connect_timeout_ms: i64,
    /// Chunk size (MB) announced in `file_stats`, or `LOADMON_NO_FILE_STATS` (the default).
    /// Set both sizes or neither: one alone is `LOADMON_CONFIG`.
    pub chunk_size_mb: i64,
    /// File size (MB) announced in `file_stats`, or `LOADMON_NO_FILE_STATS` (the default).
    pub file_size_mb: i64,
    /// Shared secret for the server; NULL (the default) for none.
    pub token: *const c_char,
    /// Directory for the session log file (`client_log_<time>.txt`); NULL (the default) for no
    /// file.
    pub log_dir: *const c_char,
    /// 1: send the token in clear to a server that offers no challenge-response (a loadmon
    /// from before it); 0 (the default): such a server is an error. Needs `token`. Anything
    /// else is `LOADMON_CONFIG`.
    pub allow_clear_token: i64,
}

// SAFETY: as for LoadmonServerConfig.
unsafe impl Growable for LoadmonClientConfig {
    fn defaults() -> Self {
        let c = ClientConfig::default();
        LoadmonClientConfig {
            struct_size: size_of::<Self>(),
            host: default_str(&DEFAULT_CLIENT_HOST, || c.host.clone()),
            port: i64::from(c.port),
            heartbeat_period_ms: ms(c.heartbeat_period),
            stats_period_ms: ms(c.stats_period),
            run_time_ms: LOADMON_NO_RUN_TIME,
            connect_timeout_ms: ms(c.connect_timeout),
            chunk_size_mb: LOADMON_NO_FILE_STATS,
            file_size_mb: LOADMON_NO_FILE_STATS,
            token: std::ptr::null(),
            log_dir: std::ptr::null(),
            allow_clear_token: i64::from(c.allow_clear_token),
        }
    }
    const FIELDS: &'static [(usize, usize)] = fields!(LoadmonClientConfig: host, port,
        heartbeat_period_ms, stats_period_ms, run_time_ms, connect_timeout_ms, chunk_size_mb,
        file_size_mb, token, log_dir, allow_clear_token);
    const NAME: &'static str = "LoadmonClientConfig";
}

/// The fleet mode of a C server config (`None` for `LOADMON_NO_FLEET`).
///
/// # Safety
/// `c.plan_sync` is NULL or NUL-terminated.
unsafe fn fleet_config(c: &LoadmonServerConfig) -> Res<Option<FleetConfig>> {
    if c.expect_clients == LOADMON_NO_FLEET {
        let given: &[&str] = if c.start_timeout_ms == LOADMON_NO_START_TIMEOUT {
            &[]
        } else {
            &["start_timeout_ms"]
        };
        return Ok(FleetConfig::from_options(
            None,
            None,
            None,
            given,
            "expect_clients",
        )?);
    }
    let expect_clients = count(config::CLIENTS, "expect_clients", c.expect_clients)?;
    let plan = Plan {
        run_time_s: ms_setting("plan_run_time_ms", c.plan_run_time_ms, config::RUN_TIME)?
            .as_secs_f64(),
        chunk_size_mb: count(
            config::CHUNK_SIZE_MB,
            "plan_chunk_size_mb",
            c.plan_chunk_size_mb,
        )?,
        file_size_mb: count(config::SIZE_MB, "plan_file_size_mb", c.plan_file_size_mb)?,
        min_chunk_size_mb: int("plan_min_chunk_size_mb", c.plan_min_chunk_size_mb)?,
        // SAFETY: forwarded contract.
        sync: unsafe { sync_setting(c.plan_sync, "plan_sync") }?,
        keep_files: keep_files_setting("plan_keep_files", c.plan_keep_files)?,
    };
    let start_timeout = match c.start_timeout_ms {
        LOADMON_NO_START_TIMEOUT => None,
        t => Some(ms_setting("start_timeout_ms", t, config::START_TIMEOUT)?),
    };
    Ok(FleetConfig::from_options(
        Some(expect_clients),
        start_timeout,
        Some(plan),
        &[],
        "expect_clients",
    )?)
}

/// The connection fields every C client config has (test client, generic client, worker).
struct ConnectionFields {
    host: *const c_char,
    port: i64,
    heartbeat_period_ms: i64,
    stats_period_ms: i64,
    connect_timeout_ms: i64,
    token: *const c_char,
    log_dir: *const c_char,
    allow_clear_token: i64,
}

/// A C client config: its connection fields.
trait ClientFields {
    fn client_fields(&self) -> ConnectionFields;
}

macro_rules! client_fields {
    ($($t:ty),*) => {$(
        impl ClientFields for $t {
            fn client_fields(&self) -> ConnectionFields {
                ConnectionFields {
                    host: self.host,
                    port: self.port,
                    heartbeat_period_ms: self.heartbeat_period_ms,
                    stats_period_ms: self.stats_period_ms,
                    connect_timeout_ms: self.connect_timeout_ms,
                    token: self.token,
                    log_dir: self.log_dir,
                    allow_clear_token: self.allow_clear_token,
                }
            }
        }
    )*};
}
client_fields!(
    LoadmonTestClientConfig,
    LoadmonClientConfig,
    LoadmonWorkerConfig
);

/// The core client settings from the connection fields of a C client config.
///
/// # Safety
/// `c`'s `host`, `token` and `log_dir` are NULL or NUL-terminated.
unsafe fn client_config(c: &impl ClientFields) -> Res<ClientConfig> {
    let f = c.client_fields();
    Ok(ClientConfig {
        // SAFETY: forwarded contract.
        host: unsafe { required_str(f.host, "host") }?,
        port: count(config::PEER_PORT, "port", f.port)?,
        heartbeat_period: ms_setting(
            "heartbeat_period_ms",
            f.heartbeat_period_ms,
            config::HEARTBEAT_PERIOD,
        )?,
        stats_period: ms_setting("stats_period_ms", f.stats_period_ms, config::STATS_PERIOD)?,
        connect_timeout: ms_setting(
            "connect_timeout_ms",
            f.connect_timeout_ms,
            config::CONNECT_TIMEOUT,
        )?,
        // SAFETY: forwarded contract.
        token: unsafe { optional_str(f.token, "token") }?,
        // SAFETY: forwarded contract.
        log_dir: unsafe { optional_str(f.log_dir, "log_dir") }?.map(PathBuf::from),
        allow_clear_token: flag("allow_clear_token", f.allow_clear_token)?,
        ..ClientConfig::default()
    })
}

/// Fills `*cfg` with the defaults (loopback, port 1234, 5 clients, first id 100, 15 s heartbeat
/// timeout, no reports): `struct_size` = `struct_size`, and every field that fits in it. Pass
/// `sizeof *cfg`. `LOADMON_INVALID_ARGUMENT` if `cfg` is NULL or `struct_size` is smaller than
/// a `size_t` or larger than this library's struct.
///
/// # Safety
/// `cfg` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_config_default(
    cfg: *mut LoadmonServerConfig,
    struct_size: usize,
) -> LoadmonStatus {
    // SAFETY: forwarded contract.
    ffi("loadmon_server_config_default", || unsafe {
        write_defaults(cfg, struct_size)
    })
}

/// Fills `*cfg` with the seed's defaults (15000 ms, 10 MB chunks, 50 MB files, keep 2,
/// `client_files`), as `loadmon_server_config_default` does. Pass `sizeof *cfg`.
///
/// # Safety
/// `cfg` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn loadmon_test_client_config_default(
    cfg: *mut LoadmonTestClientConfig,
    struct_size: usize,
) -> LoadmonStatus {
    // SAFETY: forwarded contract.
    ffi("loadmon_test_client_config_default", || unsafe {
        write_defaults(cfg, struct_size)
    })
}

/// Fills `*cfg` with the generic client's defaults (no run time, no file_stats), as
/// `loadmon_server_config_default` does. Pass `sizeof *cfg`.
///
/// # Safety
/// `cfg` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_config_default(
    cfg: *mut LoadmonClientConfig,
    struct_size: usize,
) -> LoadmonStatus {
    // SAFETY: forwarded contract.
    ffi("loadmon_client_config_default", || unsafe {
        write_defaults(cfg, struct_size)
    })
}

/// A running server (opaque).
pub struct LoadmonServer {
    handle: ServerHandle,
}

/// Starts a server in the background and returns its handle in `*out`, to free with
/// `loadmon_server_free`.
///
/// Returns `LOADMON_OK`, `LOADMON_INVALID_ARGUMENT` (NULL `cfg`/`out`/`host`, bad UTF-8, bad
/// `struct_size`), `LOADMON_CONFIG` (a setting out of range, a report path that cannot be
/// written) or `LOADMON_IO` (the address cannot be bound).
///
/// # Safety
/// `cfg` points to a config initialised by `loadmon_server_config_default` whose strings are
/// NULL or NUL-terminated (and `http_allow_hosts` NULL or an array of them ended by NULL);
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_start(
    cfg: *const LoadmonServerConfig,
    out: *mut *mut LoadmonServer,
) -> LoadmonStatus {
    ffi("loadmon_server_start", || {
        // SAFETY: per the contract.
        let c = unsafe { read_config(cfg, "cfg") }?;
        let out = out_arg(out, "out")?;
        // SAFETY (every optional_str/required_str below): NULL or NUL-terminated per the
        // contract.
        let config = ServerConfig {
            host: unsafe { required_str(c.host, "host") }?,
            port: int("port", c.port)?,
            max_clients: count(config::CLIENTS, "max_clients", c.max_clients)?,
            first_client_id: int("first_client_id", c.first_client_id)?,
            heartbeat_timeout: ms_setting(
                "heartbeat_timeout_ms",
                c.heartbeat_timeout_ms,
                config::HEARTBEAT_TIMEOUT,
            )?,
            handshake_timeout: ms_setting(
                "handshake_timeout_ms",
                c.handshake_timeout_ms,
                config::HANDSHAKE_TIMEOUT,
            )?,
            token: unsafe { optional_str(c.token, "token") }?,
            report_json: unsafe { optional_str(c.report_json_path, "report_json_path") }?
                .map(PathBuf::from),
            log_dir: unsafe { optional_str(c.log_dir, "log_dir") }?.map(PathBuf::from),
            http: unsafe { optional_str(c.http, "http") }?,
            report_csv: unsafe { optional_str(c.report_csv_path, "report_csv_path") }?
                .map(PathBuf::from),
            report_html: unsafe { optional_str(c.report_html_path, "report_html_path") }?
                .map(PathBuf::from),
            // SAFETY: as above.
            fleet: unsafe { fleet_config(&c) }?,
            // SAFETY: NULL or a NULL-ended array of such strings per the contract.
            http_allow_hosts: unsafe {
                optional_str_list(
                    c.http_allow_hosts,
                    "http_allow_hosts",
                    loadmon::server::MAX_HTTP_ALLOW_HOSTS,
                )
            }?,
            allow_clear_token: flag("allow_clear_token", c.allow_clear_token)?,
            ..ServerConfig::default()
        };
        let handle = ServerHandle::start(config)?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(LoadmonServer { handle })) };
        Ok(())
    })
}

/// The port the server is bound to (the real one when 0 was asked). A getter that cannot fail
/// for a live handle, so it returns the port itself: 0 if `server` is NULL (with
/// `loadmon_last_error()` set).
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_port(server: *const LoadmonServer) -> u16 {
    ffi_value("loadmon_server_port", 0, || {
        // SAFETY: NULL or live per the contract.
        Ok(unsafe { arg(server, "server") }?.handle.port())
    })
}

/// The HTTP listener's port. A getter that cannot fail for a live handle, so it returns the
/// port itself: 0 if the server has no HTTP listener, or if `server` is NULL (with
/// `loadmon_last_error()` set).
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_http_port(server: *const LoadmonServer) -> u16 {
    ffi_value("loadmon_server_http_port", 0, || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        Ok(s.handle.http_addr().map_or(0, |a| a.port()))
    })
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
/// `server` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_events(
    server: *const LoadmonServer,
    out: *mut *mut LoadmonEvents,
) -> LoadmonStatus {
    ffi("loadmon_server_events", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let out = out_arg(out, "out")?;
        let events = s.handle.events()?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(LoadmonEvents { events })) };
        Ok(())
    })
}

/// Waits for the next event: `timeout_ms` > 0 waits up to that many milliseconds, 0 only
/// polls (returns at once), a negative value (`LOADMON_WAIT_FOREVER`) waits as long as it
/// takes. `LOADMON_OK` with the event as one line of JSON (no newline; `"event"` names the
/// kind) in `*event_json`, to free with `loadmon_string_free`; `LOADMON_OK` with `*event_json`
/// set to NULL once the stream is over (after the final report); `LOADMON_TIMEOUT` if none
/// came in time.
///
/// # Safety
/// `events` is NULL or a live subscription used by one thread at a time; `event_json` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_events_next(
    events: *mut LoadmonEvents,
    timeout_ms: i64,
    event_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_events_next", || {
        // SAFETY: NULL or live, and not shared between threads, per the contract.
        let ev = unsafe { arg_mut(events, "events") }?;
        let out = out_arg(event_json, "event_json")?;
        match ev.events.next_timeout(wait_timeout_ms(timeout_ms)) {
            EventPoll::Event(e) => {
                // SAFETY: non-NULL and writable per the check and the contract.
                unsafe { give_string(out, e.to_json_line().trim_end()) };
                Ok(())
            }
            EventPoll::Ended => {
                // SAFETY: as above.
                unsafe { *out = std::ptr::null_mut() };
                Ok(())
            }
            EventPoll::Timeout => {
                Err(Error::Timeout(format!("no event within {timeout_ms} ms")).into())
            }
        }
    })
}

/// Frees a subscription. NULL is a no-op.
///
/// # Safety
/// `events` is NULL or a live subscription, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn loadmon_events_free(events: *mut LoadmonEvents) {
    ffi_void("loadmon_events_free", || {
        // SAFETY: a live subscription from `loadmon_server_events`, given up by the caller.
        unsafe { free_boxed(events) };
        Ok(())
    });
}

/// Waits until the server stops by itself (at least one client came and all are gone):
/// `timeout_ms` > 0 waits up to that many milliseconds, 0 only polls (returns at once), a
/// negative value (`LOADMON_WAIT_FOREVER`) waits as long as it takes. On `LOADMON_OK`,
/// `*report_json` (if `report_json` is not NULL) receives the JSON report, to free with
/// `loadmon_string_free`. `LOADMON_TIMEOUT` if the server is still running; `LOADMON_IO` if a
/// report file could not be written (the report is then still there:
/// `loadmon_server_report`).
///
/// # Safety
/// `server` is NULL or a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_wait(
    server: *mut LoadmonServer,
    timeout_ms: i64,
    report_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_wait", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let report = s.handle.wait(wait_timeout_ms(timeout_ms))?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_string(report_json, &report.to_json()) };
        Ok(())
    })
}

/// Stops the server (running clients become ABORTED, reason "server stopped"), waits for the
/// report and returns it in `*report_json` (if not NULL), to free with `loadmon_string_free`.
/// Stopping a stopped server returns the same report. `LOADMON_IO` if a report file could not
/// be written (the report is then still there: `loadmon_server_report`).
///
/// # Safety
/// `server` is NULL or a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_stop(
    server: *mut LoadmonServer,
    report_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_stop", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let report = s.handle.stop()?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_string(report_json, &report.to_json()) };
        Ok(())
    })
}

/// The report as JSON in `*report_json`, to free with `loadmon_string_free`: the final report
/// once the run is over — also when `loadmon_server_wait`/`_stop` returned `LOADMON_IO`
/// because a report file could not be written — and the report so far while it runs.
///
/// # Safety
/// `server` is NULL or a live handle; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_report(
    server: *const LoadmonServer,
    report_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_report", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let out = out_arg(report_json, "report_json")?;
        // SAFETY: non-NULL and writable per the check and the contract.
        unsafe { give_string(out, &s.handle.report().to_json()) };
        Ok(())
    })
}

/// A JSON array of every client so far, with live figures (the JSON report's client objects
/// plus `last_heartbeat_age_s`), in `*clients_json`, to free with `loadmon_string_free`.
///
/// # Safety
/// `server` is NULL or a live handle; `clients_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_snapshot(
    server: *const LoadmonServer,
    clients_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_server_snapshot", || {
        // SAFETY: NULL or live per the contract.
        let s = unsafe { arg(server, "server") }?;
        let out = out_arg(clients_json, "clients_json")?;
        let json = serde_json::to_string(&s.handle.snapshot())
            .map_err(|e| Error::Internal(format!("snapshot as JSON: {e}")))?;
        // SAFETY: non-NULL and writable per the check and the contract.
        unsafe { give_string(out, &json) };
        Ok(())
    })
}

/// Stops the server if it is running and frees the handle. `NULL` is a no-op. Using the
/// handle afterwards is undefined behaviour.
///
/// # Safety
/// `server` is NULL or a live handle from `loadmon_server_start`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn loadmon_server_free(server: *mut LoadmonServer) {
    ffi_void("loadmon_server_free", || {
        // SAFETY: allocated by Box::into_raw in loadmon_server_start, freed once.
        unsafe { free_boxed(server) };
        Ok(())
    });
}

/// A client running on a thread of its own (opaque): a test client from
/// `loadmon_test_client_start` or a generic one from `loadmon_client_start`. Wait for it with
/// `loadmon_client_join`, stop it with `loadmon_client_cancel`, free it with
/// `loadmon_client_free`.
pub struct LoadmonClient {
    handle: ClientHandle,
}

/// Hands a client's result to C as JSON (if `out` is not NULL).
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
unsafe fn give_result(out: *mut *mut c_char, r: &ClientResult) {
    // SAFETY: forwarded contract.
    unsafe { give_string(out, &r.to_json()) };
}

/// Validates a C test client config (the seed's rules and the timed probe) and starts the
/// client.
///
/// # Safety
/// As `loadmon_test_client_start`'s `cfg`.
unsafe fn spawn_test_client(cfg: *const LoadmonTestClientConfig) -> Res<ClientHandle> {
    // SAFETY: per the contract.
    let c = unsafe { read_config(cfg, "cfg") }?;
    // SAFETY: strings are NULL or NUL-terminated per the contract.
    let client = unsafe { client_config(&c) }?;
    // SAFETY: as above.
    let out_dir = unsafe { required_str(c.out_dir, "out_dir") }?;
    // SAFETY: as above.
    let sync = unsafe { sync_setting(c.sync, "sync") }?;
    let writer = FileWriterConfig {
        run_time_s: ms_setting("run_time_ms", c.run_time_ms, config::RUN_TIME)?.as_secs_f64(),
        chunk_size_mb: count(config::CHUNK_SIZE_MB, "chunk_size_mb", c.chunk_size_mb)?,
        file_size_mb: count(config::SIZE_MB, "file_size_mb", c.file_size_mb)?,
        min_chunk_size_mb: int("min_chunk_size_mb", c.min_chunk_size_mb)?,
        out_dir: PathBuf::from(out_dir),
        sync,
        keep_files: keep_files_setting("keep_files", c.keep_files)?,
    };
    Ok(ClientHandle::spawn(client, FileWriter::new(writer)?)?)
}

/// Runs one file-writing test client to the end (validation, connect, write for the run time,
/// `done`): `loadmon_test_client_start` then `loadmon_client_join` with no timeout. On
/// `LOADMON_OK`, `*result_json` (if `result_json` is not NULL) receives the result as JSON
/// (`client_id`, `files_written`, `bytes_written`, `run_time_s`, `throughput_mb_s`,
/// `chunk_p50_ms`, `chunk_p99_ms`, `heartbeats_sent`, `stats_sent`), to free with
/// `loadmon_string_free`.
///
/// # Safety
/// `cfg` points to a config initialised by `loadmon_test_client_config_default` whose strings
/// are NULL or NUL-terminated; `result_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_test_client_run(
    cfg: *const LoadmonTestClientConfig,
    result_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_test_client_run", || {
        // SAFETY: per the contract.
        let r = unsafe { spawn_test_client(cfg) }?.join(None)?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_result(result_json, &r) };
        Ok(())
    })
}

/// Starts one file-writing test client in the background and returns its handle in `*out`:
/// the settings are checked (the seed's rules, a timed probe in `out_dir`) before it returns,
/// then the client connects, writes for the run time and ends on a thread of its own. Wait for
/// it with `loadmon_client_join`, stop it with `loadmon_client_cancel`, free it with
/// `loadmon_client_free`.
///
/// Returns `LOADMON_OK`, `LOADMON_INVALID_ARGUMENT` (NULL `cfg`/`out`/`host`/`out_dir`, bad
/// UTF-8, bad `struct_size`), `LOADMON_CONFIG` (a setting out of range, a rule broken) or
/// `LOADMON_IO` (`out_dir` or the log file cannot be written).
///
/// # Safety
/// `cfg` points to a config initialised by `loadmon_test_client_config_default` whose strings
/// are NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_test_client_start(
    cfg: *const LoadmonTestClientConfig,
    out: *mut *mut LoadmonClient,
) -> LoadmonStatus {
    ffi("loadmon_test_client_start", || {
        let out = out_arg(out, "out")?;
        // SAFETY: per the contract.
        let handle = unsafe { spawn_test_client(cfg) }?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(LoadmonClient { handle })) };
        Ok(())
    })
}

/// Waits for a client started with `loadmon_test_client_start` or `loadmon_client_start` to
/// finish: `timeout_ms` > 0 waits up to that many milliseconds, 0 only polls, a negative value
/// (`LOADMON_WAIT_FOREVER`) waits as long as it takes. On `LOADMON_OK`, `*result_json` (if
/// `result_json` is not NULL) receives the result as JSON (as `loadmon_test_client_run` gives
/// it), to free with `loadmon_string_free`. `LOADMON_TIMEOUT` if it is still running;
/// otherwise the run's own status (`LOADMON_IO` if the server cannot be reached or goes away,
/// `LOADMON_PROTOCOL` if it refuses the client, `LOADMON_WORKLOAD` if the callback failed or
/// the client was cancelled, …). Joining again returns the same outcome.
///
/// # Safety
/// `client` is NULL or a live handle; `result_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_join(
    client: *mut LoadmonClient,
    timeout_ms: i64,
    result_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_client_join", || {
        // SAFETY: NULL or live per the contract.
        let c = unsafe { arg(client, "client") }?;
        let r = c.handle.join(wait_timeout_ms(timeout_ms))?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_result(result_json, &r) };
        Ok(())
    })
}

/// Asks the client to stop and returns at once: the server is told (`error:interrupted`), a
/// generic client's callback sees `loadmon_client_context_time_is_up` return 1, and
/// `loadmon_client_join` then gives `LOADMON_WORKLOAD`. Cancelling a finished client does
/// nothing.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_cancel(client: *mut LoadmonClient) -> LoadmonStatus {
    ffi("loadmon_client_cancel", || {
        // SAFETY: NULL or live per the contract.
        unsafe { arg(client, "client") }?.handle.cancel();
        Ok(())
    })
}

/// Cancels the client if it is still running, waits until it has finished and frees the
/// handle. For a generic client that means until its callback has returned (it sees
/// `loadmon_client_context_time_is_up` return 1): after this, the callback is not running and
/// `user_data` may be freed. `NULL` is a no-op. Using the handle afterwards is undefined
/// behaviour.
///
/// # Safety
/// `client` is NULL or a live handle from `loadmon_test_client_start` or
/// `loadmon_client_start`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_free(client: *mut LoadmonClient) {
    ffi_void("loadmon_client_free", || {
        if client.is_null() {
            return Ok(());
        }
        // SAFETY: allocated by Box::into_raw in a _start function, freed once.
        let c = unsafe { Box::from_raw(client) };
        c.handle.cancel();
        // The callback, if any, returns before the handle goes (a bounded drop would not wait).
        let _ = c.handle.join(None);
        drop(c);
        Ok(())
    });
}

/// Settings of a fleet worker (`loadmon_worker_start`): how to reach the fleet server and
/// where to write; the test itself (run time, sizes, sync, files kept) is the plan the server
/// sends. Initialise with `loadmon_worker_config_default(&cfg, sizeof cfg)`, then change
/// fields. Durations are milliseconds; an out-of-range number is `LOADMON_CONFIG`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonWorkerConfig {
    /// `sizeof` the caller's struct, set by `loadmon_worker_config_default`.
    pub struct_size: usize,
    /// Server host (default "127.0.0.1"). Must not be NULL.
    pub host: *const c_char,
    /// Server port, 1 to 65535. Default 1234.
    pub port: i64,
    /// Directory for the data files (default "client_files"). Must not be NULL.
    pub out_dir: *const c_char,
    /// Shared secret for the server; NULL (the default) for none.
    pub token: *const c_char,
    /// 1: come back for the next run after each one until `loadmon_worker_cancel`; 0 (the
    /// default): one run. Anything else is `LOADMON_CONFIG`.
    pub stay: i64,
    /// With `stay`, the longest pause between two attempts to reach the server, milliseconds
    /// (positive). Default 5000.
    pub retry_max_ms: i64,
    /// Milliseconds between heartbeats (positive). Default 5000.
    pub heartbeat_period_ms: i64,
    /// Milliseconds between stats reports (positive). Default 10000.
    pub stats_period_ms: i64,
    /// Milliseconds to keep retrying an unreachable server; 0 makes one attempt. Default 5000.
    pub connect_timeout_ms: i64,
    /// Directory for the session log file; NULL (the default) for no file.
    pub log_dir: *const c_char,
    /// The largest chunk a plan may ask for, MiB (a chunk is held in memory), 1 to 4096.
    /// Default 256. A plan beyond a limit is refused; the server lists the worker FAILED.
    pub max_chunk_mb: i64,
    /// The longest run time a plan may ask for, milliseconds (positive). Default 86400000
    /// (24 h).
    pub max_run_time_ms: i64,
    /// The most disk space a plan may occupy in `out_dir` at once, MiB (its kept files and
    /// the one being written; with keep-all, what the run time fills at the probe's rate).
    /// Default 10240 (10 GiB). A plan must also fit in the space free there.
    pub max_disk_mb: i64,
    /// 1: send the token in clear to a server that offers no challenge-response (a loadmon
    /// from before it); 0 (the default): such a server is an error. Needs `token`. Anything
    /// else is `LOADMON_CONFIG`.
    pub allow_clear_token: i64,
}

// SAFETY: as for LoadmonServerConfig.
unsafe impl Growable for LoadmonWorkerConfig {
    fn defaults() -> Self {
        let w = WorkerConfig::default();
        LoadmonWorkerConfig {
            struct_size: size_of::<Self>(),
            host: default_str(&DEFAULT_WORKER_HOST, || w.client.host.clone()),
            port: i64::from(w.client.port),
            out_dir: default_str(&DEFAULT_WORKER_OUT_DIR, || {
                w.out_dir.to_string_lossy().into_owned()
            }),
            token: std::ptr::null(),
            stay: i64::from(w.stay),
            retry_max_ms: ms(w.retry_max),
            heartbeat_period_ms: ms(w.client.heartbeat_period),
            stats_period_ms: ms(w.client.stats_period),
            connect_timeout_ms: ms(w.client.connect_timeout),
            log_dir: std::ptr::null(),
            max_chunk_mb: num(w.max_chunk_mb),
            max_run_time_ms: ms(w.max_run_time),
            max_disk_mb: num(w.max_disk_mb),
            allow_clear_token: i64::from(w.client.allow_clear_token),
        }
    }
    const FIELDS: &'static [(usize, usize)] = fields!(LoadmonWorkerConfig: host, port, out_dir,
        token, stay, retry_max_ms, heartbeat_period_ms, stats_period_ms, connect_timeout_ms,
        log_dir, max_chunk_mb, max_run_time_ms, max_disk_mb, allow_clear_token);
    const NAME: &'static str = "LoadmonWorkerConfig";
}

/// The core worker settings of a C worker config (checked by the core's `validate`).
///
/// # Safety
/// `cfg` is NULL or points to a config initialised by `loadmon_worker_config_default` whose
/// strings are NULL or NUL-terminated.
unsafe fn worker_config(cfg: *const LoadmonWorkerConfig) -> Res<WorkerConfig> {
    // SAFETY: per the contract.
    let c = unsafe { read_config(cfg, "cfg") }?;
    // SAFETY (every string below): NULL or NUL-terminated per the contract.
    let config = WorkerConfig {
        client: unsafe { client_config(&c) }?,
        out_dir: PathBuf::from(unsafe { required_str(c.out_dir, "out_dir") }?),
        stay: match c.stay {
            0 => false,
            1 => true,
            n => return Err(Error::Config(format!("stay must be 0 or 1, not {n}")).into()),
        },
        retry_max: ms_setting("retry_max_ms", c.retry_max_ms, config::RETRY_MAX)?,
        max_chunk_mb: count(config::CHUNK_SIZE_MB, "max_chunk_mb", c.max_chunk_mb)?,
        max_run_time: ms_setting("max_run_time_ms", c.max_run_time_ms, config::MAX_RUN_TIME)?,
        max_disk_mb: count(config::MAX_DISK_MB, "max_disk_mb", c.max_disk_mb)?,
    };
    config.validate()?;
    Ok(config)
}

/// A 0/1 setting.
fn flag(name: &str, v: i64) -> Res<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(Error::Config(format!("{name} must be 0 or 1, not {n}")).into()),
    }
}

/// Hands a worker's summary to C as JSON (if `out` is not NULL): `passed`, `failed` (runs),
/// and `last`, the last run that passed (`run`, `plan` with `run_time_s`, `chunk_size_mb`,
/// `file_size_mb`, `min_chunk_size_mb`, `sync`, `keep_files`, and `result` as
/// `loadmon_test_client_run` gives it) or null.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
unsafe fn give_summary(out: *mut *mut c_char, s: &WorkerSummary) -> Res {
    let json = serde_json::to_string_pretty(s)
        .map_err(|e| Error::Internal(format!("worker summary as JSON: {e}")))?;
    // SAFETY: forwarded contract.
    unsafe { give_string(out, &json) };
    Ok(())
}

/// Fills `*cfg` with a worker's defaults (loopback, port 1234, `client_files`, one run, 5000 ms
/// retry cap, plans up to 256 MiB chunks, 24 h and 10 GiB on disk), as `loadmon_server_config_default` does. Pass `sizeof *cfg`.
///
/// # Safety
/// `cfg` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn loadmon_worker_config_default(
    cfg: *mut LoadmonWorkerConfig,
    struct_size: usize,
) -> LoadmonStatus {
    // SAFETY: forwarded contract.
    ffi("loadmon_worker_config_default", || unsafe {
        write_defaults(cfg, struct_size)
    })
}

/// A fleet worker running on a thread of its own (opaque).
pub struct LoadmonWorker {
    handle: WorkerHandle,
}

/// Starts a fleet worker in the background and returns its handle in `*out`, to wait for with
/// `loadmon_worker_join`, stop with `loadmon_worker_cancel` and free with
/// `loadmon_worker_free`. The worker connects to a fleet server (`expect_clients` set), takes
/// its plan, checks it on this host (the seed's rules and a timed probe), waits for the
/// fleet's start and writes files as planned; with `stay` it comes back for the next run.
///
/// Returns `LOADMON_OK`, `LOADMON_INVALID_ARGUMENT` (NULL `cfg`/`out`/`host`/`out_dir`, bad
/// UTF-8, bad `struct_size`), `LOADMON_CONFIG` (a setting out of range) or `LOADMON_IO` (the
/// log file cannot be made).
///
/// # Safety
/// `cfg` points to a config initialised by `loadmon_worker_config_default` whose strings are
/// NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_worker_start(
    cfg: *const LoadmonWorkerConfig,
    out: *mut *mut LoadmonWorker,
) -> LoadmonStatus {
    ffi("loadmon_worker_start", || {
        // SAFETY: per the contract.
        let config = unsafe { worker_config(cfg) }?;
        let out = out_arg(out, "out")?;
        let handle = WorkerHandle::spawn(config)?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(LoadmonWorker { handle })) };
        Ok(())
    })
}

/// Waits for the worker to finish: after its run, or with `stay` once cancelled.
/// `timeout_ms` > 0 waits up to that many milliseconds, 0 only polls, a negative value
/// (`LOADMON_WAIT_FOREVER`) waits as long as it takes. On `LOADMON_OK`, `*summary_json` (if
/// `summary_json` is not NULL) receives the summary as JSON (`passed`, `failed`, `last`: the
/// last run that passed, with its `run`, `plan` and `result`, or null), to free with
/// `loadmon_string_free`. `LOADMON_TIMEOUT` if it is still running; otherwise the run's error:
/// `LOADMON_PROTOCOL` if the server hands out no plan or its run already started,
/// `LOADMON_CONFIG`/`LOADMON_IO` if the plan cannot run on this host, `LOADMON_WORKLOAD` if it
/// was cancelled in the middle of a run. Joining again returns the same outcome.
///
/// # Safety
/// `worker` is NULL or a live handle; `summary_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_worker_join(
    worker: *mut LoadmonWorker,
    timeout_ms: i64,
    summary_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_worker_join", || {
        // SAFETY: NULL or live per the contract.
        let w = unsafe { arg(worker, "worker") }?;
        let summary = w.handle.join(wait_timeout_ms(timeout_ms))?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_summary(summary_json, &summary) }
    })
}

/// Asks the worker to stop and returns at once: a run under way ends (its join gives
/// `LOADMON_WORKLOAD`), a `stay` worker between runs ends with its summary (`LOADMON_OK`).
/// Cancelling a finished worker does nothing.
///
/// # Safety
/// `worker` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn loadmon_worker_cancel(worker: *mut LoadmonWorker) -> LoadmonStatus {
    ffi("loadmon_worker_cancel", || {
        // SAFETY: NULL or live per the contract.
        unsafe { arg(worker, "worker") }?.handle.cancel();
        Ok(())
    })
}

/// Cancels the worker if it is still running, waits for its thread (about a second at most)
/// and frees the handle. `NULL` is a no-op. Using the handle afterwards is undefined
/// behaviour.
///
/// # Safety
/// `worker` is NULL or a live handle from `loadmon_worker_start`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn loadmon_worker_free(worker: *mut LoadmonWorker) {
    ffi_void("loadmon_worker_free", || {
        // SAFETY: allocated by Box::into_raw in loadmon_worker_start, freed once.
        unsafe { free_boxed(worker) };
        Ok(())
    });
}

/// Runs one fleet worker to the end on the calling thread's behalf (`loadmon_worker_start`
/// then `loadmon_worker_join` with no timeout): on `LOADMON_OK`, `*summary_json` (if not
/// NULL) receives the summary, to free with `loadmon_string_free`. `stay = 1` is
/// `LOADMON_INVALID_ARGUMENT` here (nothing could cancel it): use `loadmon_worker_start`.
///
/// # Safety
/// As `loadmon_worker_start`; `summary_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_worker_run(
    cfg: *const LoadmonWorkerConfig,
    summary_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_worker_run", || {
        // SAFETY: per the contract.
        let config = unsafe { worker_config(cfg) }?;
        if config.stay {
            return Err(invalid(
                "stay: a worker that stays runs until cancelled; start it with \
                 loadmon_worker_start and stop it with loadmon_worker_cancel",
            ));
        }
        let summary = WorkerHandle::spawn(config)?.join(None)?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_summary(summary_json, &summary) }
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
///
/// It must return normally: it must not throw a C++ exception nor `longjmp` out of the call.
/// An exception that reaches loadmon aborts the process (Rust cannot catch foreign
/// exceptions); in C++, catch everything inside and return non-zero instead
/// (`try { ... } catch (...) { return 1; }`).
pub type LoadmonWorkloadFn =
    Option<unsafe extern "C" fn(ctx: *mut LoadmonClientContext, user_data: *mut c_void) -> c_int>;

struct CWorkload {
    run_tests: unsafe extern "C" fn(*mut LoadmonClientContext, *mut c_void) -> c_int,
    user_data: *mut c_void,
    run_time: Option<Duration>,
    file_stats: Option<(u64, u64)>,
}

// SAFETY: the C caller hands `user_data` to the engine for the client's run
// (`loadmon_client_run`, or from `loadmon_client_start` until its join or free), documented as
// used from one engine thread.
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
        // callback is callable with these arguments for the client's run.
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

/// A C size setting that may be `LOADMON_NO_FILE_STATS`.
fn optional_size(name: &str, v: i64) -> Res<Option<u64>> {
    match v {
        LOADMON_NO_FILE_STATS => Ok(None),
        n => count(config::SIZE_MB, name, n).map(Some),
    }
}

/// Checks a C generic client config and starts the client with `run_tests(ctx, user_data)`.
///
/// # Safety
/// As `loadmon_client_start`'s arguments.
unsafe fn spawn_client(
    cfg: *const LoadmonClientConfig,
    run_tests: LoadmonWorkloadFn,
    user_data: *mut c_void,
) -> Res<ClientHandle> {
    // SAFETY: per the contract.
    let c = unsafe { read_config(cfg, "cfg") }?;
    let run_tests = run_tests.ok_or_else(|| invalid("run_tests is NULL"))?;
    // SAFETY: strings are NULL or NUL-terminated per the contract.
    let config = unsafe { client_config(&c) }?;
    let workload = CWorkload {
        run_tests,
        user_data,
        run_time: match c.run_time_ms {
            LOADMON_NO_RUN_TIME => None,
            t => Some(ms_setting("run_time_ms", t, config::RUN_TIME)?),
        },
        file_stats: loadmon::config::file_stats(
            optional_size("chunk_size_mb", c.chunk_size_mb)?,
            optional_size("file_size_mb", c.file_size_mb)?,
        )?,
    };
    Ok(ClientHandle::spawn(config, workload)?)
}

/// Runs a generic client whose workload is `run_tests(ctx, user_data)`, called on an engine
/// thread after the server's `run_tests`; heartbeats and stats are sent meanwhile
/// (`loadmon_client_start` then `loadmon_client_join` with no timeout). On `LOADMON_OK`,
/// `*result_json` (if `result_json` is not NULL) receives the result as JSON, to free with
/// `loadmon_string_free`. A non-zero return from the callback gives `LOADMON_WORKLOAD`.
///
/// # Safety
/// `cfg` points to a config initialised by `loadmon_client_config_default`; `run_tests` is
/// NULL or a valid function; `user_data` is whatever the callback expects (it is used from
/// another thread); `result_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_run(
    cfg: *const LoadmonClientConfig,
    run_tests: LoadmonWorkloadFn,
    user_data: *mut c_void,
    result_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_client_run", || {
        // SAFETY: per the contract.
        let r = unsafe { spawn_client(cfg, run_tests, user_data) }?.join(None)?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_result(result_json, &r) };
        Ok(())
    })
}

/// Starts a generic client in the background (as `loadmon_client_run` runs one) and returns
/// its handle in `*out`, to wait for with `loadmon_client_join`, stop with
/// `loadmon_client_cancel` and free with `loadmon_client_free`. `run_tests(ctx, user_data)` is
/// called on the client's thread: `user_data` must stay valid until `loadmon_client_join` has
/// returned something other than `LOADMON_TIMEOUT`, or `loadmon_client_free` has returned.
///
/// Returns `LOADMON_OK`, `LOADMON_INVALID_ARGUMENT` (NULL `cfg`/`run_tests`/`out`/`host`, bad
/// UTF-8, bad `struct_size`) or `LOADMON_CONFIG` (a setting out of range).
///
/// # Safety
/// `cfg` points to a config initialised by `loadmon_client_config_default`; `run_tests` is
/// NULL or a valid function; `user_data` is whatever the callback expects (it is used from
/// another thread); `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_start(
    cfg: *const LoadmonClientConfig,
    run_tests: LoadmonWorkloadFn,
    user_data: *mut c_void,
    out: *mut *mut LoadmonClient,
) -> LoadmonStatus {
    ffi("loadmon_client_start", || {
        let out = out_arg(out, "out")?;
        // SAFETY: per the contract.
        let handle = unsafe { spawn_client(cfg, run_tests, user_data) }?;
        // SAFETY: `out` is non-NULL and writable.
        unsafe { *out = Box::into_raw(Box::new(LoadmonClient { handle })) };
        Ok(())
    })
}

/// The client id the server assigned. A getter that cannot fail for a live context, so it
/// returns the id itself: 0 if `ctx` is NULL (with `loadmon_last_error()` set).
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_id(ctx: *const LoadmonClientContext) -> u32 {
    ffi_value("loadmon_client_context_id", 0, || {
        // SAFETY: NULL or live per the contract.
        Ok(unsafe { arg(ctx, "ctx") }?.inner.client_id())
    })
}

/// 1 if the run should end (run time over, server gone, cancelled), 0 if not. A getter that
/// cannot fail for a live context, so it returns the answer itself: 1 if `ctx` is NULL (with
/// `loadmon_last_error()` set), so that a loop on it ends.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_time_is_up(
    ctx: *const LoadmonClientContext,
) -> c_int {
    ffi_value("loadmon_client_context_time_is_up", 1, || {
        // SAFETY: NULL or live per the contract.
        Ok(c_int::from(unsafe { arg(ctx, "ctx") }?.inner.time_is_up()))
    })
}

/// Milliseconds left of the run time, or -1 if the client has none. A getter that cannot fail
/// for a live context, so it returns the number itself: -1 if `ctx` is NULL (with
/// `loadmon_last_error()` set).
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_remaining_ms(
    ctx: *const LoadmonClientContext,
) -> i64 {
    ffi_value("loadmon_client_context_remaining_ms", -1, || {
        // SAFETY: NULL or live per the contract.
        let c = unsafe { arg(ctx, "ctx") }?;
        Ok(c.inner.remaining().map_or(-1, ms))
    })
}

/// Reports one completed file (`file_roll`). `LOADMON_STATE` once the run is over.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_file_rollover(
    ctx: *mut LoadmonClientContext,
) -> LoadmonStatus {
    ffi("loadmon_client_context_file_rollover", || {
        // SAFETY: NULL or live per the contract.
        Ok(unsafe { arg(ctx, "ctx") }?.inner.file_rollover()?)
    })
}

/// Records one write of `n_bytes` that took `latency_us` microseconds. `LOADMON_STATE` once
/// the run is over.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_record_write(
    ctx: *mut LoadmonClientContext,
    n_bytes: u64,
    latency_us: u64,
) -> LoadmonStatus {
    ffi("loadmon_client_context_record_write", || {
        // SAFETY: NULL or live per the contract.
        let c = unsafe { arg(ctx, "ctx") }?;
        Ok(c.inner
            .record_write(n_bytes, Duration::from_micros(latency_us))?)
    })
}

/// Sends `send_stats:<cpu_pct>:<mem_pct>`; `LOADMON_CONFIG` for a negative or non-finite value,
/// `LOADMON_STATE` once the run is over.
///
/// # Safety
/// `ctx` is NULL or the context passed to the running callback.
#[no_mangle]
pub unsafe extern "C" fn loadmon_client_context_send_stats(
    ctx: *mut LoadmonClientContext,
    cpu_pct: f64,
    mem_pct: f64,
) -> LoadmonStatus {
    ffi("loadmon_client_context_send_stats", || {
        // SAFETY: NULL or live per the contract.
        Ok(unsafe { arg(ctx, "ctx") }?
            .inner
            .send_stats(cpu_pct, mem_pct)?)
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
) -> LoadmonStatus {
    ffi("loadmon_client_context_set_error", || {
        // SAFETY: NULL or live per the contract.
        let c = unsafe { arg_mut(ctx, "ctx") }?;
        // SAFETY: NULL or NUL-terminated per the contract.
        c.error = Some(unsafe { required_str(message, "message") }?);
        Ok(())
    })
}

/// Renders a JSON report (from `loadmon_server_wait`/`_stop`/`_report`) as the seed's text
/// report, in `*text`, to free with `loadmon_string_free`. `LOADMON_CONFIG` if the JSON is not
/// a report.
///
/// # Safety
/// `report_json` is NULL or NUL-terminated; `text` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_report_text(
    report_json: *const c_char,
    text: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_report_text", || {
        let out = out_arg(text, "text")?;
        // SAFETY: NULL or NUL-terminated per the contract.
        let json = unsafe { required_str(report_json, "report_json") }?;
        let r = loadmon::Report::from_json(&json)?;
        // SAFETY: non-NULL and writable per the check and the contract.
        unsafe { give_string(out, &r.to_text()) };
        Ok(())
    })
}

/// Severity of a log record given to the log callback.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadmonLogLevel {
    /// Per-message details (not delivered to the callback today).
    LOADMON_LOG_DEBUG = 1,
    /// Progress: a client connected, got an id, finished; the final text report.
    LOADMON_LOG_INFO = 2,
    /// Something went wrong with a peer or a file.
    LOADMON_LOG_WARN = 3,
}

/// A log callback: `level`, `target` (`"loadmon::server"`, `"loadmon::client"`,
/// `"loadmon::report"`: the final text report, several lines in one record, or
/// `"loadmon::log"`: a warning that records were dropped), `message` (both strings valid only
/// during the call; do not free them), and the `user` pointer given to
/// `loadmon_set_log_callback`.
///
/// It must return normally: it must not throw a C++ exception nor `longjmp` out of the call.
/// An exception that reaches loadmon aborts the process (Rust cannot catch foreign
/// exceptions); in C++, catch everything inside (`try { ... } catch (...) { ... }`).
pub type LoadmonLogFn = Option<
    unsafe extern "C" fn(
        level: LoadmonLogLevel,
        target: *const c_char,
        message: *const c_char,
        user: *mut c_void,
    ),
>;

struct CLogger {
    cb: unsafe extern "C" fn(LoadmonLogLevel, *const c_char, *const c_char, *mut c_void),
    user: *mut c_void,
}

// SAFETY: the C caller promises the callback and `user` may be used from another thread
// (documented on loadmon_set_log_callback); loadmon calls it from one thread at a time.
unsafe impl Send for CLogger {}

impl CLogger {
    /// Calls the callback with `r` (on the delivery thread).
    fn deliver(&self, r: &LogRecord<'_>) {
        let level = match r.level {
            LogLevel::Debug => LoadmonLogLevel::LOADMON_LOG_DEBUG,
            LogLevel::Info => LoadmonLogLevel::LOADMON_LOG_INFO,
            LogLevel::Warn => LoadmonLogLevel::LOADMON_LOG_WARN,
        };
        let (target, message) = (c_string(r.target), c_string(r.message));
        IN_LOG_CALLBACK.with(|f| f.set(true));
        // SAFETY: a valid callback per loadmon_set_log_callback's contract; the strings live
        // until the call returns.
        unsafe { (self.cb)(level, target.as_ptr(), message.as_ptr(), self.user) };
        IN_LOG_CALLBACK.with(|f| f.set(false));
    }
}

/// The installed callback's delivery (its thread and bounded queue), and the records the
/// deliveries before it dropped. Held only to swap or read these, never during a callback or
/// while a delivery closes, so the callback itself may read `loadmon_log_dropped`.
struct Logger {
    delivery: Option<Arc<LogDelivery>>,
    dropped_before: u64,
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    delivery: None,
    dropped_before: 0,
});

fn logger() -> std::sync::MutexGuard<'static, Logger> {
    LOGGER.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// Set while this thread runs the log callback (which must not replace itself nor wait
    /// for its own deliveries: deadlock).
    static IN_LOG_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn not_from_log_callback(name: &str) -> Res {
    if IN_LOG_CALLBACK.with(Cell::get) {
        return Err(Error::State(format!("{name} cannot be called from the log callback")).into());
    }
    Ok(())
}

/// Sends loadmon's log records (info and warnings of every server and client of this process,
/// and the final text report as one record) to `cb(level, target, message, user)`; NULL
/// removes the callback.
///
/// The engine's threads never wait for the callback: they put each record in a bounded queue
/// and a thread of loadmon's own calls `cb`, one record at a time, in order. A callback that
/// falls 10,000 records behind loses the newest ones: they are counted
/// (`loadmon_log_dropped`) and, in their place, the callback gets a warning (target
/// `"loadmon::log"`) saying how many it missed. So `cb` may be slow, but records it has not
/// been given yet wait in memory: use `loadmon_log_flush` to wait for them.
///
/// `cb` is called on that thread only: it must be callable from another thread than the one
/// that installed it, must not call back into loadmon other than
/// `loadmon_status_str`/`loadmon_version`/`loadmon_log_dropped` (`loadmon_set_log_callback` and
/// `loadmon_log_flush` return `LOADMON_STATE` from it), and must not throw or `longjmp` (see
/// `LoadmonLogFn`). Debug records are not delivered.
///
/// Replacing or removing a callback: the previous one gets no new record; the records already
/// queued for it are still delivered to it for up to about a second, then dropped (and
/// counted). Once this function returns, the previous callback is not running and will never
/// be called again, so its `user` may be freed. (A call under way when the second runs out is
/// waited for, however long it takes.) Meanwhile new records already go to the new callback,
/// on a thread of its own: for that moment the two may run at once. Remove the callback before
/// the program exits if its `user` is freed at exit. `LOADMON_OK` otherwise.
///
/// # Safety
/// `cb` is NULL or a function callable from another thread with `user` until it is replaced.
#[no_mangle]
pub unsafe extern "C" fn loadmon_set_log_callback(
    cb: LoadmonLogFn,
    user: *mut c_void,
) -> LoadmonStatus {
    ffi("loadmon_set_log_callback", || {
        not_from_log_callback("loadmon_set_log_callback")?;
        let new = match cb {
            Some(cb) => {
                let c = CLogger { cb, user };
                Some(Arc::new(LogDelivery::start(
                    LOG_QUEUE_CAPACITY,
                    move |r| c.deliver(r),
                )?))
            }
            None => None,
        };
        let old = {
            let mut g = logger();
            set_log_sink(new.as_ref().map(|d| (LogLevel::Info, d.sink())));
            std::mem::replace(&mut g.delivery, new)
        };
        // Outside the lock: the old callback may be running and read loadmon_log_dropped.
        if let Some(old) = old {
            old.close(LOG_DRAIN);
            logger().dropped_before += old.dropped();
        }
        Ok(())
    })
}

/// Log records dropped since the program started: those that found the callback 10,000
/// records behind, and those still queued when a callback was replaced or removed. A getter
/// that cannot fail, so it returns the count itself.
#[no_mangle]
pub extern "C" fn loadmon_log_dropped() -> u64 {
    ffi_value("loadmon_log_dropped", 0, || {
        let g = logger();
        Ok(g.dropped_before + g.delivery.as_ref().map_or(0, |d| d.dropped()))
    })
}

/// Waits until the log callback has been given every record logged before this call (or they
/// were dropped): `timeout_ms` > 0 waits up to that many milliseconds, 0 only polls, a negative
/// value (`LOADMON_WAIT_FOREVER`) waits as long as it takes. `LOADMON_OK` once they have (at
/// once if there is no callback), `LOADMON_TIMEOUT` if not in time, `LOADMON_STATE` from the
/// log callback itself.
#[no_mangle]
pub extern "C" fn loadmon_log_flush(timeout_ms: i64) -> LoadmonStatus {
    ffi("loadmon_log_flush", || {
        not_from_log_callback("loadmon_log_flush")?;
        let delivery = logger().delivery.clone();
        match delivery {
            Some(d) if !d.flush(wait_timeout_ms(timeout_ms)) => Err(Error::Timeout(format!(
                "log records still queued for the callback after {timeout_ms} ms"
            ))
            .into()),
            _ => Ok(()),
        }
    })
}

/// This thread's last error message, or NULL if no call on this thread has failed. Valid until
/// the next failing call on the same thread; do not free it.
#[no_mangle]
pub extern "C" fn loadmon_last_error() -> *const c_char {
    ffi_value("loadmon_last_error", std::ptr::null(), || {
        Ok(LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr())))
    })
}

/// Frees a string returned by loadmon. `NULL` is a no-op.
///
/// # Safety
/// `s` is NULL or a string returned by loadmon, freed only once.
#[no_mangle]
pub unsafe extern "C" fn loadmon_string_free(s: *mut c_char) {
    ffi_void("loadmon_string_free", || {
        if !s.is_null() {
            // SAFETY: allocated by CString::into_raw in give_string, freed once.
            drop(unsafe { CString::from_raw(s) });
        }
        Ok(())
    });
}

/// The library version, e.g. "0.1.0" (static; do not free): the version of the library
/// loaded at run time, where `LOADMON_VERSION_*` are those of the header compiled against.
#[no_mangle]
pub extern "C" fn loadmon_version() -> *const c_char {
    static VERSION: &CStr = {
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        }
    };
    ffi_value("loadmon_version", c"unknown".as_ptr(), || {
        Ok(VERSION.as_ptr())
    })
}

/// A static, lower-case description of a status (`"ok"`, `"invalid argument"`, …; do not
/// free). Takes an `int` so that any value is safe: one this library does not know gives
/// `"unknown status"`.
#[no_mangle]
pub extern "C" fn loadmon_status_str(status: c_int) -> *const c_char {
    ffi_value("loadmon_status_str", c"unknown status".as_ptr(), || {
        let s: &CStr = match status {
            0 => c"ok",
            1 => c"invalid argument",
            2 => c"configuration error",
            3 => c"I/O error",
            4 => c"protocol error",
            5 => c"timeout",
            6 => c"internal error",
            7 => c"workload failed",
            8 => c"state error",
            _ => c"unknown status",
        };
        Ok(s.as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers_every_byte<T: Growable>() {
        let mut end = size_of::<usize>();
        for &(off, len) in T::FIELDS {
            assert_eq!(
                off,
                end,
                "{}: a gap or a missing field before offset {off}",
                T::NAME
            );
            end = off + len;
        }
        // No tail padding: a field appended later starts at or after today's sizeof.
        assert_eq!(
            end,
            size_of::<T>(),
            "{}: tail padding or a field missing",
            T::NAME
        );
    }

    #[test]
    fn configs_are_growable() {
        covers_every_byte::<LoadmonServerConfig>();
        covers_every_byte::<LoadmonTestClientConfig>();
        covers_every_byte::<LoadmonClientConfig>();
        covers_every_byte::<LoadmonWorkerConfig>();
    }

    #[test]
    fn a_panic_is_an_internal_error() {
        let s = ffi("loadmon_test", || panic!("boom"));
        assert_eq!(s, LOADMON_INTERNAL);
        // SAFETY: loadmon_last_error returns NULL or a NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(loadmon_last_error()) }
            .to_str()
            .unwrap()
            .to_owned();
        assert!(msg.contains("loadmon_test panicked: boom"), "{msg}");
        assert_eq!(ffi_value("loadmon_test", 7u16, || panic!("boom")), 7);
        ffi_void("loadmon_test", || panic!("boom"));
    }

    #[test]
    fn every_kind_has_a_status_with_a_name() {
        for kind in ErrorKind::ALL {
            let s = status_of(kind);
            assert_ne!(s, LOADMON_OK);
            // SAFETY: a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(loadmon_status_str(s as c_int)) };
            assert_ne!(name.to_str().unwrap(), "unknown status", "{kind:?}");
        }
        assert_eq!(status_of(ErrorKind::State), LOADMON_STATE);
    }
}
