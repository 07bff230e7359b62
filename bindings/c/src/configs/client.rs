//! `LoadmonTestClientConfig` (a file-writing test client) and `LoadmonClientConfig` (a client
//! whose workload is a C callback), and the connection settings every C client config shares
//! (the worker's too), converted to the core's `ClientConfig`.

use std::ffi::{c_char, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

use loadmon::client::ClientConfig;
use loadmon::config;
use loadmon::workload::file_writer::FileWriterConfig;

use super::convert::{
    count, flag, int, keep_files_c, mb, ms, ms_setting, num, rate_c, run_time_ms,
};
use super::{
    default_str, write_defaults, Growable, LoadmonWorkerConfig, LOADMON_NO_FILE_STATS,
    LOADMON_NO_RUN_TIME,
};
use crate::args::{optional_str, required_str};
use crate::guard::{ffi, LoadmonStatus, Res};

/// Settings of a file-writing test client. Initialise with
/// `loadmon_test_client_config_default(&cfg, sizeof cfg)`, then change fields. Durations are
/// milliseconds, sizes MB (MiB); an out-of-range number is `LOADMON_CONFIG`. Each field's
/// default is the core's (`ClientConfig::default()`, `FileWriterConfig::default()`), as its doc
/// states (a test checks the two agree).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonTestClientConfig {
    /// `sizeof` the caller's struct, set by `loadmon_test_client_config_default`.
    pub struct_size: usize,
    /// Server host. Must not be NULL. Default: "127.0.0.1".
    pub host: *const c_char,
    /// Server port, 1 to 65535. Default: 1234.
    pub port: i64,
    /// Run time, milliseconds (positive, at most 10^12). Default: 15000.
    pub run_time_ms: i64,
    /// Chunk size, MB (MiB). Default: 10.
    pub chunk_size_mb: i64,
    /// File size, MB (MiB). Default: 50.
    pub file_size_mb: i64,
    /// Directory for the data files. Must not be NULL. Default: "client_files".
    pub out_dir: *const c_char,
    /// Smallest chunk allowed, MB (MiB; 0: no minimum). Default: 10.
    pub min_chunk_size_mb: i64,
    /// "none", "file" (fsync each file) or "direct" (O_DIRECT); NULL means "none".
    /// Default: NULL.
    pub sync: *const c_char,
    /// Finished files to keep: at least 1, or `LOADMON_KEEP_ALL`; 0 is `LOADMON_CONFIG`.
    /// Default: 2.
    pub keep_files: i64,
    /// Milliseconds between heartbeats (positive). Default: 5000.
    pub heartbeat_period_ms: i64,
    /// Milliseconds between stats reports (positive). Default: 10000.
    pub stats_period_ms: i64,
    /// Milliseconds to keep retrying an unreachable server; 0 makes one attempt. Default: 5000.
    pub connect_timeout_ms: i64,
    /// Shared secret for the server; NULL for none. Default: NULL.
    pub token: *const c_char,
    /// Directory for the session log file (`client_log_<time>.txt`); NULL for no file.
    /// Default: NULL.
    pub log_dir: *const c_char,
    /// 1: send the token in clear to a server that offers no challenge-response (a loadmon
    /// from before it); 0: such a server is an error. Needs `token`. Anything else is
    /// `LOADMON_CONFIG`. Default: 0.
    pub allow_clear_token: i64,
    /// Milliseconds to wait for the server's `set_cid` (and, with a token, for each answer of
    /// the challenge-response before it); positive. Default: 10000.
    pub handshake_timeout_ms: i64,
    /// Longest line accepted from the server, bytes (at least 64; with a token, room for the
    /// challenge-response and the token). Default: 4096.
    pub max_line_bytes: i64,
    /// Writer streams, 1 to 256: each writes its own files (`client_<id>_<stream>_<n>_<time>`)
    /// with its own `keep_files`; the client's figures are their sums. Default: 1.
    pub jobs: i64,
    /// Writes in flight per stream, 1 to 256, through io_uring where the kernel allows it (else
    /// one at a time, and the report's `engine` says why). Default: 1.
    pub iodepth: i64,
    /// The client's pace, MB/s (MiB/s), above 0 and at most 1000000, shared by its streams;
    /// `LOADMON_NO_RATE`: as fast as possible. Default: LOADMON_NO_RATE.
    pub rate_mb_s: f64,
    /// Check the written data: "none", "rollover" (each file is read back just before
    /// `keep_files` deletes it, or `overwrite` rewrites it) or "end" (the kept files, when the
    /// run ends); NULL means "none". With a check every block carries a header and a CRC-32C,
    /// and a bad block ends the client FAILED with the finding (unless `verify_continue`).
    /// Default: NULL.
    pub verify: *const c_char,
    /// Verify block size, bytes: a power of two from 512 to 1048576; the chunk and file sizes
    /// must be multiples of it. Default: 4096.
    pub verify_block_bytes: i64,
    /// 1: a bad block found by the check does not stop the writing (every one is counted and
    /// reported; the client still ends FAILED with the first as its reason); 0: the first ends
    /// the run at once, FAILED. Needs `verify`. Default: 0.
    pub verify_continue: i64,
    /// 1: with `verify` "end", check another client's kept files in the same (shared)
    /// `out_dir` instead of this client's own. Default: 0.
    pub verify_peer: i64,
    /// 1: once a stream holds `keep_files` files, rewrite the oldest in place (same name, next
    /// write generation) instead of deleting it. Needs `keep_files` to be a number. Default: 0.
    pub overwrite: i64,
}

