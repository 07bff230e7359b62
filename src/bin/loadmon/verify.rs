//! `loadmon verify PATH…`: checks files written earlier with verified data, offline. Exit 0
//! when every block is as written, [`EXIT_FINDINGS`] when something is not, 2 for bad input
//! (an option out of bounds, a path that does not exist or is not a regular file), 1 when a
//! file cannot be read or looked at (a symbolic-link loop). An entry of a directory named like
//! a data file that is not a regular file is skipped (`SKIPPED` line, `skipped[]` in JSON).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use loadmon::text::escape_control;
use loadmon::verify::{check_paths, FileReport, FindingClass, VerifyConfig, VerifyReport};
use loadmon::Error;

use crate::output::{say, Console};

/// The exit code of a check that found bad blocks.
pub(crate) const EXIT_FINDINGS: u8 = 4;

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// Files, or directories (their `client_<id>_…` data files), to check.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Read with O_DIRECT, so the page cache cannot answer.
    #[arg(long)]
    pub(crate) direct: bool,
    /// Findings shown per file (the first by offset; all are counted).
    #[arg(long, default_value_t = VerifyConfig::default().max_findings)]
    pub(crate) max_findings: usize,
    /// The block size (bytes, or with k/m); default: from the file's first valid block.
    #[arg(long = "block-size", value_name = "BYTES", value_parser = block_size)]
    pub(crate) block_bytes: Option<u32>,
    /// The run every block must be of (hex with 0x, or decimal); default: the run most of a
    /// file's blocks are of.
    #[arg(long, value_parser = run_id)]
    pub(crate) run_id: Option<u64>,
    /// The write generation every block must be of; default: the newest of the file's run
    /// (an older copy of a whole file is stale only against the generation given here).
    #[arg(long)]
    pub(crate) generation: Option<u64>,
    /// The report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

impl VerifyArgs {
    pub(crate) fn config(&self) -> VerifyConfig {
        VerifyConfig {
            direct: self.direct,
            max_findings: self.max_findings,
            block_bytes: self.block_bytes,
            run_id: self.run_id,
            generation: self.generation,
        }
    }
}

/// `4096`, `4k`, `1m` (binary units) as bytes, by the core's parser and bounds
/// ([`loadmon::verify::parse_block_bytes`]).
pub(crate) fn block_size(s: &str) -> Result<u32, String> {
    let bytes = loadmon::verify::parse_block_bytes(s).map_err(crate::args::message)?;
    u32::try_from(bytes).map_err(|e| e.to_string())
}

fn run_id(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a run id (hex with 0x, or decimal, 64 bits)"))
}

pub(crate) fn run(a: VerifyArgs) -> Result<ExitCode, Error> {
    let report = check_paths(&a.paths, &a.config())?;
    if a.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Internal(format!("verify report as JSON: {e}")))?;
        say(Console::Out, &format!("{json}\n"));
    } else {
        say(Console::Out, &text(&report));
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

fn counts(c: &loadmon::verify::ClassCounts) -> String {
    FindingClass::ALL
        .iter()
        .map(|&k| format!("{} {}", k.name(), c.get(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn file_text(f: &FileReport, out: &mut String) {
    let shown = f.path.display().to_string();
    let path = escape_control(&shown);
    if f.errors.total() == 0 {
        out.push_str(&format!("OK {path}: {} blocks as written\n", f.blocks_ok));
    } else {
        out.push_str(&format!(
            "BAD {path}: {} of {} blocks as written; {}\n",
            f.blocks_ok,
            f.blocks_checked,
            counts(&f.errors)
        ));
    }
    for x in &f.findings {
        out.push_str(&format!(
            "  {} at offset {} ({} block(s)): expected {}; found {}\n",
            x.class.name(),
            x.offset_bytes,
            x.blocks,
            x.expected,
            escape_control(&x.found)
        ));
    }
    if f.findings_left_off > 0 {
        out.push_str(&format!(
            "  … and {} more finding(s)\n",
            f.findings_left_off
        ));
    }
    for n in &f.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
}

fn text(r: &VerifyReport) -> String {
    let mut out = String::new();
    for f in &r.files {
        file_text(f, &mut out);
    }
    for k in &r.skipped {
        let shown = k.path.display().to_string();
        out.push_str(&format!(
            "SKIPPED {}: {}\n",
            escape_control(&shown),
            k.reason
        ));
    }
    let skipped = if r.skipped.is_empty() {
        String::new()
    } else {
        format!(" ({} skipped)", r.skipped.len())
    };
    out.push_str(&format!(
        "verified {} file(s){skipped}, {} blocks, {} bad ({}); read {:.1} MiB in {:.3} s: {:.1} MiB/s, \
         CPU {} s per GiB\n",
        r.files.len(),
        r.blocks_checked,
        r.errors.total(),
        counts(&r.errors),
        r.bytes_read as f64 / (1 << 20) as f64,
        r.elapsed_s,
        r.read_mb_s,
        r.cpu_s_per_gb.map_or("-".into(), |c| format!("{c:.3}")),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values() {
        assert_eq!(block_size("4k"), Ok(4096));
        assert_eq!(block_size("1M"), Ok(1 << 20));
        assert_eq!(block_size("512"), Ok(512));
        assert!(block_size("2m")
            .unwrap_err()
            .contains("power of two from 512"));
        assert!(block_size("x").unwrap_err().contains("not a size"));
        assert_eq!(run_id("0x5eed"), Ok(0x5eed));
        assert_eq!(run_id("12"), Ok(12));
        assert!(run_id("0xg").is_err());
    }
}

#[cfg(test)]
mod drift {
    use clap::CommandFactory;

    use super::*;
    use crate::args::Cli;

    /// Every setting of the core's `VerifyConfig` has a flag, whose default (if it shows one)
    /// is the core's.
    #[test]
    fn every_setting_has_a_flag_with_the_cores_default() {
        let mut cli = Cli::command();
        cli.build();
        let cmd = cli.find_subcommand("verify").expect("verify subcommand");
        let core = serde_json::to_value(VerifyConfig::default()).unwrap();
        let serde_json::Value::Object(map) = core else {
            panic!("a map")
        };
        for (key, value) in map {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id().as_str() == key)
                .unwrap_or_else(|| panic!("no flag for the setting {key}"));
            let shown: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            match value {
                serde_json::Value::Null => assert!(shown.is_empty(), "{key}"),
                serde_json::Value::Bool(b) => assert_eq!(shown, [b.to_string()], "{key}"),
                v => assert_eq!(shown, [v.to_string()], "{key}"),
            }
        }
    }
}
