//! The checker: read a file back, check each block, classify what is wrong.
//!
//! One pass reads the file in [`READ_BYTES`](super::read::READ_BYTES) pieces (the next one
//! read on a helper thread while this one is checked) and records runs of blocks ([`scan`]):
//! blocks whose CRC matches, by what their header says, and blocks whose CRC does not. What
//! the file should hold is then settled ([`settle`]: what the caller knows, the rest from the
//! blocks), each run judged against it, and only the bad blocks read again to tell torn from
//! corrupt ([`block`]). Memory is bounded: two read buffers (one for a file that fits in one
//! read), at most [`scan::MAX_RANGES`] runs (past that, a second pass judges block by block),
//! and the first `max_findings` findings of each file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::check_block_bytes;
use super::name::parse_file_name;
use crate::error::{Error, Result};

mod block;
mod scan;
mod sink;

pub use sink::{finding_sentence, ClassCounts, Finding, FindingClass};

/// The default of [`VerifyConfig::max_findings`].
pub const DEFAULT_MAX_FINDINGS: usize = 100;
/// The most findings kept per file.
pub const MAX_FINDINGS: usize = 100_000;
/// [`VerifyConfig::max_findings`]'s rule, 1 to [`MAX_FINDINGS`], for a face that checks a
/// number wider than a `usize` (a Python int) before it is one.
pub const FINDINGS: crate::config::Count = crate::config::Count::new(1, MAX_FINDINGS as u64);

/// How files are checked (`loadmon verify`'s options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyConfig {
    /// Read with O_DIRECT, so the page cache cannot answer.
    pub direct: bool,
    /// Findings kept per file (the first, by offset; all are counted), 1 to [`MAX_FINDINGS`].
    pub max_findings: usize,
    /// The block size, bytes; `None`: from the first valid header.
    pub block_bytes: Option<u32>,
    /// The run every block must be of; `None`: the run most blocks are of.
    pub run_id: Option<u64>,
    /// The generation every block must be of; `None`: the newest of the file's run.
    pub generation: Option<u64>,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            direct: false,
            max_findings: DEFAULT_MAX_FINDINGS,
            block_bytes: None,
            run_id: None,
            generation: None,
        }
    }
}

impl VerifyConfig {
    /// Checks the bounds.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bound.
    pub fn validate(&self) -> Result<()> {
        if !(FINDINGS.min..=FINDINGS.max).contains(&(self.max_findings as u64)) {
            return Err(Error::Config(format!(
                "verify: max findings {} out of bounds ({} to {})",
                self.max_findings, FINDINGS.min, FINDINGS.max
            )));
        }
        if let Some(b) = self.block_bytes {
            check_block_bytes(u64::from(b))?;
        }
        Ok(())
    }
}

/// What a file should hold: every field `None` is settled from the file's own blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Block size, bytes.
    pub block_bytes: Option<u32>,
    /// Run id.
    pub run_id: Option<u64>,
    /// Client id.
    pub client_id: Option<u32>,
    /// Stream.
    pub stream: Option<u32>,
    /// File sequence number.
    pub file_seq: Option<u64>,
    /// Write generation.
    pub generation: Option<u64>,
    /// The file's size, bytes.
    pub file_size_bytes: Option<u64>,
}

impl Expected {
    /// Everything a writer knows of a file it wrote with `ctx`: what its own check-back
    /// (`--verify rollover|end`) expects.
    pub fn of(ctx: &super::BlockContext) -> Expected {
        Expected {
            block_bytes: Some(ctx.block_bytes),
            run_id: Some(ctx.run_id),
            client_id: Some(ctx.client_id),
            stream: Some(ctx.stream),
            file_seq: Some(ctx.file_seq),
            generation: Some(ctx.generation),
            file_size_bytes: Some(ctx.file_size_bytes),
        }
    }
}

/// A path as JSON text: a Linux path need not be UTF-8, and serde refuses one that is not
/// (a report of such a file was an error, no report at all); its other bytes become U+FFFD.
pub(crate) fn lossy_path<S: serde::Serializer>(
    p: &Path,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// What the check of one file found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The file (in JSON as text: bytes that are not UTF-8 become U+FFFD).
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// Its size, bytes.
    pub size_bytes: u64,
    /// What it was checked against (settled: given, from its name, or from its blocks).
    pub expected: Expected,
    /// Whole blocks read.
    pub blocks_checked: u64,
    /// Blocks found as written.
    pub blocks_ok: u64,
    /// Bad blocks by class (short: the blocks missing).
    pub errors: ClassCounts,
    /// The first findings by offset (consecutive blocks with the same finding are one).
    pub findings: Vec<Finding>,
    /// Findings not kept (past `max_findings`).
    pub findings_left_off: u64,
    /// How the expectation was settled, and anything else worth knowing.
    pub notes: Vec<String>,
}