// The core's defaults as C strings, made once (never shared with another struct's).
static DEFAULT_CLIENT_HOST: OnceLock<CString> = OnceLock::new();
static DEFAULT_OUT_DIR: OnceLock<CString> = OnceLock::new();

// SAFETY: as for LoadmonServerConfig.
unsafe impl Growable for LoadmonTestClientConfig {
    fn defaults() -> Self {
        let (c, w) = (ClientConfig::default(), FileWriterConfig::default());
        LoadmonTestClientConfig {
            struct_size: size_of::<Self>(),
            host: default_str(&DEFAULT_CLIENT_HOST, || c.host.clone()),
            port: i64::from(c.port),
            run_time_ms: run_time_ms(w.run_time_s),
            chunk_size_mb: mb(w.chunk_size_bytes),
            file_size_mb: mb(w.file_size_bytes),
            out_dir: default_str(&DEFAULT_OUT_DIR, || {
                w.out_dir.to_string_lossy().into_owned()
            }),
            min_chunk_size_mb: mb(w.min_chunk_size_bytes),
            sync: std::ptr::null(),
            keep_files: keep_files_c(w.keep_files),
            heartbeat_period_ms: ms(c.heartbeat_period),
            stats_period_ms: ms(c.stats_period),
            connect_timeout_ms: ms(c.connect_timeout),
            token: std::ptr::null(),
            log_dir: std::ptr::null(),
            allow_clear_token: i64::from(c.allow_clear_token),
            handshake_timeout_ms: ms(c.handshake_timeout),
            max_line_bytes: num(c.max_line_bytes),
            jobs: i64::from(w.jobs),
            iodepth: i64::from(w.iodepth),
            rate_mb_s: rate_c(w.rate_mb_s),
            // NULL stands for the core's default, "none".
            verify: std::ptr::null(),
            verify_block_bytes: num(w.verify_block_bytes),
            verify_continue: i64::from(w.verify_continue),
            verify_peer: i64::from(w.verify_peer),
            overwrite: i64::from(w.overwrite),
        }
    }
    const FIELDS: &'static [(&'static str, usize, usize)] = fields!(LoadmonTestClientConfig:
        host, port, run_time_ms, chunk_size_mb, file_size_mb, out_dir, min_chunk_size_mb, sync,
        keep_files, heartbeat_period_ms, stats_period_ms, connect_timeout_ms, token, log_dir,
        allow_clear_token, handshake_timeout_ms, max_line_bytes, jobs, iodepth, rate_mb_s,
        verify, verify_block_bytes, verify_continue, verify_peer, overwrite);
    const NAME: &'static str = "LoadmonTestClientConfig";
}

