//! C arguments: pointers checked for NULL, C strings as Rust strings (UTF-8 checked), strings
//! handed back to C. Each failure is `LOADMON_INVALID_ARGUMENT` naming the argument.

use std::ffi::{c_char, CStr};

use crate::guard::{c_string, invalid, Res};

/// A non-NULL pointer as a shared reference.
///
/// # Safety
/// `p` is NULL or valid for reads of a `T` for the call.
pub(crate) unsafe fn arg<'a, T>(p: *const T, what: &str) -> Res<&'a T> {
    // SAFETY: NULL or valid per the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// A non-NULL pointer as a mutable reference.
///
/// # Safety
/// `p` is NULL or valid for reads and writes of a `T` for the call, not aliased.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, what: &str) -> Res<&'a mut T> {
    // SAFETY: NULL or valid per the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// Frees a handle given to C by `Box::into_raw`; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or from `Box::into_raw`, not used afterwards and freed only once.
pub(crate) unsafe fn free_boxed<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A non-NULL output pointer.
pub(crate) fn out_arg<T>(p: *mut T, what: &str) -> Res<*mut T> {
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
pub(crate) unsafe fn required_str(p: *const c_char, name: &str) -> Res<String> {
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
pub(crate) unsafe fn optional_str(p: *const c_char, name: &str) -> Res<Option<String>> {
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
pub(crate) unsafe fn optional_str_list(
    p: *const *const c_char,
    name: &str,
    max: usize,
) -> Res<Vec<String>> {
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
pub(crate) unsafe fn give_string(out: *mut *mut c_char, s: &str) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per the caller's contract.
        unsafe { *out = c_string(s).into_raw() };
    }
}
