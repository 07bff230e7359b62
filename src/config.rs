//! The rules every face applies: bounds and conversions of user numbers, defined once.
//!
//! The CLI, the C ABI and the Python module convert their own types (a C `int64_t` of
//! milliseconds, a Python `float` of seconds, a command-line string) with these functions, then
//! hand typed settings to the core's `validate` methods; no face decides a bound, a default or
//! an error of its own. Every function returns [`Error::Config`] naming the setting.
//!
//! A setting with a rule of its own has it here, once: a [`Count`] (the range of a whole
//! number: [`CLIENTS`], [`PEER_PORT`], …) or a [`Zero`] (whether a duration may be zero:
//! [`HEARTBEAT_TIMEOUT`], …). `validate` checks the typed value with it, under the core's name;
//! a face converts its user's number with it, under the name that user wrote
//! (`heartbeat_timeout_ms` in C), so that a message states the real bounds of the field the
//! user set, never those of the integer type behind it.
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

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::units::{
    parse_size_bytes, size_text, SizeError, BYTES_PER_MB_U64, MAX_DURATION, MAX_SECONDS,
    MAX_SIZE_LIMIT_MB, MAX_SIZE_MB, NONCE_BYTES, PROOF_BYTES,
};

/// Smallest line bound a peer may be configured with (the longest seed line fits easily).
pub const MIN_LINE_BYTES: usize = 64;

/// Whether a duration setting may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// Zero is a valid value (it means "none" or "at once"; the setting's doc says which).
    Allowed,
    /// The setting must be positive.
    Rejected,
}

/// A server's heartbeat timeout: positive.
pub const HEARTBEAT_TIMEOUT: Zero = Zero::Rejected;
/// A server's handshake timeout (a new connection's time to ask for an id): positive.
pub const HANDSHAKE_TIMEOUT: Zero = Zero::Rejected;
/// A fleet's start timeout: positive.
pub const START_TIMEOUT: Zero = Zero::Rejected;
/// A client's heartbeat period: positive.
pub const HEARTBEAT_PERIOD: Zero = Zero::Rejected;
/// A client's stats period: positive.
pub const STATS_PERIOD: Zero = Zero::Rejected;
/// How long a client keeps retrying an unreachable server: 0 makes one attempt.
pub const CONNECT_TIMEOUT: Zero = Zero::Allowed;
/// A staying worker's longest pause between two attempts to reach the server: positive.
pub const RETRY_MAX: Zero = Zero::Rejected;
/// A test's run time: positive.
pub const RUN_TIME: Zero = Zero::Rejected;
/// How long a server's HTTP listener keeps serving the final report: 0 closes it with the run.
pub const HTTP_LINGER: Zero = Zero::Allowed;
/// A server's write timeout (a peer leaving its replies unread is closed): positive.
pub const WRITE_TIMEOUT: Zero = Zero::Rejected;
/// A server's HTTP header-read, idle and write timeouts (its `HttpLimits`): positive.
pub const HTTP_TIMEOUT: Zero = Zero::Rejected;

/// The range of a whole-number setting, `min` to `max`: the one rule `validate` checks (with
/// [`Count::check`]) and every face converts its user's number with (with [`Count::get`]).
///
/// # Examples
/// ```
/// use loadmon::config::CLIENTS;
///
/// assert_eq!(CLIENTS.get::<usize>("max_clients", 5).unwrap(), 5);
/// let e = CLIENTS.get::<usize>("max_clients", -1).unwrap_err();
/// assert_eq!(e.to_string(), "invalid configuration: max_clients must be from 1 to 1000000, not -1");
/// assert!(CLIENTS.check("max_clients", 0).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
}

