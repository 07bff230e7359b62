//! Conversions of C config fields (an `int64_t`, a C string) to the core's types, each with the
//! core's rule for the setting (`loadmon::config`), and of the core's defaults back to C.

use std::ffi::c_char;
use std::time::Duration;

use loadmon::config::{self, integer, millis, Count, Zero};
use loadmon::workload::file_writer::{KeepFiles, SyncMode, VerifyMode};
use loadmon::Error;

use super::{LOADMON_KEEP_ALL, LOADMON_NO_FILE_STATS, LOADMON_NO_RATE};
use crate::args::optional_str;
use crate::guard::Res;

/// A C integer setting whose only bounds are its type's (`LOADMON_CONFIG` naming `name` if it
/// does not fit).
pub(crate) fn int<T: loadmon::config::Integer>(name: &str, v: i64) -> Res<T> {
    Ok(integer::<T>(name, i128::from(v))?)
}

/// A C integer setting with the core's rule for it (`LOADMON_CONFIG` naming `name` and the
/// rule's bounds if it is outside them).
pub(crate) fn count<T: loadmon::config::Integer>(rule: Count, name: &str, v: i64) -> Res<T> {
    Ok(rule.get::<T>(name, i128::from(v))?)
}

/// A C millisecond setting as a duration, with the core's rule for it (`zero`: whether 0 is
/// allowed); out of bounds is `LOADMON_CONFIG` naming `name` and the bounds.
pub(crate) fn ms_setting(name: &str, v: i64, zero: Zero) -> Res<Duration> {
    Ok(millis(name, v, zero)?)
}

/// A duration as whole milliseconds for a C config default.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An unsigned default as a C `int64_t`.
pub(crate) fn num(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// A run time in seconds (the core's `f64`) as C milliseconds, for a config default.
pub(crate) fn run_time_ms(s: f64) -> i64 {
    Duration::try_from_secs_f64(s).map_or(i64::MAX, ms)
}

/// `keep_files` as C has it (`LOADMON_KEEP_ALL` for all), for a config default.
pub(crate) fn keep_files_c(k: KeepFiles) -> i64 {
    match k {
        KeepFiles::All => LOADMON_KEEP_ALL,
        KeepFiles::Last(n) => num(n),
    }
}

/// A C `keep_files` setting named `name` (`LOADMON_KEEP_ALL` or at least 1) with the core's
/// rules.
pub(crate) fn keep_files_setting(name: &str, v: i64) -> Res<KeepFiles> {
    Ok(match v {
        LOADMON_KEEP_ALL => KeepFiles::All,
        n => KeepFiles::setting(name, i128::from(n), "LOADMON_KEEP_ALL")?,
    })
}

/// A C sync mode (NULL: the default).
///
/// # Safety
/// `p` is NULL or NUL-terminated.
pub(crate) unsafe fn sync_setting(p: *const c_char, name: &str) -> Res<SyncMode> {
    // SAFETY: forwarded contract.
    Ok(match unsafe { optional_str(p, name) }? {
        Some(s) => s.parse::<SyncMode>()?,
        None => SyncMode::default(),
    })
}

/// A C verify mode (NULL: the default).
///
/// # Safety
/// `p` is NULL or NUL-terminated.
pub(crate) unsafe fn verify_setting(p: *const c_char, name: &str) -> Res<VerifyMode> {
    // SAFETY: forwarded contract.
    Ok(match unsafe { optional_str(p, name) }? {
        Some(s) => s.parse::<VerifyMode>()?,
        None => VerifyMode::default(),
    })
}

/// A C verify block size, bytes, by the core's bounds (`verify::check_block_bytes`);
/// `LOADMON_CONFIG` naming `name` outside them.
pub(crate) fn block_setting(name: &str, v: i64) -> Res<u64> {
    let checked = u64::try_from(v)
        .map_err(|_| {
            Error::Config(format!(
                "verify block of {v} bytes: it must be a power of two from {} bytes to {} bytes",
                loadmon::verify::MIN_BLOCK_BYTES,
                loadmon::verify::MAX_BLOCK_BYTES
            ))
        })
        .and_then(loadmon::verify::check_block_bytes);
    checked.map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{name}: {m}")).into(),
        e => e.into(),
    })
}

/// A 0/1 setting.
pub(crate) fn flag(name: &str, v: i64) -> Res<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(Error::Config(format!("{name} must be 0 or 1, not {n}")).into()),
    }
}

/// A C size setting that may be `LOADMON_NO_FILE_STATS`.
pub(crate) fn optional_size(name: &str, v: i64) -> Res<Option<u64>> {
    match v {
        LOADMON_NO_FILE_STATS => Ok(None),
        n => count(config::SIZE_MB, name, n).map(Some),
    }
}

/// A C size setting in MB (MiB) as the core's bytes, within `rule` (bytes).
pub(crate) fn size_mb(rule: Count, name: &str, v: i64) -> Res<u64> {
    Ok(config::size_from_mb(name, i128::from(v), rule)?)
}

/// A size in bytes as C's whole MB, for a config default (rounded up: every default is
/// whole MB).
pub(crate) fn mb(bytes: u64) -> i64 {
    num(bytes.div_ceil(loadmon::units::BYTES_PER_MB_U64))
}

/// A C rate setting, MB/s: `LOADMON_NO_RATE` for none, else the core's rule.
pub(crate) fn rate_setting(name: &str, v: f64) -> Res<Option<f64>> {
    if v == LOADMON_NO_RATE as f64 {
        return Ok(None);
    }
    Ok(Some(config::rate_mb_s(name, v)?))
}

/// A rate as C has it (`LOADMON_NO_RATE` for none), for a config default.
pub(crate) fn rate_c(r: Option<f64>) -> f64 {
    r.unwrap_or(LOADMON_NO_RATE as f64)
}
