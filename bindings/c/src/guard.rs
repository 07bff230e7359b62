//! The boundary guard: every `extern "C"` function runs its body inside `ffi`, `ffi_value` or
//! `ffi_void`, which catch a panic (it becomes `LOADMON_INTERNAL`), turn the core's errors into
//! a `LoadmonStatus` and set this thread's last error (`loadmon_last_error`). Also the status
//! names and `loadmon_string_free`, the one way a string goes back.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use loadmon::error::ErrorKind;
use loadmon::Error;

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
pub(crate) fn status_of(kind: ErrorKind) -> LoadmonStatus {
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

pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

pub(crate) fn set_error(msg: &str) {
    let c = c_string(msg);
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Why a call failed, before it becomes a status and this thread's last error.
#[derive(Debug)]
pub(crate) enum Fail {
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

pub(crate) type Res<T = ()> = Result<T, Fail>;

pub(crate) fn invalid(msg: impl Into<String>) -> Fail {
    Fail::Invalid(msg.into())
}

/// Records a failure of `name` as this thread's last error; returns its status.
pub(crate) fn record(name: &str, f: Fail) -> LoadmonStatus {
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
pub(crate) fn guarded<T>(name: &str, body: impl FnOnce() -> Res<T>) -> Res<T> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|p| Err(Error::from_panic(name, p.as_ref()).into()))
}

/// The guard of every function returning a status: `LOADMON_OK`, or the failure's status with
/// this thread's last error set.
pub(crate) fn ffi(name: &str, body: impl FnOnce() -> Res) -> LoadmonStatus {
    match guarded(name, body) {
        Ok(()) => LOADMON_OK,
        Err(f) => record(name, f),
    }
}

/// The guard of a getter that returns its value: `fallback` (documented per getter) on a
/// failure, with this thread's last error set.
pub(crate) fn ffi_value<T>(name: &str, fallback: T, body: impl FnOnce() -> Res<T>) -> T {
    match guarded(name, body) {
        Ok(v) => v,
        Err(f) => {
            record(name, f);
            fallback
        }
    }
}

/// The guard of a function returning nothing (`_free`): a failure only sets the last error.
pub(crate) fn ffi_void(name: &str, body: impl FnOnce() -> Res) {
    if let Err(f) = guarded(name, body) {
        record(name, f);
    }
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
