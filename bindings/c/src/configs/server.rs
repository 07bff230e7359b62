//! `LoadmonServerConfig`: the server's settings and its fleet mode, and their conversion to
//! the core's `ServerConfig`.

use std::ffi::{c_char, CString};
use std::path::PathBuf;
use std::sync::OnceLock;

use loadmon::config::{self, Zero};
use loadmon::plan::Plan;
use loadmon::server::{
    FleetConfig, FleetOptionsGiven, HttpLimits, ServerConfig, MAX_HTTP_ALLOW_HOSTS,
};

use super::convert::{
    block_setting, count, flag, int, keep_files_c, keep_files_setting, mb, ms, ms_setting, num,
    rate_c, rate_setting, run_time_ms, size_mb, sync_setting, verify_setting,
};
use super::{
    default_str, write_defaults, Growable, LOADMON_AUTO_MAX_CLIENTS, LOADMON_NO_FLEET,
    LOADMON_NO_START_TIMEOUT,
};
use crate::args::{optional_str, optional_str_list, required_str};
use crate::guard::{ffi, LoadmonStatus, Res};

/// Settings of a server. Initialise with `loadmon_server_config_default(&cfg, sizeof cfg)`,
/// then change fields. Durations are milliseconds; an out-of-range number is `LOADMON_CONFIG`.
/// Each field's default is the core's (`ServerConfig::default()`; for `max_clients`, the
/// core's rule `ServerConfig::default_max_clients`), as its doc states (a test checks the two
/// agree).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonServerConfig {
    /// `sizeof` the caller's struct, set by `loadmon_server_config_default`; lets a program built
    /// against an older header (a smaller struct) work with a newer library.
    pub struct_size: usize,
    /// Address to bind. Must not be NULL. Default: "127.0.0.1".
    pub host: *const c_char,
    /// Port to bind, 0 to 65535; 0 picks a free one (read it with `loadmon_server_port`).
    /// Default: 1234.
    pub port: i64,
    /// Most clients with an id at once, 1 to 1000000; extra ones are refused. Default:
    /// `LOADMON_AUTO_MAX_CLIENTS`: the core's default (5), raised to `expect_clients` in fleet
    /// mode (as the CLI without `--max-clients` and Python's `max_clients=None`).
    pub max_clients: i64,
    /// The first client id. Default: 100.
    pub first_client_id: i64,
    /// Milliseconds without a heartbeat before a client is TIMED OUT (positive). Default: 15000.
    pub heartbeat_timeout_ms: i64,
    /// Milliseconds a new connection has to send get_cid (positive). Default: 10000.
    pub handshake_timeout_ms: i64,
    /// Where to write the JSON report when the server stops; NULL for none. Default: NULL.
    pub report_json_path: *const c_char,
    /// Shared secret clients must prove they know (it is never sent); NULL for none.
    /// Default: NULL.
    pub token: *const c_char,
    /// Directory for the session log file; NULL for no file. Default: NULL.
    pub log_dir: *const c_char,
    /// "host:port" for the HTTP JSON API, Prometheus /metrics and dashboard (port 0 picks one;
    /// read it with `loadmon_server_http_port`); NULL for none. Default: NULL.
    pub http: *const c_char,
    /// Where to write the CSV report when the server stops; NULL for none. Default: NULL.
    pub report_csv_path: *const c_char,
    /// Where to write the HTML report (table and charts) when the server stops; NULL for none.
    /// Default: NULL.
    pub report_html_path: *const c_char,
    /// Fleet mode: the clients to wait for before any starts (1 to 1000000, at most a
    /// `max_clients` that is set); every worker (`loadmon_worker_start`) gets the plan below.
    /// `LOADMON_NO_FLEET`: no fleet mode, and the `plan_` and `start_timeout_ms` fields are not
    /// used. Default: `LOADMON_NO_FLEET`.
    pub expect_clients: i64,
    /// Fleet mode: start whoever is ready this many milliseconds after the server started
    /// (positive), or `LOADMON_NO_START_TIMEOUT` to wait for every expected client. Set
    /// without `expect_clients`: `LOADMON_CONFIG`. Default: `LOADMON_NO_START_TIMEOUT`.
    pub start_timeout_ms: i64,
    /// The fleet's plan: run time, milliseconds (positive). Default: 15000.
    pub plan_run_time_ms: i64,
    /// The fleet's plan: chunk size, MB. Default: 10.
    pub plan_chunk_size_mb: i64,
    /// The fleet's plan: file size, MB. Default: 50.
    pub plan_file_size_mb: i64,
    /// The fleet's plan: smallest chunk allowed, MB. Default: 10.
    pub plan_min_chunk_size_mb: i64,
    /// The fleet's plan: "none", "file" or "direct"; NULL means "none". Default: NULL.
    pub plan_sync: *const c_char,
    /// The fleet's plan: finished files each worker keeps, at least 1, or `LOADMON_KEEP_ALL`.
    /// Default: 2.
    pub plan_keep_files: i64,
    /// Host names the HTTP listener answers to besides IP addresses and "localhost" ("*": any):
    /// an array of strings ended by a NULL entry; NULL for none. A request for another name
    /// gets 421 (DNS rebinding). Default: NULL.
    pub http_allow_hosts: *const *const c_char,
    /// 1: also take the token in clear (`token:<secret>`) from a loadmon that predates the
    /// challenge-response; 0: refuse it. Needs `token`. Anything else is `LOADMON_CONFIG`.
    /// Default: 0.
    pub allow_clear_token: i64,
    /// Most connections still in the handshake (no id yet) at once, 1 to 1000000. While all
    /// are taken, new connections wait in the kernel's listen queue (they are slowed down,
    /// never refused). Default: 256.
    pub max_pending: i64,
    /// Most client ids one run hands out, 1 to 100000000; then get_cid is refused. Bounds the
    /// report and the server's memory whatever peers do. Default: 100000.
    pub max_ids: i64,
    /// Milliseconds a peer may leave the server's replies unread before it is closed (a client
    /// with an id ends ABORTED, "peer not reading"); positive. Default: 10000.
    pub write_timeout_ms: i64,
    /// Longest line accepted from a peer, bytes (64 to 1048576). Default: 4096.
    pub max_line_bytes: i64,
    /// Milliseconds the HTTP listener keeps serving the final report after the run; 0 closes it
    /// with the run. Default: 0.
    pub http_linger_ms: i64,
    /// HTTP: milliseconds a request's headers have to arrive (slowloris); positive.
    /// Default: 10000.
    pub http_header_read_timeout_ms: i64,
    /// HTTP: milliseconds an idle keep-alive connection is kept; positive. Default: 30000.
    pub http_idle_timeout_ms: i64,
    /// HTTP: most connections open at once, 1 to 1000000 (one more gets 503). Default: 128.
    pub http_max_connections: i64,
    /// HTTP: milliseconds a response may wait on a peer that takes no byte; positive.
    /// Default: 30000.
    pub http_write_timeout_ms: i64,
    /// Where to write the fleet's merged chunk write latency intervals (HdrHistogram
    /// interval-log format) when the server stops; NULL for none. Default: NULL.
    pub latency_log_path: *const c_char,
    /// Fleet mode: writer streams of each worker, 1 to 256. Default: 1.
    pub plan_jobs: i64,
    /// Fleet mode: writes in flight per stream, 1 to 256. Default: 1.
    pub plan_iodepth: i64,
    /// Fleet mode: the pace of the whole fleet, MB/s (MiB/s), above 0 and at most 1000000,
    /// split across the workers in their plans; `LOADMON_NO_RATE`: as fast as possible.
    /// Default: LOADMON_NO_RATE.
    pub plan_rate_mb_s: f64,
    /// Threshold rules checked while the run goes on (`fleet.p99_ms < 50`,
    /// `client.mb_s >= 80 over 10s`; at most 64): an array of strings ended by a NULL entry;
    /// NULL for none. A bad rule is `LOADMON_CONFIG`, its message (`loadmon_last_error`)
    /// pointing into the rule. The report's `verdict` says which held. Default: NULL.
    pub thresholds: *const *const c_char,
    /// 1: stop the run at the first threshold that fails (clients ABORTED with the rule as the
    /// reason); 0: the verdict at the end. Needs a threshold. Default: 0.
    pub abort_on_fail: i64,
    /// An earlier run's JSON report, for rules with `baseline` as their bound; NULL for none.
    /// Default: NULL.
    pub baseline_path: *const c_char,
    /// Where to write the JUnit XML (a test case per rule and per client) when the server
    /// stops; NULL for none. Default: NULL.
    pub report_junit_path: *const c_char,
    /// Fleet mode: when each worker checks the data it wrote: "none", "rollover" or "end" (as
    /// `LoadmonTestClientConfig.verify`); NULL means "none". Default: NULL.
    pub plan_verify: *const c_char,
    /// Fleet mode: verify block size, bytes, a power of two from 512 to 1048576.
    /// Default: 4096.
    pub plan_verify_block_bytes: i64,
    /// Fleet mode: 1: a bad block does not stop a worker's writing (it still ends FAILED).
    /// Default: 0.
    pub plan_verify_continue: i64,
    /// Fleet mode: 1: with `plan_verify` "end", each worker checks another worker's kept files
    /// in a shared directory. Default: 0.
    pub plan_verify_peer: i64,
    /// Fleet mode: 1: each worker rewrites its oldest kept file in place. Default: 0.
    pub plan_overwrite: i64,
}

