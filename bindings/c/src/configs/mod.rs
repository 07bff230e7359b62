//! The C configs: `#[repr(C)]` structs that can grow (`struct_size` first, fields only ever
//! appended), their defaults (always the core's `Default`), and their conversion to the core's
//! settings with the core's rules. One file per face's config: `server`, `client` (test client
//! and generic client), `worker`, `verify` (`loadmon_verify`'s options); `convert` holds the number and string conversions they share.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use crate::args::out_arg;
use crate::guard::{c_string, invalid, Res};

/// `keep_files`: keep every finished file (can fill the disk on a long run).
pub const LOADMON_KEEP_ALL: i64 = -1;
/// `run_time_ms` of `LoadmonClientConfig`: the client has no run time (the callback decides
/// when it is done).
pub const LOADMON_NO_RUN_TIME: i64 = -1;
/// `chunk_size_mb`/`file_size_mb` of `LoadmonClientConfig`: announce no `file_stats`.
pub const LOADMON_NO_FILE_STATS: i64 = -1;
/// `rate_mb_s` of `LoadmonTestClientConfig` (`plan_rate_mb_s` of `LoadmonServerConfig`): no
/// pace, as fast as the device takes the writes (0 and other negative values are
/// `LOADMON_CONFIG`).
pub const LOADMON_NO_RATE: i64 = -1;
/// A `timeout_ms` that waits as long as it takes (any negative value does).
pub const LOADMON_WAIT_FOREVER: i64 = -1;
/// `expect_clients` of `LoadmonServerConfig`: no fleet mode (each client starts at its
/// `ready`, as the seed's server did); 0 is `LOADMON_CONFIG`.
pub const LOADMON_NO_FLEET: i64 = -1;
/// `start_timeout_ms` of `LoadmonServerConfig`: wait for every expected client however long.
pub const LOADMON_NO_START_TIMEOUT: i64 = -1;
/// `max_clients` of `LoadmonServerConfig`, and its default: the core's rule, as the CLI
/// without `--max-clients` and Python's `max_clients=None` take it: the default, raised to
/// `expect_clients` in fleet mode so that the fleet can start. (-1 and 0 are `LOADMON_CONFIG`.)
pub const LOADMON_AUTO_MAX_CLIENTS: i64 = -2;

/// A config struct that starts with `struct_size` and grows by appending fields.
///
/// # Safety
/// `FIELDS` lists every field after `struct_size` as (name, offset, size), in order; the struct is
/// `repr(C)`, `Copy`, and made of plain data and raw pointers.
pub(crate) unsafe trait Growable: Copy {
    /// The struct as the `_default` function fills it, at full size.
    fn defaults() -> Self;
    /// (name, offset, size) of every field after `struct_size`.
    const FIELDS: &'static [(&'static str, usize, usize)];
    /// The name for messages.
    const NAME: &'static str;
}

/// The caller's config of `struct_size` bytes over the defaults: each field that lies wholly
/// within `struct_size` comes from the caller, the others keep their defaults.
///
/// # Safety
/// `p` is NULL or points to at least `p->struct_size` readable bytes laid out as `T`'s prefix.
pub(crate) unsafe fn read_config<T: Growable>(p: *const T, what: &str) -> Res<T> {
    if p.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL; every config starts with a size_t struct_size.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    check_size::<T>(size, what)?;
    let mut out = T::defaults();
    let (src, dst) = (p.cast::<u8>(), (&raw mut out).cast::<u8>());
    for &(_, off, len) in T::FIELDS.iter().filter(|&&(_, off, len)| off + len <= size) {
        // SAFETY: the field lies within the caller's `size` bytes and within `out`; the
        // ranges are distinct objects.
        unsafe { std::ptr::copy_nonoverlapping(src.add(off), dst.add(off), len) };
    }
    Ok(out)
}

/// Writes the defaults into the caller's config of `size` bytes: `struct_size`, then each
/// field that lies wholly within `size`.
///
/// # Safety
/// `p` is NULL or points to at least `size` writable bytes.
pub(crate) unsafe fn write_defaults<T: Growable>(p: *mut T, size: usize) -> Res {
    let p = out_arg(p, "cfg")?;
    check_size::<T>(size, "struct_size")?;
    let d = T::defaults();
    let (src, dst) = ((&raw const d).cast::<u8>(), p.cast::<u8>());
    // SAFETY: `size` writable bytes per the contract; struct_size is the first field.
    unsafe { dst.cast::<usize>().write_unaligned(size) };
    for &(_, off, len) in T::FIELDS.iter().filter(|&&(_, off, len)| off + len <= size) {
        // SAFETY: as above; `d` is a distinct local.
        unsafe { std::ptr::copy_nonoverlapping(src.add(off), dst.add(off), len) };
    }
    Ok(())
}

/// Checks a caller's `struct_size`: at least a `size_t`, at most this library's struct.
fn check_size<T: Growable>(size: usize, what: &str) -> Res {
    let full = size_of::<T>();
    let least = size_of::<usize>();
    if size < least || size > full {
        return Err(invalid(format!(
            "{what}: struct_size {size} is not a {} of {least} to {full} bytes (initialise it \
             with its _default function and sizeof; a larger one is from a newer loadmon)",
            T::NAME
        )));
    }
    Ok(())
}

