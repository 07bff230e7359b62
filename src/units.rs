//! Units and the bounds every layer shares: a leaf module (it imports nothing of the crate), so
//! that the protocol, the settings' rules, the workloads and the reports can all use them
//! without importing each other; and the wall clock in the protocol's unit (Unix ms).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bytes in one MB as the protocol counts them (MiB), for rates and sizes shown as floats.
pub const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

/// Bytes in one MB as the protocol counts them (MiB), for sizes in integers.
pub const BYTES_PER_MB_U64: u64 = 1024 * 1024;

/// Largest chunk or file size a peer may announce, in MiB (1 PiB).
pub const MAX_SIZE_MB: u64 = 1 << 30;

/// The largest size limit in MiB: its bytes fit in 64 bits.
pub const MAX_SIZE_LIMIT_MB: u64 = u64::MAX >> 20;

/// Upper bound of every duration setting and timeout: 10^9 s (about 31.7 years).
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// Upper bound of [`MAX_DURATION`] in seconds, as a float.
pub const MAX_SECONDS: f64 = 1e9;

/// Bytes in a challenge–response nonce (64 hex digits on the wire; [`crate::auth`]).
pub const NONCE_BYTES: usize = 32;

/// Bytes in a challenge–response proof, an HMAC-SHA256 (64 hex digits on the wire;
/// [`crate::auth`]).
pub const PROOF_BYTES: usize = 32;

/// Now on the wall clock, Unix milliseconds (0 if the clock is before 1970): the stamp of
/// loadmon's per-second lines (`tput`, `lat`, `io`).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Bytes in one KiB.
pub const BYTES_PER_KIB: u64 = 1024;

/// Bytes in one GiB.
pub const BYTES_PER_GIB: u64 = 1024 * 1024 * 1024;

/// Why a size text is not a size ([`parse_size_bytes`]); the caller names the setting and
/// states the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// It does not start with a number (a sign, a letter, nothing).
    NotANumber,
    /// Its unit is none of the known ones.
    UnknownUnit,
    /// Its bytes do not fit in 64 bits.
    TooLarge,
}

impl std::fmt::Display for SizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SizeError::NotANumber => "this one does not start with a number",
            SizeError::UnknownUnit => "this one's unit is none of those",
            SizeError::TooLarge => "this one does not fit in 64 bits of bytes",
        })
    }
}

/// A size as a user writes it, in bytes: a number with a binary unit — `b` (bytes), `k`
/// (KiB), `m` (MiB), `g` (GiB), `t` (TiB), `p` (PiB), any case, also spelt `kb`/`kib`, `mb`/`mib`,
/// … (all binary, as fio's and elbencho's) — or a bare number, which is MiB (the seed's MB).
/// A fraction is rounded to the nearest byte (`1.5g`). The one parser of sizes: every setting
/// that takes a size reads it here and checks its own bounds.
///
/// # Examples
/// ```
/// use loadmon::units::{parse_size_bytes, SizeError};
/// assert_eq!(parse_size_bytes("10"), Ok(10 << 20)); // bare: MiB
/// assert_eq!(parse_size_bytes("4k"), Ok(4096));
/// assert_eq!(parse_size_bytes("256KiB"), Ok(256 << 10));
/// assert_eq!(parse_size_bytes("1 m"), Ok(1 << 20));
/// assert_eq!(parse_size_bytes("1.5G"), Ok(3 << 29));
/// assert_eq!(parse_size_bytes("512b"), Ok(512));
/// assert_eq!(parse_size_bytes("-1"), Err(SizeError::NotANumber));
/// assert_eq!(parse_size_bytes("10 kg"), Err(SizeError::UnknownUnit));
/// assert_eq!(parse_size_bytes("99999p"), Err(SizeError::TooLarge));
/// ```
///
/// # Errors
/// [`SizeError`] saying what is wrong.
pub fn parse_size_bytes(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() || number == "." {
        return Err(SizeError::NotANumber);
    }
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" | "kb" | "kib" => BYTES_PER_KIB,
        "" | "m" | "mb" | "mib" => BYTES_PER_MB_U64,
        "g" | "gb" | "gib" => BYTES_PER_GIB,
        "t" | "tb" | "tib" => BYTES_PER_GIB << 10,
        "p" | "pb" | "pib" => BYTES_PER_GIB << 20,
        _ => return Err(SizeError::UnknownUnit),
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(factor).ok_or(SizeError::TooLarge);
    }
    let value: f64 = number.parse().map_err(|_| SizeError::NotANumber)?;
    let bytes = (value * factor as f64).round();
    // 2^64 itself is not representable: the bound is exclusive.
    if bytes.partial_cmp(&18_446_744_073_709_551_616.0) != Some(std::cmp::Ordering::Less) {
        return Err(SizeError::TooLarge);
    }
    // Finite, not negative, below 2^64: the conversion is exact.
    Ok(bytes as u64)
}

/// A size in bytes as [`parse_size_bytes`] reads it back, in the largest unit that holds it
/// whole: a bare number of MiB (the seed's MB) when it is whole MiB, else `k` for whole KiB,
/// else `b`.
///
/// # Examples
/// ```
/// use loadmon::units::format_size;
/// assert_eq!(format_size(10 << 20), "10");
/// assert_eq!(format_size(256 << 10), "256k");
/// assert_eq!(format_size(1000), "1000b");
/// assert_eq!(format_size(0), "0");
/// ```
pub fn format_size(bytes: u64) -> String {
    if bytes.is_multiple_of(BYTES_PER_MB_U64) {
        format!("{}", bytes / BYTES_PER_MB_U64)
    } else if bytes.is_multiple_of(BYTES_PER_KIB) {
        format!("{}k", bytes / BYTES_PER_KIB)
    } else {
        format!("{bytes}b")
    }
}

/// A size in bytes for a message: whole MiB as `10 MB` (the seed's words), else `256 KiB` or
/// `1000 bytes`.
pub fn size_text(bytes: u64) -> String {
    if bytes.is_multiple_of(BYTES_PER_MB_U64) {
        format!("{} MB", bytes / BYTES_PER_MB_U64)
    } else if bytes.is_multiple_of(BYTES_PER_KIB) {
        format!("{} KiB", bytes / BYTES_PER_KIB)
    } else {
        format!("{bytes} bytes")
    }
}