// The core's host default as a C string, made once (never shared with another struct's).
static DEFAULT_SERVER_HOST: OnceLock<CString> = OnceLock::new();

// SAFETY: repr(C), Copy, plain data and raw pointers; FIELDS lists every field after struct_size.
unsafe impl Growable for LoadmonServerConfig {
    fn defaults() -> Self {
        let d = ServerConfig::default();
        let p = Plan::default();
        let l = d.http_limits;
        LoadmonServerConfig {
            struct_size: size_of::<Self>(),
            host: default_str(&DEFAULT_SERVER_HOST, || d.host.clone()),
            port: i64::from(d.port),
            // The core's rule (`ServerConfig::default_max_clients`), applied at start.
            max_clients: LOADMON_AUTO_MAX_CLIENTS,
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
            plan_chunk_size_mb: mb(p.chunk_size_bytes),
            plan_file_size_mb: mb(p.file_size_bytes),
            plan_min_chunk_size_mb: mb(p.min_chunk_size_bytes),
            plan_sync: std::ptr::null(),
            plan_keep_files: keep_files_c(p.keep_files),
            http_allow_hosts: std::ptr::null(),
            allow_clear_token: i64::from(d.allow_clear_token),
            max_pending: num(d.max_pending),
            max_ids: num(d.max_ids),
            write_timeout_ms: ms(d.write_timeout),
            max_line_bytes: num(d.max_line_bytes),
            http_linger_ms: ms(d.http_linger),
            http_header_read_timeout_ms: ms(l.header_read_timeout),
            http_idle_timeout_ms: ms(l.idle_timeout),
            http_max_connections: num(l.max_connections),
            http_write_timeout_ms: ms(l.write_timeout),
            latency_log_path: std::ptr::null(),
            plan_jobs: i64::from(p.jobs),
            plan_iodepth: i64::from(p.iodepth),
            plan_rate_mb_s: rate_c(p.rate_mb_s),
            thresholds: std::ptr::null(),
            abort_on_fail: i64::from(d.abort_on_fail),
            baseline_path: std::ptr::null(),
            report_junit_path: std::ptr::null(),
            // NULL stands for the core's default, "none".
            plan_verify: std::ptr::null(),
            plan_verify_block_bytes: num(p.verify_block_bytes),
            plan_verify_continue: i64::from(p.verify_continue),
            plan_verify_peer: i64::from(p.verify_peer),
            plan_overwrite: i64::from(p.overwrite),
        }
    }
    const FIELDS: &'static [(&'static str, usize, usize)] = fields!(LoadmonServerConfig: host,
        port, max_clients, first_client_id, heartbeat_timeout_ms, handshake_timeout_ms,
        report_json_path, token, log_dir, http, report_csv_path, report_html_path,
        expect_clients, start_timeout_ms, plan_run_time_ms, plan_chunk_size_mb,
        plan_file_size_mb, plan_min_chunk_size_mb, plan_sync, plan_keep_files,
        http_allow_hosts, allow_clear_token, max_pending, max_ids, write_timeout_ms,
        max_line_bytes, http_linger_ms, http_header_read_timeout_ms, http_idle_timeout_ms,
        http_max_connections, http_write_timeout_ms, latency_log_path, plan_jobs, plan_iodepth,
        plan_rate_mb_s, thresholds, abort_on_fail, baseline_path, report_junit_path,
        plan_verify, plan_verify_block_bytes, plan_verify_continue, plan_verify_peer,
        plan_overwrite);
    const NAME: &'static str = "LoadmonServerConfig";
}

