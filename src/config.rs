//! The rules every face applies: bounds and conversions of user numbers, defined once.
//!
//! The CLI, the C ABI and the Python module convert their own types (a C `int64_t` of
//! milliseconds, a Python `float` of seconds, a command-line string) with these functions, then
//! hand typed settings to the core's `validate` methods; no face decides a bound, a default or
//! an error of its own. Every function returns [`Error::Config`] naming the setting.
//!
//! # Examples
//! ```
//! use loadmon::config::{seconds, wait_timeout_ms, Zero};
//! use std::time::Duration;
//!
//! assert_eq!(seconds("run_time", 1.5, Zero::Rejected).unwrap(), Duration::from_millis(1500));
//! assert!(seconds("run_time", 1e300, Zero::Rejected).is_err()); // above 10^9 s
//! assert!(seconds("run_time", f64::NAN, Zero::Rejected).is_err());
//! assert!(seconds("run_time", 0.0, Zero::Rejected).is_err());
//! assert_eq!(wait_timeout_ms(-1), None); // negative: forever
//! assert_eq!(wait_timeout_ms(0), Some(Duration::ZERO)); // zero: poll
//! ```

use std::time::Duration;

use crate::error::{Error, Result};

/// Smallest line bound a peer may be configured with (the longest seed line fits easily).
pub const MIN_LINE_BYTES: usize = 64;

/// Upper bound of every duration setting and timeout: 10^9 s (about 31.7 years).
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// Upper bound of [`MAX_DURATION`] in seconds, as a float.
pub const MAX_SECONDS: f64 = 1e9;

/// Whether a duration setting may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// Zero is a valid value (it means "none" or "at once"; the setting's doc says which).
    Allowed,
    /// The setting must be positive.
    Rejected,
}

