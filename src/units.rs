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

/// Highest write rate a client may be paced at, MiB/s (10^6: a TiB a second).
pub const MAX_RATE_MB_S: f64 = 1e6;

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