/// The core server settings of a C server config (the core's `validate` checks them when the
/// server starts).
///
/// # Safety
/// `c`'s strings are NULL or NUL-terminated, and `http_allow_hosts` and `thresholds` NULL or
/// an array of them ended by NULL.
pub(crate) unsafe fn server_config(c: &LoadmonServerConfig) -> Res<ServerConfig> {
    // SAFETY: forwarded contract.
    let fleet = unsafe { fleet_config(c) }?;
    let max_clients = match c.max_clients {
        LOADMON_AUTO_MAX_CLIENTS => ServerConfig::default_max_clients(fleet.as_ref()),
        n => count(config::CLIENTS, "max_clients", n)?,
    };
    let mut config = ServerConfig {
        // SAFETY: forwarded contract.
        host: unsafe { required_str(c.host, "host") }?,
        port: int("port", c.port)?,
        max_clients,
        max_pending: count(config::CLIENTS, "max_pending", c.max_pending)?,
        max_ids: count(config::IDS, "max_ids", c.max_ids)?,
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
        // The core's validate checks it as positive (no named rule of its own).
        write_timeout: ms_setting("write_timeout_ms", c.write_timeout_ms, Zero::Rejected)?,
        max_line_bytes: int("max_line_bytes", c.max_line_bytes)?,
        allow_clear_token: flag("allow_clear_token", c.allow_clear_token)?,
        abort_on_fail: flag("abort_on_fail", c.abort_on_fail)?,
        http_linger: ms_setting("http_linger_ms", c.http_linger_ms, config::HTTP_LINGER)?,
        http_limits: http_limits(c)?,
        fleet,
        ..ServerConfig::default()
    };
    // SAFETY: forwarded contract.
    unsafe { set_server_strings(&mut config, c) }?;
    Ok(config)
}