/// An entry of a checked directory left out: named like a data file (`client_<id>_…`) but not
/// a regular file (a sub-directory, a FIFO, a socket, a device), so never opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedPath {
    /// The entry (in JSON as text: bytes that are not UTF-8 become U+FFFD).
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// Why: what it is (`not a regular file: a directory`).
    pub reason: String,
}

/// What a check of several files found, with its cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Each file's report.
    pub files: Vec<FileReport>,
    /// The entries of checked directories left out (not regular files), in the order met.
    /// A path given itself that is not a regular file is an error, never skipped.
    pub skipped: Vec<SkippedPath>,
    /// Whole blocks read, all files.
    pub blocks_checked: u64,
    /// Blocks found as written, all files.
    pub blocks_ok: u64,
    /// Bad blocks by class, all files.
    pub errors: ClassCounts,
    /// Bytes read (a bad block is read twice).
    pub bytes_read: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// CPU time of the check's threads (the checking thread and its read-ahead helpers),
    /// seconds (`None` where the platform cannot tell).
    pub cpu_s: Option<f64>,
    /// Read-back rate, MiB/s (`bytes_read` over `elapsed_s`).
    pub read_mb_s: f64,
    /// CPU seconds per GiB read (`None` where the CPU time is unknown).
    pub cpu_s_per_gb: Option<f64>,
}

impl VerifyReport {
    /// Whether every block of every file was as written.
    pub fn is_clean(&self) -> bool {
        self.errors.total() == 0
    }

    /// Sets the time and CPU the check took, and the rates that follow.
    fn finish(&mut self, elapsed_s: f64, cpu_s: Option<f64>) {
        self.elapsed_s = elapsed_s;
        self.cpu_s = cpu_s;
        self.read_mb_s = self.bytes_read as f64 / crate::units::BYTES_PER_MB / elapsed_s.max(1e-9);
        let gib = self.bytes_read as f64 / (1u64 << 30) as f64;
        self.cpu_s_per_gb = cpu_s.map(|c| if gib > 0.0 { c / gib } else { 0.0 });
    }
}

/// Checks one file against `expected` (its `None` fields settled from the file's blocks;
/// `config`'s run id, generation and block size, where given, win over them).
///
/// # Errors
/// [`Error::Config`] for a bad `config` or a path that is not a regular file; [`Error::File`]
/// when the file cannot be opened or read. What the file holds is never an error: garbage is
/// a finding.
pub fn check_file(path: &Path, expected: &Expected, config: &VerifyConfig) -> Result<FileReport> {
    check_file_guarded(path, expected, config, &CheckGuard::default())
}

/// What a writer's check of a file in a shared directory adds to [`check_file`] (its own file,
/// or a peer's): no symbolic link is followed, the file must be the very one written, and the
/// check ends between two reads (of at most 4 MiB) once asked to. Whatever the guard, the open
/// never blocks: a FIFO under the name is refused, not waited on.
#[derive(Clone, Copy, Default)]
pub struct CheckGuard<'a> {
    /// Refuse a symbolic link at the path (`O_NOFOLLOW`).
    pub no_follow: bool,
    /// The file's (device, inode): another file under the name is refused.
    pub file_id: Option<(u64, u64)>,
    /// Asked before each read: `true` ends the check with [`Error::Interrupted`].
    pub stop: Option<&'a dyn Fn() -> bool>,
    /// Called on the helper thread that reads ahead (a file larger than one 4 MiB read is
    /// read on a helper thread while the caller's thread checks), as it starts; what it
    /// returns is dropped on that thread as it ends. So that the caller counts that thread's
    /// CPU as its own (the writer: one of the client's writer threads).
    pub read_thread: Option<&'a (dyn Fn() -> Option<crate::stats::WriterGuard> + Sync)>,
}

impl std::fmt::Debug for CheckGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckGuard")
            .field("no_follow", &self.no_follow)
            .field("file_id", &self.file_id)
            .field("stop", &self.stop.is_some())
            .field("read_thread", &self.read_thread.is_some())
            .finish()
    }
}

/// [`check_file`] under `guard` ([`CheckGuard`]).
///
/// # Errors
/// As [`check_file`]; [`Error::File`] for a symbolic link (`no_follow`) or another file
/// (`file_id`) under the name; [`Error::Interrupted`] once `stop` says so.
pub fn check_file_guarded(
    path: &Path,
    expected: &Expected,
    config: &VerifyConfig,
    guard: &CheckGuard<'_>,
) -> Result<FileReport> {
    config.validate()?;
    scan::check_counting(path, expected, config, guard).map(|(r, _)| r)
}

/// What a directory's entry that is not a regular file is, for its [`SkippedPath`].
fn not_regular(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else {
        "neither a file nor a directory"
    }
}