/// Checks a duration setting: at most [`MAX_DURATION`], and positive unless `zero` allows 0.
///
/// # Errors
/// [`Error::Config`] naming `name`.
pub fn check_duration(name: &str, d: Duration, zero: Zero) -> Result<()> {
    if d.is_zero() && zero == Zero::Rejected {
        return Err(Error::Config(format!("{name} must be positive")));
    }
    if d > MAX_DURATION {
        return Err(Error::Config(format!(
            "{name} must be at most {} s",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(())
}

/// A number of seconds (a float from a face) as a [`Duration`]: finite, not negative, at most
/// 10^9 s, and positive unless `zero` allows 0. A positive value below one nanosecond is
/// rejected where zero is, rather than silently becoming zero.
///
/// # Errors
/// [`Error::Config`] naming `name` and the value.
pub fn seconds(name: &str, s: f64, zero: Zero) -> Result<Duration> {
    let range = match zero {
        Zero::Allowed => "0",
        Zero::Rejected => "more than 0",
    };
    let bad = || {
        Error::Config(format!(
            "{name} must be a number of seconds from {range} to {MAX_SECONDS:e}, not {}",
            number(s)
        ))
    };
    // `contains` is false for NaN; -0.0 counts as 0.
    if !(0.0..=MAX_SECONDS).contains(&s) {
        return Err(bad());
    }
    let d = Duration::try_from_secs_f64(s.max(0.0)).map_err(|_| bad())?;
    if d.is_zero() && s > 0.0 && zero == Zero::Rejected {
        return Err(Error::Config(format!(
            "{name} must be at least 1 ns (durations have nanosecond resolution), not {s:e}"
        )));
    }
    check_duration(name, d, zero).map_err(|_| bad())?;
    Ok(d)
}

/// A float as an error message shows it: `1e300`, not its 301 digits.
fn number(x: f64) -> String {
    if x.is_finite() && x.abs() >= 1e16 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// A number of milliseconds (an integer from a face) as a [`Duration`], with the bounds of
/// [`seconds`].
///
/// # Errors
/// [`Error::Config`] naming `name` and the value (negative, too large, or zero where zero is
/// rejected).
pub fn millis(name: &str, ms: i64, zero: Zero) -> Result<Duration> {
    let range = match zero {
        Zero::Allowed => "0",
        Zero::Rejected => "1",
    };
    let d = u64::try_from(ms).ok().map(Duration::from_millis);
    match d {
        Some(d) if check_duration(name, d, zero).is_ok() => Ok(d),
        _ => Err(Error::Config(format!(
            "{name} must be from {range} to {} ms, not {ms}",
            MAX_DURATION.as_millis()
        ))),
    }
}

/// A wait's timeout in seconds, as the Python face takes it: `None` waits as long as it takes,
/// `0` polls (does not wait), a positive number waits that long.
///
/// # Errors
/// [`Error::Config`] for a negative, NaN or infinite value or one above 10^9 s.
pub fn wait_timeout_s(timeout: Option<f64>) -> Result<Option<Duration>> {
    timeout
        .map(|t| seconds("timeout", t, Zero::Allowed))
        .transpose()
}

/// A wait's timeout in milliseconds, as the C face takes it: negative waits as long as it
/// takes (`None`), `0` polls, a positive number waits that long.
pub fn wait_timeout_ms(timeout_ms: i64) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

/// Integer types a face's number can be converted to with [`integer`].
pub trait Integer: Copy + TryFrom<i128> {
    /// The type's smallest value.
    const LOW: i128;
    /// The type's largest value.
    const HIGH: i128;
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl Integer for $t {
            const LOW: i128 = <$t>::MIN as i128;
            const HIGH: i128 = <$t>::MAX as i128;
        }
    )*};
}
integer!(u8, u16, u32, u64, usize, i64);

/// A face's integer (any width, any sign) as the setting's type, or a configuration error
/// naming the setting and its range: `port = -1` or `70000` is an error, not an overflow.
///
/// # Examples
/// ```
/// use loadmon::config::integer;
/// assert_eq!(integer::<u16>("port", 8080).unwrap(), 8080);
/// assert!(integer::<u16>("port", 70000).unwrap_err().to_string().contains("0 to 65535"));
/// assert!(integer::<u64>("chunk_size", -10).is_err());
/// ```
///
/// # Errors
/// [`Error::Config`] when `value` does not fit.
pub fn integer<T: Integer>(name: &str, value: i128) -> Result<T> {
    T::try_from(value).map_err(|_| {
        Error::Config(format!(
            "{name} must be from {} to {}, not {value}",
            T::LOW,
            T::HIGH
        ))
    })
}

/// Checks a host name or address: not empty, no control character (a NUL or a line break would
/// otherwise surface later as a resolver or socket error naming mangled text).
///
/// # Errors
/// [`Error::Config`] naming `name`.
pub fn check_host(name: &str, host: &str) -> Result<()> {
    if host.trim().is_empty() {
        return Err(Error::Config(format!("{name} must not be empty")));
    }
    if host.chars().any(char::is_control) {
        return Err(Error::Config(format!(
            "{name} must not contain control characters, not {:?}",
            crate::text::escape_control(host)
        )));
    }
    Ok(())
}

/// Upper bound of a server's threads ([`ServerHandle::start_on`](crate::blocking::ServerHandle::start_on),
/// the CLI's `--threads`): far more than a flood of messages can use, far fewer than a process
/// can start.
pub const MAX_SERVER_THREADS: usize = 256;

/// Checks the number of threads a server's runtime gets: 1 (the default, a single-threaded
/// runtime) to [`MAX_SERVER_THREADS`].
///
/// # Examples
/// ```
/// use loadmon::config::check_server_threads;
/// assert!(check_server_threads(1).is_ok());
/// assert!(check_server_threads(0).is_err());
/// assert!(check_server_threads(100_000).is_err());
/// ```
///
/// # Errors
/// [`Error::Config`] naming `threads`, its range and the value.
pub fn check_server_threads(threads: usize) -> Result<()> {
    check_count("threads", threads as u64, MAX_SERVER_THREADS as u64)
}

/// Checks that `n` is within `1..=max`.
///
/// # Errors
/// [`Error::Config`] naming `name`, its range and the value.
pub fn check_count(name: &str, n: u64, max: u64) -> Result<()> {
    if n == 0 || n > max {
        return Err(Error::Config(format!(
            "{name} must be from 1 to {max}, not {n}"
        )));
    }
    Ok(())
}

/// The chunk and file size (MiB) a workload announces in `file_stats`, from a face's two
/// optional settings: both or neither (`None`: nothing announced), each from 1 to
/// [`MAX_SIZE_MB`](crate::protocol::MAX_SIZE_MB). A half-set pair is an error, not `(0, n)`.
///
/// # Examples
/// ```
/// use loadmon::config::file_stats;
/// assert_eq!(file_stats(None, None).unwrap(), None);
/// assert_eq!(file_stats(Some(10), Some(50)).unwrap(), Some((10, 50)));
/// assert!(file_stats(None, Some(50)).is_err());
/// assert!(file_stats(Some(0), Some(50)).is_err());
/// ```
///
/// # Errors
/// [`Error::Config`] naming the setting.
pub fn file_stats(
    chunk_size_mb: Option<u64>,
    file_size_mb: Option<u64>,
) -> Result<Option<(u64, u64)>> {
    let max = crate::protocol::MAX_SIZE_MB;
    match (chunk_size_mb, file_size_mb) {
        (None, None) => Ok(None),
        (Some(chunk), Some(file)) => {
            check_count("chunk_size", chunk, max)?;
            check_count("file_size", file, max)?;
            Ok(Some((chunk, file)))
        }
        (Some(_), None) | (None, Some(_)) => Err(Error::Config(
            "chunk_size and file_size go together (both or neither)".into(),
        )),
    }
}

/// The settings both ends of a connection have: the line bound and the optional token.
///
/// # Errors
/// [`Error::Config`] naming the bad setting.
pub(crate) fn check_wire(max_line_bytes: usize, token: Option<&str>) -> Result<()> {
    if max_line_bytes < MIN_LINE_BYTES {
        return Err(Error::Config(format!(
            "max_line_bytes must be at least {MIN_LINE_BYTES}"
        )));
    }
    if let Some(t) = token {
        if t.is_empty() || t.chars().any(char::is_control) {
            return Err(Error::Config(
                "token must be non-empty, on one line and without control characters".into(),
            ));
        }
        // `token:<secret>` must fit in one line of the peer's bound (and ours).
        let line = "token:".len() + t.len();
        if line >= max_line_bytes {
            return Err(Error::Config(format!(
                "token is {} bytes; with max_line_bytes {max_line_bytes} it can be at most {}",
                t.len(),
                max_line_bytes.saturating_sub("token:".len() + 1)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_bounds() {
        for bad in [
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            1.8e19,
            1e9 + 1.0,
        ] {
            assert!(seconds("x", bad, Zero::Allowed).is_err(), "{bad}");
        }
        assert!(seconds("x", 0.0, Zero::Rejected).is_err());
        assert!(seconds("x", 1e-12, Zero::Rejected).is_err());
        assert_eq!(seconds("x", -0.0, Zero::Allowed).unwrap(), Duration::ZERO);
        assert_eq!(seconds("x", 1e9, Zero::Rejected).unwrap(), MAX_DURATION);
        let e = seconds("run_time", 1e300, Zero::Rejected).unwrap_err();
        assert!(e.is_config() && e.to_string().contains("run_time"), "{e}");
        assert!(e.to_string().ends_with("not 1e300"), "{e}");
    }

    #[test]
    fn below_a_nanosecond_and_odd_hosts() {
        let e = seconds("heartbeat_timeout", 1e-10, Zero::Rejected).unwrap_err();
        assert!(e.to_string().contains("at least 1 ns"), "{e}");
        let e = seconds("heartbeat_timeout", 5e-324, Zero::Rejected).unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
        assert!(check_host("host", "a\0b").is_err());
        assert!(check_host("host", "h\nx").is_err());
        assert!(check_host("host", " ").is_err());
        assert!(check_host("host", "::1").is_ok());
    }

    #[test]
    fn millis_bounds() {
        assert!(millis("x", -1, Zero::Allowed).is_err());
        assert!(millis("x", 0, Zero::Rejected).is_err());
        assert_eq!(millis("x", 0, Zero::Allowed).unwrap(), Duration::ZERO);
        assert!(millis("x", i64::MAX, Zero::Allowed).is_err());
        assert_eq!(
            millis("x", 1500, Zero::Rejected).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(wait_timeout_s(None).unwrap(), None);
        assert_eq!(wait_timeout_s(Some(0.0)).unwrap(), Some(Duration::ZERO));
        assert!(wait_timeout_s(Some(1e300)).is_err());
        assert!(wait_timeout_s(Some(-1.0)).is_err());
        assert_eq!(wait_timeout_ms(i64::MIN), None);
        assert_eq!(wait_timeout_ms(5), Some(Duration::from_millis(5)));
    }

    #[test]
    fn integers() {
        assert!(integer::<u16>("port", -1).is_err());
        assert!(integer::<usize>("max_clients", -1).is_err());
        assert_eq!(integer::<u32>("id", 4_294_967_295).unwrap(), u32::MAX);
        assert!(integer::<u32>("id", 4_294_967_296).is_err());
    }
}
