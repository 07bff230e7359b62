//! A generic client's workload: the C callback (`LoadmonWorkloadFn`) run as the core's
//! `Workload`, and what it may call on its `LoadmonClientContext` (id, time left, writes,
//! rollovers, stats, its error).

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use loadmon::workload::{Context, Workload};
use loadmon::Error;

use crate::args::{arg, arg_mut, required_str};
use crate::configs::ms;
use crate::guard::{ffi, ffi_value, LoadmonStatus};

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

/// A C callback as the core's `Workload`.
pub(crate) struct CWorkload {
    /// The callback.
    pub(crate) run_tests: unsafe extern "C" fn(*mut LoadmonClientContext, *mut c_void) -> c_int,
    /// Its `user_data`, given back on each call.
    pub(crate) user_data: *mut c_void,
    /// The run time it may count down (`loadmon_client_context_time_is_up`).
    pub(crate) run_time: Option<Duration>,
    /// The chunk and file sizes announced in `file_stats`.
    pub(crate) file_stats: Option<(u64, u64)>,
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