/// The files `path` names: itself, or a directory's data files (names
/// `client_<id>_…_<stamp>`), sorted, with the entries under such names that are not regular
/// files (a symbolic link followed; never opened) left out in `skipped`.
///
/// # Errors
/// [`Error::Config`] for a path that does not exist; [`Error::File`] when it, or an entry
/// under a data file's name, cannot be listed or looked at (a symbolic-link loop);
/// [`Error::Interrupted`] once `stop` says so (asked before each entry).
fn files_of(
    path: &Path,
    skipped: &mut Vec<SkippedPath>,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Config(format!("verify: {} does not exist", path.display()))
        }
        _ => Error::file("stat", path, e),
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut odd = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::file("list", path, e))? {
        if stop() {
            return Err(Error::Interrupted(format!(
                "the listing of {} was stopped",
                path.display()
            )));
        }
        let entry = entry.map_err(|e| Error::file("list", path, e))?;
        let name = entry.file_name();
        if name.to_str().and_then(parse_file_name).is_none() {
            continue;
        }
        let p = entry.path();
        let t = std::fs::metadata(&p)
            .map_err(|e| Error::file("stat", &p, e))?
            .file_type();
        if t.is_file() {
            out.push(p);
        } else {
            odd.push(SkippedPath {
                path: p,
                reason: format!("not a regular file: {}", not_regular(t)),
            });
        }
    }
    out.sort();
    odd.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.append(&mut odd);
    Ok(out)
}

/// The expectation a file's name gives (client, stream, file number), where it has the
/// writer's shape.
fn expected_of_name(f: &Path) -> Expected {
    let mut exp = Expected::default();
    if let Some(id) = f
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_file_name)
    {
        exp.client_id = Some(id.client_id);
        exp.stream = Some(id.stream);
        exp.file_seq = Some(id.file_seq);
    }
    exp
}

/// Checks files written earlier (`loadmon verify`): each path a file or a directory (its data
/// files). A file's client, stream and file number come from its name where it has the
/// writer's shape, the rest from its blocks ([`check_file`]). An entry of a directory named
/// like a data file that is not a regular file (a sub-directory, a FIFO) is left out, listed
/// in [`VerifyReport::skipped`]; a path given that is not a regular file is an error.
///
/// # Errors
/// [`Error::Config`] for a bad `config`, no path, a path that does not exist, a directory
/// without data files or a path that is not a regular file; [`Error::File`] for a path that
/// cannot be looked at (a symbolic-link loop) or a failed read.
pub fn check_paths(paths: &[PathBuf], config: &VerifyConfig) -> Result<VerifyReport> {
    check_paths_until(paths, config, &|| false)
}

/// [`check_paths`] that ends once `stop` says so: asked before each read (of at most 4 MiB)
/// and each entry of a directory listed, on the calling thread, so a check stopped ends
/// within one read (a face whose caller gave up waiting: Python's Ctrl-C).
///
/// # Errors
/// As [`check_paths`]; [`Error::Interrupted`] once `stop` returns `true`.
pub fn check_paths_until(
    paths: &[PathBuf],
    config: &VerifyConfig,
    stop: &dyn Fn() -> bool,
) -> Result<VerifyReport> {
    config.validate()?;
    if paths.is_empty() {
        return Err(Error::Config("verify: no file given".into()));
    }
    let t = Instant::now();
    let cpu0 = crate::stats::thread_cpu_ns(None);
    // The read-ahead helpers' CPU (each counted as it ends).
    let helpers = crate::stats::ClientCpu::new();
    let read_thread = || Some(helpers.enter_writer());
    let guard = CheckGuard {
        stop: Some(stop),
        read_thread: Some(&read_thread),
        ..CheckGuard::default()
    };
    let mut report = VerifyReport {
        files: Vec::new(),
        skipped: Vec::new(),
        blocks_checked: 0,
        blocks_ok: 0,
        errors: ClassCounts::default(),
        bytes_read: 0,
        elapsed_s: 0.0,
        cpu_s: None,
        read_mb_s: 0.0,
        cpu_s_per_gb: None,
    };
    for p in paths {
        let before = report.skipped.len();
        let files = files_of(p, &mut report.skipped, stop)?;
        if files.is_empty() {
            let odd = report.skipped.len() - before;
            return Err(Error::Config(format!(
                "verify: {} holds no data file (client_<id>_…){}",
                p.display(),
                if odd > 0 {
                    format!("; {odd} entries under such names are not regular files")
                } else {
                    String::new()
                }
            )));
        }
        for f in files {
            let (r, read) = scan::check_counting(&f, &expected_of_name(&f), config, &guard)?;
            report.bytes_read += read;
            report.blocks_checked += r.blocks_checked;
            report.blocks_ok += r.blocks_ok;
            report.errors.add_all(&r.errors);
            report.files.push(r);
        }
    }
    let helpers_ns = helpers.total_ns().unwrap_or(0);
    let cpu_s = cpu0
        .zip(crate::stats::thread_cpu_ns(None))
        .map(|(a, b)| b.saturating_sub(a).saturating_add(helpers_ns) as f64 / 1e9);
    report.finish(t.elapsed().as_secs_f64(), cpu_s);
    Ok(report)
}