/// Settings of a generic client (`loadmon_client_run`). Initialise with
/// `loadmon_client_config_default(&cfg, sizeof cfg)`. Durations are milliseconds; an
/// out-of-range number is `LOADMON_CONFIG`. Each field's default is the core's
/// (`ClientConfig::default()`), as its doc states (a test checks the two agree).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonClientConfig {
    /// `sizeof` the caller's struct, set by `loadmon_client_config_default`.
    pub struct_size: usize,
    /// Server host. Must not be NULL. Default: "127.0.0.1".
    pub host: *const c_char,
    /// Server port, 1 to 65535. Default: 1234.
    pub port: i64,
    /// Milliseconds between heartbeats (positive). Default: 5000.
    pub heartbeat_period_ms: i64,
    /// Milliseconds between stats reports (positive). Default: 10000.
    pub stats_period_ms: i64,
    /// Run time the callback can count down with `loadmon_client_context_time_is_up`
    /// (positive), or `LOADMON_NO_RUN_TIME` for none. Default: `LOADMON_NO_RUN_TIME`.
    pub run_time_ms: i64,
    /// Milliseconds to keep retrying an unreachable server; 0 makes one attempt. Default: 5000.
    pub connect_timeout_ms: i64,
    /// Chunk size (MB) announced in `file_stats`, or `LOADMON_NO_FILE_STATS`. Set both sizes
    /// or neither: one alone is `LOADMON_CONFIG`. Default: `LOADMON_NO_FILE_STATS`.
    pub chunk_size_mb: i64,
    /// File size (MB) announced in `file_stats`, or `LOADMON_NO_FILE_STATS`.
    /// Default: `LOADMON_NO_FILE_STATS`.
    pub file_size_mb: i64,
    /// Shared secret for the server; NULL for none. Default: NULL.
    pub token: *const c_char,
    /// Directory for the session log file (`client_log_<time>.txt`); NULL for no file.
    /// Default: NULL.
    pub log_dir: *const c_char,
    /// 1: send the token in clear to a server that offers no challenge-response (a loadmon
    /// from before it); 0: such a server is an error. Needs `token`. Anything else is
    /// `LOADMON_CONFIG`. Default: 0.
    pub allow_clear_token: i64,
    /// Milliseconds to wait for the server's `set_cid` (and, with a token, for each answer of
    /// the challenge-response before it); positive. Default: 10000.
    pub handshake_timeout_ms: i64,
    /// Longest line accepted from the server, bytes (at least 64; with a token, room for the
    /// challenge-response and the token). Default: 4096.
    pub max_line_bytes: i64,
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
            handshake_timeout_ms: ms(c.handshake_timeout),
            max_line_bytes: num(c.max_line_bytes),
        }
    }
    const FIELDS: &'static [(&'static str, usize, usize)] = fields!(LoadmonClientConfig: host,
        port, heartbeat_period_ms, stats_period_ms, run_time_ms, connect_timeout_ms,
        chunk_size_mb, file_size_mb, token, log_dir, allow_clear_token, handshake_timeout_ms,
        max_line_bytes);
    const NAME: &'static str = "LoadmonClientConfig";
}

/// The connection fields every C client config has (test client, generic client, worker).
pub(crate) struct ConnectionFields {
    host: *const c_char,
    port: i64,
    heartbeat_period_ms: i64,
    stats_period_ms: i64,
    connect_timeout_ms: i64,
    token: *const c_char,
    log_dir: *const c_char,
    allow_clear_token: i64,
    handshake_timeout_ms: i64,
    max_line_bytes: i64,
}

/// A C client config: its connection fields.
pub(crate) trait ClientFields {
    /// The connection fields, copied.
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
                    handshake_timeout_ms: self.handshake_timeout_ms,
                    max_line_bytes: self.max_line_bytes,
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
pub(crate) unsafe fn client_config(c: &impl ClientFields) -> Res<ClientConfig> {
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
        handshake_timeout: ms_setting(
            "handshake_timeout_ms",
            f.handshake_timeout_ms,
            config::HANDSHAKE_TIMEOUT,
        )?,
        max_line_bytes: int("max_line_bytes", f.max_line_bytes)?,
    })
}

/// Fills `*cfg` with the core's defaults (each field's doc states its own), as
/// `loadmon_server_config_default` does. Pass `sizeof *cfg`.
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

/// Fills `*cfg` with the core's defaults (each field's doc states its own; no run time, no
/// file_stats), as `loadmon_server_config_default` does. Pass `sizeof *cfg`.
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
