//! The log callback: loadmon's records delivered to C (`loadmon_set_log_callback`) on a thread
//! of loadmon's own through a bounded queue, what was dropped, and the flush.

use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use loadmon::config::wait_timeout_ms;
use loadmon::logging::{
    set_log_sink, LogDelivery, LogLevel, LogRecord, LOG_DRAIN, LOG_QUEUE_CAPACITY,
};
use loadmon::Error;

use crate::guard::{c_string, ffi, ffi_value, LoadmonStatus, Res};

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

pub(crate) struct CLogger {
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
pub(crate) struct Logger {
    delivery: Option<Arc<LogDelivery>>,
    dropped_before: u64,
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    delivery: None,
    dropped_before: 0,
});

pub(crate) fn logger() -> std::sync::MutexGuard<'static, Logger> {
    LOGGER.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// Set while this thread runs the log callback (which must not replace itself nor wait
    /// for its own deliveries: deadlock).
    static IN_LOG_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn not_from_log_callback(name: &str) -> Res {
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