/// The string settings of a C server config: token, paths, HTTP address and allowed hosts.
///
/// # Safety
/// As [`server_config`].
unsafe fn set_server_strings(config: &mut ServerConfig, c: &LoadmonServerConfig) -> Res {
    let path = |p: *const c_char, name: &str| -> Res<Option<PathBuf>> {
        // SAFETY: NULL or NUL-terminated per the contract.
        Ok(unsafe { optional_str(p, name) }?.map(PathBuf::from))
    };
    // SAFETY (both optional_str): NULL or NUL-terminated per the contract.
    config.token = unsafe { optional_str(c.token, "token") }?;
    config.http = unsafe { optional_str(c.http, "http") }?;
    config.report_json = path(c.report_json_path, "report_json_path")?;
    config.log_dir = path(c.log_dir, "log_dir")?;
    config.report_csv = path(c.report_csv_path, "report_csv_path")?;
    config.report_html = path(c.report_html_path, "report_html_path")?;
    config.latency_log = path(c.latency_log_path, "latency_log_path")?;
    config.baseline = path(c.baseline_path, "baseline_path")?;
    config.report_junit = path(c.report_junit_path, "report_junit_path")?;
    // SAFETY: NULL or a NULL-ended array of such strings per the contract.
    config.thresholds =
        unsafe { optional_str_list(c.thresholds, "thresholds", loadmon::verdict::MAX_RULES) }?;
    // SAFETY: NULL or a NULL-ended array of such strings per the contract.
    config.http_allow_hosts =
        unsafe { optional_str_list(c.http_allow_hosts, "http_allow_hosts", MAX_HTTP_ALLOW_HOSTS) }?;
    Ok(())
}