/// Clients a server takes at once, clients a fleet expects, pending connections, HTTP
/// connections: 1 to 1,000,000.
pub const CLIENTS: Count = Count::new(1, 1_000_000);
/// Client ids a server may hand out in one run: 1 to 100,000,000.
pub const IDS: Count = Count::new(1, 100_000_000);
/// The server port a client connects to: 1 to 65535 (a server may bind port 0, a free one).
pub const PEER_PORT: Count = Count::new(1, 65_535);
/// A test's chunk size, MiB: 1 to 4096 (a chunk is held in memory).
pub const CHUNK_SIZE_MB: Count = Count::new(1, 4096);
/// A file size, or a chunk or file size a workload announces, MiB: 1 to
/// [`MAX_SIZE_MB`].
pub const SIZE_MB: Count = Count::new(1, MAX_SIZE_MB);
/// A test's chunk size, bytes: 512 bytes (a sector) to 4096 MiB (a chunk is held in memory).
pub const CHUNK_SIZE_BYTES: Count = Count::new(512, 4096 * BYTES_PER_MB_U64);
/// A file size, bytes: 512 bytes to [`MAX_SIZE_MB`] MiB (1 PiB).
pub const FILE_SIZE_BYTES: Count = Count::new(512, MAX_SIZE_MB * BYTES_PER_MB_U64);
/// The smallest chunk a test allows, bytes: 0 (no minimum) to [`MAX_SIZE_MB`] MiB.
pub const MIN_CHUNK_SIZE_BYTES: Count = Count::new(0, MAX_SIZE_MB * BYTES_PER_MB_U64);
/// Writer streams of one client (`jobs`, fio's `numjobs`): 1 to 256.
pub const JOBS: Count = Count::new(1, 256);
/// Writes in flight per stream (`iodepth`, fio's `iodepth`): 1 to 256.
pub const IODEPTH: Count = Count::new(1, 256);
/// The most a client's write buffers may hold, bytes: `jobs` × `iodepth` × the buffer of one
/// write in flight (the chunk, or a piece of at most 16 MiB of a larger one) must stay within
/// 4 GiB.
pub const MAX_WRITE_BUFFERS_BYTES: u64 = 4 << 30;
/// The fastest pace a client may be given, MB/s (MiB/s): 10^6 (about 1 TiB/s).
pub const MAX_RATE_MB_S: f64 = 1e6;

/// A pace in MB/s (MiB/s): finite, above 0 and at most [`MAX_RATE_MB_S`].
///
/// # Examples
/// ```
/// use loadmon::config::rate_mb_s;
/// assert_eq!(rate_mb_s("rate", 200.0).unwrap(), 200.0);
/// for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e6] {
///     let e = rate_mb_s("rate", bad).unwrap_err().to_string();
///     assert!(e.contains("rate must be a number of MB/s above 0 and at most 1000000"), "{e}");
/// }
/// ```
///
/// # Errors
/// [`Error::Config`] naming `name`, the bounds and the value.
pub fn rate_mb_s(name: &str, v: f64) -> Result<f64> {
    // `contains` is false for NaN.
    if v > 0.0 && (0.0..=MAX_RATE_MB_S).contains(&v) {
        return Ok(v);
    }
    Err(Error::Config(format!(
        "{name} must be a number of MB/s above 0 and at most {MAX_RATE_MB_S:.0}, not {}",
        number(v)
    )))
}

/// A size from a face's text (`"256k"`, `"10m"`, `"10"` = 10 MiB; [`parse_size_bytes`]), in
/// bytes, within `rule`.
///
/// # Examples
/// ```
/// use loadmon::config::{size_bytes, CHUNK_SIZE_BYTES};
/// assert_eq!(size_bytes("chunk_size", "256k", CHUNK_SIZE_BYTES).unwrap(), 256 * 1024);
/// assert_eq!(size_bytes("chunk_size", "10", CHUNK_SIZE_BYTES).unwrap(), 10 << 20);
/// let e = size_bytes("chunk_size", "8g", CHUNK_SIZE_BYTES).unwrap_err().to_string();
/// assert!(e.contains("chunk_size must be a size from 512 bytes to 4096 MB"), "{e}");
/// assert!(size_bytes("chunk_size", "ten", CHUNK_SIZE_BYTES).is_err());
/// ```
///
/// # Errors
/// [`Error::Config`] naming `name`, the bounds and the text.
pub fn size_bytes(name: &str, s: &str, rule: Count) -> Result<u64> {
    let bad = |why: String| {
        Error::Config(format!(
            "{name} must be a size from {} to {} (a number of MB, or a number with a unit: b, \
             k, m, g, t or p, binary), and {why}: {:?}",
            size_text(rule.min),
            size_text(rule.max),
            crate::text::escape_control(s)
        ))
    };
    let bytes = parse_size_bytes(s).map_err(|e| bad(e.to_string()))?;
    if !(rule.min..=rule.max).contains(&bytes) {
        return Err(bad("this one is outside those bounds".into()));
    }
    Ok(bytes)
}

