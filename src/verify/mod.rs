//! Verified data: self-describing blocks, and a checker that tells what went wrong with them.
//!
//! Every block of a verified file (4 KiB by default) starts with a header that says where it
//! belongs and when it was written (magic, format version, run id, client id, stream, file
//! sequence number, offset in the file, write generation, write time, the file's size), goes on
//! with bytes from a fast generator seeded by that place, and carries a CRC-32C of the whole
//! block. docs/VERIFY.md has the layout, byte for byte.
//!
//! - [`fill_chunk`] fills a chunk buffer in place (the writer's side);
//! - [`check_file`] reads a file back (O_DIRECT if asked) and classifies each bad block:
//!   *corrupt*, *stale*, *misdirected*, *torn* (or zero), *short* ([`FindingClass`]), with
//!   bounded memory whatever the file holds;
//! - [`check_paths`] checks files and directories, as `loadmon verify` does.
//!
//! The room imports only the error types: the writer, the client and the CLI use it, not the
//! other way round.

use crate::error::{Error, Result};

mod check;
mod fill;
mod format;
mod name;
mod read;

pub use check::{
    check_file, check_file_guarded, check_paths, check_paths_until, finding_sentence, CheckGuard,
    ClassCounts, Expected, FileReport, Finding, FindingClass, SkippedPath, VerifyConfig,
    VerifyReport, DEFAULT_MAX_FINDINGS, FINDINGS, MAX_FINDINGS,
};
pub use fill::{block_mask, block_seed, file_seed, fill_chunk, fill_payload, BlockContext};
pub use format::{crc_ok, BlockHeader, HeaderError, FORMAT_VERSION, MAGIC};
pub use name::{parse_file_name, NameIdentity};

/// Size of a block's header, bytes; the payload follows it.
pub const HEADER_BYTES: usize = 80;
/// The default verify block size (`--verify-block`), bytes.
pub const DEFAULT_BLOCK_BYTES: u32 = 4096;
/// The smallest verify block, bytes (one sector).
pub const MIN_BLOCK_BYTES: u32 = 512;
/// The largest verify block, bytes (1 MiB).
pub const MAX_BLOCK_BYTES: u32 = 1 << 20;
/// The sector size the checker compares a damaged block in, to tell a torn block (some sectors
/// as written, the others zero or another write's) from a corrupt one.
pub const SECTOR_BYTES: usize = 512;

/// Checks a verify block size: a power of two from [`MIN_BLOCK_BYTES`] to [`MAX_BLOCK_BYTES`].
/// Returns it as a `u64`.
///
/// # Errors
/// [`Error::Config`] with the bounds.
pub fn check_block_bytes(bytes: u64) -> Result<u64> {
    if !(u64::from(MIN_BLOCK_BYTES)..=u64::from(MAX_BLOCK_BYTES)).contains(&bytes)
        || !bytes.is_power_of_two()
    {
        return Err(Error::Config(format!(
            "verify block of {bytes} bytes: it must be a power of two from {MIN_BLOCK_BYTES} \
             bytes to {MAX_BLOCK_BYTES} bytes (1 MiB)"
        )));
    }
    Ok(bytes)
}

/// A verify block size as a user writes it: bytes (`4096`), or with a binary unit `k` or `m`
/// (`4k`, `64k`, `1m`; any case), checked by [`check_block_bytes`]. The one parser of the
/// setting: `loadmon client --verify-block`, `loadmon verify --block-size` and Python's
/// `verify_block`/`block_size` texts read it here.
///
/// # Examples
/// ```
/// use loadmon::verify::parse_block_bytes;
/// assert_eq!(parse_block_bytes("4k").unwrap(), 4096);
/// assert_eq!(parse_block_bytes("512").unwrap(), 512);
/// assert_eq!(parse_block_bytes("1M").unwrap(), 1 << 20);
/// assert!(parse_block_bytes("2m").unwrap_err().to_string().contains("power of two from 512"));
/// assert!(parse_block_bytes("x").unwrap_err().to_string().contains("not a size"));
/// ```
///
/// # Errors
/// [`Error::Config`]: not a size, or outside the bounds (which it states).
pub fn parse_block_bytes(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.strip_suffix('k') {
        Some(n) => (n, 1u64 << 10),
        None => match t.strip_suffix('m') {
            Some(n) => (n, 1u64 << 20),
            None => (t.as_str(), 1),
        },
    };
    let n: u64 = num.trim().parse().map_err(|_| {
        Error::Config(format!(
            "verify block {:?} is not a size (bytes, or with k or m: 4k, 64k, 1m)",
            crate::text::escape_control(s)
        ))
    })?;
    check_block_bytes(n.saturating_mul(mult))
}

/// A fresh run id (random; never 0).
///
/// # Errors
/// [`Error::Internal`] if the operating system gives no random bytes.
pub fn new_run_id() -> Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no random run id: {e}")))?;
    Ok(u64::from_le_bytes(b).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_bounds() {
        for ok in [512, 4096, 1 << 20] {
            assert_eq!(check_block_bytes(ok).unwrap(), ok);
        }
        for bad in [0, 256, 511, 4097, 3 << 10, 2 << 20, u64::MAX] {
            let e = check_block_bytes(bad).unwrap_err().to_string();
            assert!(
                e.contains("power of two from 512 bytes to 1048576 bytes"),
                "{e}"
            );
        }
        assert_ne!(new_run_id().unwrap(), new_run_id().unwrap());
    }
}
