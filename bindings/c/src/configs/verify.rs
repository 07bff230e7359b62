//! `LoadmonVerifyOptions`: how `loadmon_verify` checks files (the core's `VerifyConfig`).

use loadmon::verify::{VerifyConfig, FINDINGS};

use super::convert::{block_setting, count, flag, int, num};
use super::{write_defaults, Growable};
use crate::guard::{ffi, LoadmonStatus, Res};

/// `block_bytes`, `run_id` and `generation` of `LoadmonVerifyOptions`: not given, settled
/// from the file's own blocks (no block size, run id or generation is 0).
pub const LOADMON_VERIFY_FROM_FILE: i64 = 0;

/// How `loadmon_verify` checks files (`loadmon verify`'s options). Initialise with
/// `loadmon_verify_options_default(&opts, sizeof opts)`, then change fields; an out-of-range
/// number is `LOADMON_CONFIG`. Each field's default is the core's (`VerifyConfig::default()`),
/// as its doc states (a test checks the two agree).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LoadmonVerifyOptions {
    /// `sizeof` the caller's struct, set by `loadmon_verify_options_default`.
    pub struct_size: usize,
    /// 1: read with O_DIRECT, so the page cache cannot answer; 0: buffered reads.
    /// Default: 0.
    pub direct: i64,
    /// Findings kept per file (the first by offset; all are counted), 1 to 100000.
    /// Default: 100.
    pub max_findings: i64,
    /// The block size every file was written with, bytes (a power of two from 512 to
    /// 1048576), or `LOADMON_VERIFY_FROM_FILE`: from the file's first valid block.
    /// Default: LOADMON_VERIFY_FROM_FILE.
    pub block_bytes: i64,
    /// The run every block must be of, or `LOADMON_VERIFY_FROM_FILE`: the run most of a
    /// file's blocks are of. Default: LOADMON_VERIFY_FROM_FILE.
    pub run_id: u64,
    /// The write generation every block must be of, or `LOADMON_VERIFY_FROM_FILE`: the newest
    /// of the file's run. Default: LOADMON_VERIFY_FROM_FILE.
    pub generation: u64,
}

/// `None` as C has it: `LOADMON_VERIFY_FROM_FILE`.
fn from_file_c(v: Option<u64>) -> u64 {
    v.unwrap_or(LOADMON_VERIFY_FROM_FILE as u64)
}

/// A C value that may be `LOADMON_VERIFY_FROM_FILE` (`None`).
fn from_file(v: u64) -> Option<u64> {
    (v != LOADMON_VERIFY_FROM_FILE as u64).then_some(v)
}

// SAFETY: repr(C), Copy, plain data; FIELDS lists every field after struct_size.
unsafe impl Growable for LoadmonVerifyOptions {
    fn defaults() -> Self {
        let d = VerifyConfig::default();
        LoadmonVerifyOptions {
            struct_size: size_of::<Self>(),
            direct: i64::from(d.direct),
            max_findings: num(d.max_findings),
            block_bytes: num(from_file_c(d.block_bytes.map(u64::from))),
            run_id: from_file_c(d.run_id),
            generation: from_file_c(d.generation),
        }
    }
    const FIELDS: &'static [(&'static str, usize, usize)] = fields!(LoadmonVerifyOptions:
        direct, max_findings, block_bytes, run_id, generation);
    const NAME: &'static str = "LoadmonVerifyOptions";
}

/// The core's settings of C verify options (the core's `validate` checks the rest).
pub(crate) fn verify_config(c: &LoadmonVerifyOptions) -> Res<VerifyConfig> {
    let block_bytes = match c.block_bytes {
        LOADMON_VERIFY_FROM_FILE => None,
        // At most 1 MiB by the core's bounds: fits.
        n => Some(int::<u32>(
            "block_bytes",
            num(block_setting("block_bytes", n)?),
        )?),
    };
    Ok(VerifyConfig {
        direct: flag("direct", c.direct)?,
        max_findings: count(FINDINGS, "max_findings", c.max_findings)?,
        block_bytes,
        run_id: from_file(c.run_id),
        generation: from_file(c.generation),
    })
}

/// Fills `*opts` with the core's defaults (each field's doc states its own), as
/// `loadmon_server_config_default` does. Pass `sizeof *opts`.
///
/// # Safety
/// `opts` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn loadmon_verify_options_default(
    opts: *mut LoadmonVerifyOptions,
    struct_size: usize,
) -> LoadmonStatus {
    // SAFETY: forwarded contract.
    ffi("loadmon_verify_options_default", || unsafe {
        write_defaults(opts, struct_size)
    })
}