/// A size in bytes from a face's whole number of MB (MiB; the seed's unit), within `rule`
/// (its bounds in bytes; the message states them).
///
/// # Errors
/// [`Error::Config`] naming `name`, the bounds and the value.
pub fn size_from_mb(name: &str, mb: i128, rule: Count) -> Result<u64> {
    let bytes = u64::try_from(mb)
        .ok()
        .and_then(|m| m.checked_mul(BYTES_PER_MB_U64))
        .filter(|b| (rule.min..=rule.max).contains(b));
    bytes.ok_or_else(|| {
        Error::Config(format!(
            "{name} must be a size from {} to {}, not {mb} MB",
            size_text(rule.min),
            size_text(rule.max)
        ))
    })
}

/// A worker's own limit on the disk a plan may fill, MiB: 1 to the largest size whose bytes
/// fit in 64 bits.
pub const MAX_DISK_MB: Count = Count::new(1, MAX_SIZE_LIMIT_MB);
/// A worker's own limit on the run time of a plan: positive.
pub const MAX_RUN_TIME: Zero = Zero::Rejected;

impl Count {
    /// The range `min` to `max`.
    pub const fn new(min: u64, max: u64) -> Count {
        Count { min, max }
    }

    /// The error for `value`, a value of the setting `name` outside the range.
    pub fn error(self, name: &str, value: impl std::fmt::Display) -> Error {
        Error::Config(format!(
            "{name} must be from {} to {}, not {value}",
            self.min, self.max
        ))
    }

    /// Checks a typed value of the setting `name`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `name`, the range and the value.
    pub fn check(self, name: &str, n: u64) -> Result<()> {
        if (self.min..=self.max).contains(&n) {
            Ok(())
        } else {
            Err(self.error(name, n))
        }
    }

