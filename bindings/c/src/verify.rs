//! `loadmon_verify`: checks files written with verified data, offline (`loadmon verify`).

use std::ffi::{c_char, CStr};
use std::path::PathBuf;

use loadmon::verify::{check_paths, VerifyConfig};
use loadmon::Error;

use crate::args::give_string;
use crate::configs::{read_config, verify_config, LoadmonVerifyOptions};
use crate::guard::{ffi, invalid, LoadmonStatus, Res};

/// The paths of `loadmon_verify`: `n` C strings, each the file system's own bytes (a
/// Linux path need not be UTF-8).
///
/// # Safety
/// `paths` is NULL or points to `n` NUL-terminated strings.
unsafe fn paths_arg(paths: *const *const c_char, n: usize) -> Res<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    if n == 0 {
        return Ok(Vec::new());
    }
    if paths.is_null() {
        return Err(invalid(format!("paths is NULL (n_paths {n})")));
    }
    (0..n)
        .map(|i| {
            // SAFETY: `i < n` entries per the contract.
            let p = unsafe { paths.add(i).read() };
            if p.is_null() {
                return Err(invalid(format!("paths[{i}] is NULL")));
            }
            // SAFETY: non-NULL and NUL-terminated per the contract.
            let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
            Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
        })
        .collect()
}

/// Checks files written with verified data (`LoadmonTestClientConfig.verify`), offline, as
/// `loadmon verify --json` does: each of the `n_paths` paths is a file or a directory (its
/// `client_<id>_…` data files). `opts`: NULL for the core's defaults, or options initialised
/// by `loadmon_verify_options_default`. Blocks (the calling thread) until every file is read.
///
/// Returns `LOADMON_OK` whether or not bad blocks were found: `*report_json` (if `report_json`
/// is not NULL) receives the report, to free with `loadmon_string_free`: `files` (each with
/// `path`, `size_bytes`, `expected`, `blocks_checked`, `blocks_ok`, `errors`, `findings`
/// (`path`, `offset_bytes`, `blocks`, `class`, `expected`, `found`), `findings_left_off`,
/// `notes`), `skipped` (each `path`, `reason`: a directory's entries named like data files
/// that are not regular files, left out unopened), `blocks_checked`, `blocks_ok`, `errors`
/// (`corrupt`, `stale`, `misdirected`, `torn`, `short`: 0 each when every block is as
/// written), `bytes_read`, `elapsed_s`,
/// `cpu_s`, `read_mb_s`, `cpu_s_per_gb`. `LOADMON_CONFIG` for no path, a path that does not
/// exist, a directory without data files or an option out of range; `LOADMON_IO` when a file
/// cannot be read; `LOADMON_INVALID_ARGUMENT` for a NULL `paths` (with `n_paths` above 0) or
/// entry, or a bad `struct_size`. A path is the file system's bytes (UTF-8 or not).
///
/// # Safety
/// `paths` is NULL or points to `n_paths` NUL-terminated strings; `opts` is NULL or
/// initialised by `loadmon_verify_options_default`; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn loadmon_verify(
    paths: *const *const c_char,
    n_paths: usize,
    opts: *const LoadmonVerifyOptions,
    report_json: *mut *mut c_char,
) -> LoadmonStatus {
    ffi("loadmon_verify", || {
        let config = if opts.is_null() {
            VerifyConfig::default()
        } else {
            // SAFETY: non-NULL and initialised per the contract.
            verify_config(&unsafe { read_config(opts, "opts") }?)?
        };
        // SAFETY: per the contract.
        let paths = unsafe { paths_arg(paths, n_paths) }?;
        let report = check_paths(&paths, &config)?;
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Internal(format!("verify report as JSON: {e}")))?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_string(report_json, &json) };
        Ok(())
    })
}