/// `Growable::FIELDS` of a config struct: (name, offset, size) of each named field.
macro_rules! fields {
    ($t:ty: $($f:ident),* $(,)?) => {
        &[$((
            stringify!($f),
            std::mem::offset_of!($t, $f),
            {
                const fn size<T, F>(_: fn(&T) -> &F) -> usize {
                    size_of::<F>()
                }
                size(|c: &$t| &c.$f)
            },
        )),*]
    };
}

/// A string default of the core as a C string that lives as long as the program (the `_default`
/// functions hand out pointers to it): made once, from the core's value.
pub(crate) fn default_str(
    cell: &'static OnceLock<CString>,
    value: impl FnOnce() -> String,
) -> *const c_char {
    cell.get_or_init(|| c_string(&value())).as_ptr()
}

// In the header's order (a blank line keeps rustfmt from sorting them).
mod server;

mod client;

mod worker;

mod verify;

mod convert;

pub(crate) use client::client_config;
pub use client::{
    loadmon_client_config_default, loadmon_test_client_config_default, LoadmonClientConfig,
    LoadmonTestClientConfig,
};
pub(crate) use convert::{
    block_setting, count, flag, keep_files_setting, ms, ms_setting, optional_size, rate_setting,
    size_mb, sync_setting, verify_setting,
};
pub(crate) use server::server_config;
pub use server::{loadmon_server_config_default, LoadmonServerConfig};
pub(crate) use verify::verify_config;
pub use verify::{loadmon_verify_options_default, LoadmonVerifyOptions, LOADMON_VERIFY_FROM_FILE};
pub(crate) use worker::worker_config;
pub use worker::{loadmon_worker_config_default, LoadmonWorkerConfig};

// The header's reader, shared with tests/defaults.rs.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/header_doc/mod.rs"]
mod header_doc;

#[cfg(test)]
mod tests {
    use super::*;

    fn covers_every_byte<T: Growable>() {
        let mut end = size_of::<usize>();
        for &(name, off, len) in T::FIELDS {
            assert_eq!(
                off,
                end,
                "{}: a gap or a missing field before {name} at offset {off}",
                T::NAME
            );
            end = off + len;
        }
        // No tail padding: a field appended later starts at or after today's sizeof.
        assert_eq!(
            end,
            size_of::<T>(),
            "{}: tail padding or a field missing",
            T::NAME
        );
    }

    /// Each field of `T::defaults()` is what the header's doc says it is (`Default: <value>`);
    /// tests/defaults.rs checks those against the core's.
    fn defaults_are_documented<T: Growable>() -> Vec<String> {
        use super::header_doc::{constants, fields, header, stated_default, DocDefault};
        let h = header();
        let (consts, doc) = (constants(&h), fields(&h, T::NAME));
        let d = T::defaults();
        let base = (&raw const d).cast::<u8>();
        let mut wrong = Vec::new();
        for &(name, off, _) in T::FIELDS {
            let f = doc.iter().find(|f| f.name == name).expect("in the header");
            // SAFETY: `off` is the offset of a field of `d` of the type the header names.
            let actual = unsafe {
                match f.c_type.as_str() {
                    "int64_t" => DocDefault::Int(base.add(off).cast::<i64>().read()),
                    // Every default of a uint64_t is 0 (LOADMON_VERIFY_FROM_FILE).
                    "uint64_t" => {
                        let v = base.add(off).cast::<u64>().read();
                        DocDefault::Int(i64::try_from(v).unwrap_or(i64::MAX))
                    }
                    // Every default of a double is a whole number (LOADMON_NO_RATE).
                    "double" => {
                        let v = base.add(off).cast::<f64>().read();
                        assert_eq!(v.fract(), 0.0, "{}.{name}: {v}", T::NAME);
                        DocDefault::Int(v as i64)
                    }
                    "const char *" | "const char *const *" => {
                        match base.add(off).cast::<*const c_char>().read() {
                            p if p.is_null() => DocDefault::Null,
                            p => DocDefault::Str(
                                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned(),
                            ),
                        }
                    }
                    t => panic!("{}.{name}: a type this test cannot read: {t}", T::NAME),
                }
            };
            match stated_default(&f.doc, &consts) {
                Ok(stated) if stated == actual => {}
                Ok(stated) => wrong.push(format!(
                    "{}.{name}: the doc says {stated:?}, the _default function gives {actual:?}",
                    T::NAME
                )),
                Err(e) => wrong.push(format!("{}.{name}: {e}", T::NAME)),
            }
        }
        wrong
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let wrong = [
            defaults_are_documented::<LoadmonServerConfig>(),
            defaults_are_documented::<LoadmonTestClientConfig>(),
            defaults_are_documented::<LoadmonClientConfig>(),
            defaults_are_documented::<LoadmonWorkerConfig>(),
            defaults_are_documented::<LoadmonVerifyOptions>(),
        ]
        .concat();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn configs_are_growable() {
        covers_every_byte::<LoadmonServerConfig>();
        covers_every_byte::<LoadmonTestClientConfig>();
        covers_every_byte::<LoadmonClientConfig>();
        covers_every_byte::<LoadmonWorkerConfig>();
        covers_every_byte::<LoadmonVerifyOptions>();
    }
}
