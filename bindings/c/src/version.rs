//! The library's version: the header's `LOADMON_VERSION_*` macros (checked against the crate
//! version when the library is built) and `loadmon_version()`, the version loaded at run time.

use std::ffi::{c_char, CStr};

use crate::guard::ffi_value;

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