    /// A face's integer (any width, any sign) as the setting's type, within the range.
    ///
    /// # Errors
    /// [`Error::Config`] naming `name`, the range and the value.
    pub fn get<T: Integer>(self, name: &str, value: i128) -> Result<T> {
        let range = i128::from(self.min)..=i128::from(self.max).min(T::HIGH);
        match T::try_from(value) {
            Ok(v) if range.contains(&value) => Ok(v),
            _ => Err(Count::new(self.min, *range.end() as u64).error(name, value)),
        }
    }
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

/// A float as an error message shows it: `1e300` and `1e-300`, not their 301 digits.
pub(crate) fn number(x: f64) -> String {
    if x.is_finite() && (x.abs() >= 1e16 || (x != 0.0 && x.abs() < 1e-6)) {
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
    SERVER_THREADS.check("threads", threads as u64)
}

/// The range of a server's threads: 1 to [`MAX_SERVER_THREADS`].
pub const SERVER_THREADS: Count = Count::new(1, MAX_SERVER_THREADS as u64);

/// A size in MiB (the protocol's MB) from a command line: a number of MB, or a number with
/// a binary unit `M`, `G`, `T` or `P` (also written `MB`/`MiB`, `GB`/`GiB`, …; any case).
/// A fraction is rounded to the nearest MB; the result must be at least 1 MB and its bytes
/// must fit in 64 bits.
///
/// # Examples
/// ```
/// use loadmon::config::size_mb;
/// assert_eq!(size_mb("max_disk", "500").unwrap(), 500);
/// assert_eq!(size_mb("max_disk", "10G").unwrap(), 10 * 1024);
/// assert_eq!(size_mb("max_disk", "1.5 GiB").unwrap(), 1536);
/// assert_eq!(size_mb("max_disk", "2t").unwrap(), 2 * 1024 * 1024);
/// assert!(size_mb("max_disk", "0").is_err());
/// assert!(size_mb("max_disk", "10 kB").is_err());
/// assert!(size_mb("max_disk", "-1G").is_err());
/// ```
///
/// # Errors
/// [`Error::Config`] naming `name` and the value.
pub fn size_mb(name: &str, s: &str) -> Result<u64> {
    let bad = |why: &str| {
        Error::Config(format!(
            "{name} must be a size in MB, or with a unit M, G, T or P (MiB, GiB, …), {why}: \
             not {:?}",
            crate::text::escape_control(s)
        ))
    };
    let bytes = match parse_size_bytes(s) {
        Ok(b) => b,
        Err(SizeError::NotANumber) => return Err(bad("a number first")),
        Err(SizeError::UnknownUnit) => return Err(bad("with a known unit")),
        Err(SizeError::TooLarge) => u64::MAX,
    };
    // Rounded to the nearest MB.
    let mb = bytes / BYTES_PER_MB_U64 + u64::from(bytes % BYTES_PER_MB_U64 >= BYTES_PER_MB_U64 / 2);
    if !(1..=MAX_SIZE_LIMIT_MB).contains(&mb) || bytes == u64::MAX {
        return Err(bad(&format!("from 1 MB to {MAX_SIZE_LIMIT_MB} MB")));
    }
    Ok(mb)
}

/// The chunk and file size (MiB) a workload announces in `file_stats`, from a face's two
/// optional settings: both or neither (`None`: nothing announced), each from 1 to
/// [`MAX_SIZE_MB`]. A half-set pair is an error, not `(0, n)`.
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
    match (chunk_size_mb, file_size_mb) {
        (None, None) => Ok(None),
        (Some(chunk), Some(file)) => {
            SIZE_MB.check("chunk_size", chunk)?;
            SIZE_MB.check("file_size", file)?;
            Ok(Some((chunk, file)))
        }
        (Some(_), None) | (None, Some(_)) => Err(Error::Config(
            "chunk_size and file_size go together (both or neither)".into(),
        )),
    }
}

/// Longest token file read, bytes (a token is one line).
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Reads a token from the file at `path` (the CLI's `--token-file`): its text without one
/// trailing newline (`\n` or `\r\n`). A token in a file is seen by nobody else, unlike one on a
/// command line (the process list) or, often, in the environment.
///
/// # Errors
/// [`Error::Config`] naming the file: it cannot be read, it is empty or holds more than one
/// line, or (on Unix) group or others may read or write it — ssh refuses a private key for
/// the same (`chmod 600` the file).
///
/// # Examples
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("token");
/// std::fs::write(&path, "s3cret\n").unwrap();
/// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
/// assert_eq!(loadmon::config::read_token_file(&path).unwrap(), "s3cret");
/// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
/// assert!(loadmon::config::read_token_file(&path).is_err());
/// # }
/// ```
pub fn read_token_file(path: &Path) -> Result<String> {
    let shown = crate::text::escape_control(&path.display().to_string()).into_owned();
    let bad = |why: String| Error::Config(format!("token file {shown}: {why}"));
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open it: {e}")))?;
    // The opened file's own mode (not the path's, which may change meanwhile).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file
            .metadata()
            .map_err(|e| bad(format!("cannot read its mode: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            return Err(bad(format!(
                "permissions {mode:04o} are too open: group and others must have no access \
                 to a token (chmod 600 {shown})"
            )));
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(bad(format!(
            "more than {MAX_TOKEN_FILE_BYTES} bytes: a token is one line"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let token = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if token.is_empty() {
        return Err(bad("it is empty: put the token in it".into()));
    }
    if token.chars().any(char::is_control) {
        return Err(bad(
            "the token must be one line without control characters".into()
        ));
    }
    Ok(token.to_string())
}

/// `allow_clear_token` needs a token: alone it would do nothing.
///
/// # Errors
/// [`Error::Config`] if it is set without a token.
pub(crate) fn check_clear_token(allow_clear_token: bool, token: Option<&str>) -> Result<()> {
    if allow_clear_token && token.is_none() {
        return Err(Error::Config(
            "allow_clear_token needs a token (it lets the token travel in clear)".into(),
        ));
    }
    Ok(())
}

/// The longest line of the challenge–response: `auth:<nonce>:<proof>`, 64 hex digits each.
const AUTH_LINE_BYTES: usize = "auth:".len() + 2 * NONCE_BYTES + 1 + 2 * PROOF_BYTES;

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
        // `auth:<nonce>:<proof>` (and `challenge`, `auth_ok`) must fit in one line.
        if AUTH_LINE_BYTES >= max_line_bytes {
            return Err(Error::Config(format!(
                "with a token, max_line_bytes must be more than {AUTH_LINE_BYTES} (the \
                 challenge-response's longest line)"
            )));
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

/// How the settings' types serialize (`ServerConfig`, `ClientConfig`, … derive `Serialize` so
/// that a face shows the core's defaults): durations as seconds, secrets as `"<set>"`, modes as
/// the text a face takes.
pub mod ser {
    use std::fmt::Display;
    use std::time::Duration;

    use serde::Serializer;

    /// A duration as seconds (`f64`).
    pub fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// An optional duration as seconds, or `null`.
    pub fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    /// A secret: `"<set>"` when there is one, `null` otherwise; never its value.
    pub fn redacted<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(_) => s.serialize_str("<set>"),
            None => s.serialize_none(),
        }
    }

    /// A value as its `Display` text (the text the faces parse).
    pub fn display<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
}
