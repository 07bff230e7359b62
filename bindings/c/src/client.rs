//! Clients: a file-writing test client (`loadmon_test_client_run`/`_start`) and a generic one
//! whose workload is a C callback (`loadmon_client_run`/`_start`), and the handle both give
//! (join, cancel, free).

use std::ffi::{c_char, c_void};
use std::path::PathBuf;

use loadmon::blocking::ClientHandle;
use loadmon::client::ClientResult;
use loadmon::config::{self, wait_timeout_ms};
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};

use crate::args::{arg, give_string, out_arg, required_str};
use crate::configs::{
    block_setting, client_config, count, flag, keep_files_setting, ms_setting, optional_size,
    rate_setting, read_config, size_mb, sync_setting, verify_setting, LoadmonClientConfig,
    LoadmonTestClientConfig, LOADMON_NO_RUN_TIME,
};
use crate::context::{CWorkload, LoadmonWorkloadFn};
use crate::guard::{ffi, ffi_void, invalid, LoadmonStatus, Res};

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
pub(crate) unsafe fn give_result(out: *mut *mut c_char, r: &ClientResult) {
    // SAFETY: forwarded contract.
    unsafe { give_string(out, &r.to_json()) };
}

/// Validates a C test client config (the seed's rules and the timed probe) and starts the
/// client.
///
/// # Safety
/// As `loadmon_test_client_start`'s `cfg`.
pub(crate) unsafe fn spawn_test_client(cfg: *const LoadmonTestClientConfig) -> Res<ClientHandle> {
    // SAFETY: per the contract.
    let c = unsafe { read_config(cfg, "cfg") }?;
    // SAFETY: strings are NULL or NUL-terminated per the contract.
    let client = unsafe { client_config(&c) }?;
    // SAFETY: as above.
    let out_dir = unsafe { required_str(c.out_dir, "out_dir") }?;
    // SAFETY: as above.
    let sync = unsafe { sync_setting(c.sync, "sync") }?;
    // SAFETY: as above.
    let verify = unsafe { verify_setting(c.verify, "verify") }?;
    let writer = FileWriterConfig {
        run_time_s: ms_setting("run_time_ms", c.run_time_ms, config::RUN_TIME)?.as_secs_f64(),
        chunk_size_bytes: size_mb(config::CHUNK_SIZE_BYTES, "chunk_size_mb", c.chunk_size_mb)?,
        file_size_bytes: size_mb(config::FILE_SIZE_BYTES, "file_size_mb", c.file_size_mb)?,
        min_chunk_size_bytes: size_mb(
            config::MIN_CHUNK_SIZE_BYTES,
            "min_chunk_size_mb",
            c.min_chunk_size_mb,
        )?,
        out_dir: PathBuf::from(out_dir),
        sync,
        keep_files: keep_files_setting("keep_files", c.keep_files)?,
        jobs: count(config::JOBS, "jobs", c.jobs)?,
        iodepth: count(config::IODEPTH, "iodepth", c.iodepth)?,
        rate_mb_s: rate_setting("rate_mb_s", c.rate_mb_s)?,
        verify,
        verify_block_bytes: block_setting("verify_block_bytes", c.verify_block_bytes)?,
        verify_continue: flag("verify_continue", c.verify_continue)?,
        verify_peer: flag("verify_peer", c.verify_peer)?,
        overwrite: flag("overwrite", c.overwrite)?,
    };
    Ok(ClientHandle::spawn(client, FileWriter::new(writer)?)?)
}

/// Runs one file-writing test client to the end (validation, connect, write for the run time,
/// `done`): `loadmon_test_client_start` then `loadmon_client_join` with no timeout. On
/// `LOADMON_OK`, `*result_json` (if `result_json` is not NULL) receives the result as JSON
/// (`client_id`, `files_written`, `bytes_written`, `run_time_s`, `throughput_mb_s`,
/// `chunk_p50_ms`, `chunk_p99_ms`, `heartbeats_sent`, `stats_sent`, and `verify`: what the
/// check of the data found, null without one), to free with
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

/// Checks a C generic client config and starts the client with `run_tests(ctx, user_data)`.
///
/// # Safety
/// As `loadmon_client_start`'s arguments.
pub(crate) unsafe fn spawn_client(
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
