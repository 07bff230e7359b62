//! `LoadmonWorkerConfig`: how a fleet worker reaches its server and what plans it takes, and
//! its conversion to the core's `WorkerConfig`.

use std::ffi::{c_char, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

use loadmon::config;
use loadmon::worker::WorkerConfig;

use super::client::client_config;
use super::convert::{count, flag, ms, ms_setting, num};
use super::{default_str, read_config, write_defaults, Growable};
use crate::args::required_str;
use crate::guard::{ffi, LoadmonStatus, Res};

/// Settings of a fleet worker (`loadmon_worker_start`): how to reach the fleet server and
/// where to write; the test itself (run time, sizes, sync, files kept) is the plan the server
/// sends. Initialise with `loadmon_worker_config_default(&cfg, sizeof cfg)`, then change
/// fields. Durations are milliseconds; an out-of-range number is `LOADMON_CONFIG`. Each
/// field's default is the core's (`WorkerConfig::default()`), as its doc states (a test checks
/// the two agree).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonWorkerConfig {
    /// `sizeof` the caller's struct, set by `loadmon_worker_config_default`.
    pub struct_size: usize,
    /// Server host. Must not be NULL. Default: "127.0.0.1".
    pub host: *const c_char,
    /// Server port, 1 to 65535. Default: 1234.
    pub port: i64,
    /// Directory for the data files. Must not be NULL. Default: "client_files".
    pub out_dir: *const c_char,
    /// Shared secret for the server; NULL for none. Default: NULL.
    pub token: *const c_char,
    /// 1: come back for the next run after each one until `loadmon_worker_cancel`; 0: one run.
    /// Anything else is `LOADMON_CONFIG`. Default: 0.
    pub stay: i64,
    /// With `stay`, the longest pause between two attempts to reach the server, milliseconds
    /// (positive). Default: 5000.
    pub retry_max_ms: i64,
    /// Milliseconds between heartbeats (positive). Default: 5000.
    pub heartbeat_period_ms: i64,
    /// Milliseconds between stats reports (positive). Default: 10000.
    pub stats_period_ms: i64,
    /// Milliseconds to keep retrying an unreachable server; 0 makes one attempt. Default: 5000.
    pub connect_timeout_ms: i64,
    /// Directory for the session log file; NULL for no file. Default: NULL.
    pub log_dir: *const c_char,
    /// The largest chunk a plan may ask for, MiB (a chunk is held in memory), 1 to 4096. A
    /// plan beyond a limit is refused; the server lists the worker FAILED. Default: 256.
    pub max_chunk_mb: i64,
    /// The longest run time a plan may ask for, milliseconds (positive).
    /// Default: 86400000 (24 h).
    pub max_run_time_ms: i64,
    /// The most disk space a plan may occupy in `out_dir` at once, MiB (its kept files and
    /// the one being written; with keep-all, what the run time fills at the probe's rate).
    /// A plan must also fit in the space free there. Default: 10240 (10 GiB).
    pub max_disk_mb: i64,
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

// The core's defaults as C strings, made once (never shared with another struct's).
static DEFAULT_WORKER_HOST: OnceLock<CString> = OnceLock::new();
static DEFAULT_WORKER_OUT_DIR: OnceLock<CString> = OnceLock::new();

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
            handshake_timeout_ms: ms(w.client.handshake_timeout),
            max_line_bytes: num(w.client.max_line_bytes),
        }
    }
    const FIELDS: &'static [(&'static str, usize, usize)] = fields!(LoadmonWorkerConfig: host,
        port, out_dir, token, stay, retry_max_ms, heartbeat_period_ms, stats_period_ms,
        connect_timeout_ms, log_dir, max_chunk_mb, max_run_time_ms, max_disk_mb,
        allow_clear_token, handshake_timeout_ms, max_line_bytes);
    const NAME: &'static str = "LoadmonWorkerConfig";
}

/// The core worker settings of a C worker config (checked by the core's `validate`).
///
/// # Safety
/// `cfg` is NULL or points to a config initialised by `loadmon_worker_config_default` whose
/// strings are NULL or NUL-terminated.
pub(crate) unsafe fn worker_config(cfg: *const LoadmonWorkerConfig) -> Res<WorkerConfig> {
    // SAFETY: per the contract.
    let c = unsafe { read_config(cfg, "cfg") }?;
    // SAFETY (every string below): NULL or NUL-terminated per the contract.
    let config = WorkerConfig {
        client: unsafe { client_config(&c) }?,
        out_dir: PathBuf::from(unsafe { required_str(c.out_dir, "out_dir") }?),
        stay: flag("stay", c.stay)?,
        retry_max: ms_setting("retry_max_ms", c.retry_max_ms, config::RETRY_MAX)?,
        max_chunk_mb: count(config::CHUNK_SIZE_MB, "max_chunk_mb", c.max_chunk_mb)?,
        max_run_time: ms_setting("max_run_time_ms", c.max_run_time_ms, config::MAX_RUN_TIME)?,
        max_disk_mb: count(config::MAX_DISK_MB, "max_disk_mb", c.max_disk_mb)?,
    };
    config.validate()?;
    Ok(config)
}

/// Fills `*cfg` with the core's defaults for a worker (each field's doc states its own), as
/// `loadmon_server_config_default` does. Pass `sizeof *cfg`.
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