/// The HTTP listener's limits of a C server config (each a positive duration, as the core's
/// `validate` checks them, or a count of connections).
fn http_limits(c: &LoadmonServerConfig) -> Res<HttpLimits> {
    Ok(HttpLimits {
        header_read_timeout: ms_setting(
            "http_header_read_timeout_ms",
            c.http_header_read_timeout_ms,
            Zero::Rejected,
        )?,
        idle_timeout: ms_setting(
            "http_idle_timeout_ms",
            c.http_idle_timeout_ms,
            Zero::Rejected,
        )?,
        max_connections: count(
            config::CLIENTS,
            "http_max_connections",
            c.http_max_connections,
        )?,
        write_timeout: ms_setting(
            "http_write_timeout_ms",
            c.http_write_timeout_ms,
            Zero::Rejected,
        )?,
    })
}

/// The fleet mode of a C server config (`None` for `LOADMON_NO_FLEET`).
///
/// # Safety
/// `c.plan_sync` and `c.plan_verify` are NULL or NUL-terminated.
unsafe fn fleet_config(c: &LoadmonServerConfig) -> Res<Option<FleetConfig>> {
    if c.expect_clients == LOADMON_NO_FLEET {
        let given = FleetOptionsGiven {
            plan: &[],
            start_timeout: (c.start_timeout_ms != LOADMON_NO_START_TIMEOUT)
                .then_some("start_timeout_ms"),
            expect_clients: "expect_clients",
        };
        return Ok(FleetConfig::from_options(None, None, None, given)?);
    }
    let expect_clients = count(config::CLIENTS, "expect_clients", c.expect_clients)?;
    // SAFETY: forwarded contract.
    let plan = unsafe { plan(c) }?;
    let start_timeout = match c.start_timeout_ms {
        LOADMON_NO_START_TIMEOUT => None,
        t => Some(ms_setting("start_timeout_ms", t, config::START_TIMEOUT)?),
    };
    Ok(FleetConfig::from_options(
        Some(expect_clients),
        start_timeout,
        Some(plan),
        FleetOptionsGiven {
            plan: &[],
            start_timeout: None,
            expect_clients: "expect_clients",
        },
    )?)
}

/// The fleet's plan of a C server config (its `plan_` fields).
///
/// # Safety
/// `c.plan_sync` and `c.plan_verify` are NULL or NUL-terminated.
unsafe fn plan(c: &LoadmonServerConfig) -> Res<Plan> {
    Ok(Plan {
        run_time_s: ms_setting("plan_run_time_ms", c.plan_run_time_ms, config::RUN_TIME)?
            .as_secs_f64(),
        chunk_size_bytes: size_mb(
            config::CHUNK_SIZE_BYTES,
            "plan_chunk_size_mb",
            c.plan_chunk_size_mb,
        )?,
        file_size_bytes: size_mb(
            config::FILE_SIZE_BYTES,
            "plan_file_size_mb",
            c.plan_file_size_mb,
        )?,
        min_chunk_size_bytes: size_mb(
            config::MIN_CHUNK_SIZE_BYTES,
            "plan_min_chunk_size_mb",
            c.plan_min_chunk_size_mb,
        )?,
        jobs: count(config::JOBS, "plan_jobs", c.plan_jobs)?,
        iodepth: count(config::IODEPTH, "plan_iodepth", c.plan_iodepth)?,
        rate_mb_s: rate_setting("plan_rate_mb_s", c.plan_rate_mb_s)?,
        // SAFETY: forwarded contract.
        sync: unsafe { sync_setting(c.plan_sync, "plan_sync") }?,
        keep_files: keep_files_setting("plan_keep_files", c.plan_keep_files)?,
        // SAFETY: forwarded contract.
        verify: unsafe { verify_setting(c.plan_verify, "plan_verify") }?,
        verify_block_bytes: block_setting("plan_verify_block_bytes", c.plan_verify_block_bytes)?,
        verify_continue: flag("plan_verify_continue", c.plan_verify_continue)?,
        verify_peer: flag("plan_verify_peer", c.plan_verify_peer)?,
        overwrite: flag("plan_overwrite", c.plan_overwrite)?,
    })
}

/// Fills `*cfg` with the core's defaults (each field's doc states its own):
/// `struct_size` = `struct_size`, and every field that fits in it. Pass `sizeof *cfg`.
/// `LOADMON_INVALID_ARGUMENT` if `cfg` is NULL or `struct_size` is smaller than a `size_t` or
/// larger than this library's struct.
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
