//! A fleet worker: `loadmon_worker_start`/`_run` and its handle (join, cancel, free).

use std::ffi::c_char;

use loadmon::blocking::WorkerHandle;
use loadmon::config::wait_timeout_ms;
use loadmon::worker::WorkerSummary;
use loadmon::Error;

use crate::args::{arg, free_boxed, give_string, out_arg};
use crate::configs::{worker_config, LoadmonWorkerConfig};
use crate::guard::{ffi, ffi_void, invalid, LoadmonStatus, Res};

/// Hands a worker's summary to C as JSON (if `out` is not NULL): `passed`, `failed` (runs),
/// and `last`, the last run that passed (`run`, `plan` with `run_time_s`, `chunk_size_mb`,
/// `file_size_mb`, `min_chunk_size_mb`, `sync`, `keep_files`, and `result` as
/// `loadmon_test_client_run` gives it) or null.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
pub(crate) unsafe fn give_summary(out: *mut *mut c_char, s: &WorkerSummary) -> Res {
    let json = serde_json::to_string_pretty(s)
        .map_err(|e| Error::Internal(format!("worker summary as JSON: {e}")))?;
    // SAFETY: forwarded contract.
    unsafe { give_string(out, &json) };
    Ok(())
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
