//! The plan a fleet server hands to its workers: the file writer's parameters, without the
//! output directory (each worker writes where it was told to).
//!
//! A [`Plan`] is checked by the same rules as [`FileWriterConfig::validate`] (it builds one and
//! calls it): the server checks its plan before it listens, and a worker checks the plan it
//! receives again, timed probe included ([`FileWriter::new`](crate::workload::file_writer::FileWriter::new)),
//! because only the worker's host can tell whether two files fit in the run time there.
//!
//! On the wire it is the `plan` command ([`Message::Plan`](crate::protocol::Message::Plan)),
//! which carries a generic [`WirePlan`]: this module owns the file writer's keys and their
//! rules ([`Plan::to_wire`], [`Plan::from_wire`]), the protocol none of them.
//!
//! ```text
//! plan:run=<id>:runtime=<s>:chunksize=<size>:filesize=<size>:min_chunksize=<size>:sync=<none|file|direct>:keep_files=<n|all>[:jobs=<n>][:iodepth=<n>][:rate=<mb_s>][:verify=<rollover|end>][:verify_block=<size>][:verify_continue=1][:verify_peer=1][:overwrite=1]
//! ```
//!
//! Every key exactly once, in any order (encoded in this order); an unknown key is invalid;
//! `runtime` above 0 and at most [`MAX_RUN_TIME_S`], the sizes at most
//! [`MAX_SIZE_MB`] MiB: a whole number of MiB as the seed wrote
//! them (`10`), or, for a size that is not whole MiB, a whole number of KiB with `k` (`256k`)
//! or of bytes with `b` (`1000b`). `jobs`, `iodepth`, `rate` (MiB/s) and the verify settings
//! are optional: absent means the default (1, 1, as fast as possible, `verify=none`, 4 KiB
//! blocks, flags off; a flag is `1` or `0`) and the default is never written, so a plan with
//! the seed's settings is the line it always was.

use std::fmt;
use std::path::PathBuf;

use crate::error::{ProtocolError, Result};
use crate::protocol::{parse_size_mb, WirePlan};
use crate::units::{format_size, size_text, BYTES_PER_KIB, BYTES_PER_MB_U64, MAX_SIZE_MB};
use crate::workload::file_writer::{FileWriterConfig, KeepFiles, SyncMode, VerifyMode};

/// Longest run time a plan may carry, seconds (every duration's bound,
/// [`units::MAX_SECONDS`](crate::units::MAX_SECONDS), about 31.7 years).
pub const MAX_RUN_TIME_S: f64 = crate::units::MAX_SECONDS;

/// The plan's keys on the wire that every plan has, in the order [`Plan::to_wire`] writes
/// them.
pub const WIRE_KEYS: [&str; 6] = [
    "runtime",
    "chunksize",
    "filesize",
    "min_chunksize",
    "sync",
    "keep_files",
];

/// The plan's optional keys, written (after [`WIRE_KEYS`], in this order) only when their
/// value is not the default.
pub const OPTIONAL_WIRE_KEYS: [&str; 8] = [
    "jobs",
    "iodepth",
    "rate",
    "verify",
    "verify_block",
    "verify_continue",
    "verify_peer",
    "overwrite",
];

/// The command its errors name.
const C: &str = "plan";

/// What every worker of a fleet runs. `Default` gives the seed's test (15 s, 10 MB chunks,
/// 50 MB files, one stream), as `loadmon client` without options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// How long to write, seconds (`--runtime`).
    pub run_time_s: f64,
    /// Size of one write, bytes (`--chunksize`).
    pub chunk_size_bytes: u64,
    /// Size of one file, bytes (`--filesize`).
    pub file_size_bytes: u64,
    /// Smallest chunk allowed, bytes (`--min-chunksize`, the seed's 10 MiB by default).
    pub min_chunk_size_bytes: u64,
    /// Durability mode (`--sync`).
    pub sync: SyncMode,
    /// Finished files each worker keeps per stream (`--keep-files`).
    pub keep_files: KeepFiles,
    /// Writer streams of each worker (`--jobs`).
    pub jobs: u32,
    /// Writes in flight per stream (`--iodepth`).
    pub iodepth: u32,
    /// Each worker's pace, MiB/s (`--rate`); `None`: as fast as possible. (A fleet server's
    /// [`FleetConfig::plan`](crate::server::FleetConfig::plan) carries the fleet's; each worker
    /// gets its share, [`Plan::worker_share`].)
    pub rate_mb_s: Option<f64>,
    /// Whether and when each worker checks its data (`--verify`).
    pub verify: VerifyMode,
    /// Verify block size, bytes (`--verify-block`).
    pub verify_block_bytes: u64,
    /// A bad block does not end a worker's run (`--verify-continue`).
    pub verify_continue: bool,
    /// Each worker checks another worker's kept files in a shared directory
    /// (`--verify-peer`).
    pub verify_peer: bool,
    /// The oldest kept file is rewritten in place (`--overwrite`).
    pub overwrite: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan::from_writer_config(&FileWriterConfig::default())
    }
}

impl Plan {
    /// The plan of a file writer's settings (its output directory left out).
    pub fn from_writer_config(c: &FileWriterConfig) -> Plan {
        Plan {
            run_time_s: c.run_time_s,
            chunk_size_bytes: c.chunk_size_bytes,
            file_size_bytes: c.file_size_bytes,
            min_chunk_size_bytes: c.min_chunk_size_bytes,
            sync: c.sync,
            keep_files: c.keep_files,
            jobs: c.jobs,
            iodepth: c.iodepth,
            rate_mb_s: c.rate_mb_s,
            verify: c.verify,
            verify_block_bytes: c.verify_block_bytes,
            verify_continue: c.verify_continue,
            verify_peer: c.verify_peer,
            overwrite: c.overwrite,
        }
    }

    /// The file writer's settings for this plan, writing into `out_dir`.
    pub fn writer_config(&self, out_dir: PathBuf) -> FileWriterConfig {
        FileWriterConfig {
            run_time_s: self.run_time_s,
            chunk_size_bytes: self.chunk_size_bytes,
            file_size_bytes: self.file_size_bytes,
            min_chunk_size_bytes: self.min_chunk_size_bytes,
            out_dir,
            sync: self.sync,
            keep_files: self.keep_files,
            jobs: self.jobs,
            iodepth: self.iodepth,
            rate_mb_s: self.rate_mb_s,
            verify: self.verify,
            verify_block_bytes: self.verify_block_bytes,
            verify_continue: self.verify_continue,
            verify_peer: self.verify_peer,
            overwrite: self.overwrite,
        }
    }

    /// The file writer's rules, without I/O ([`FileWriterConfig::validate`]; the timed probe
    /// runs on each worker).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) saying which rule failed.
    pub fn validate(&self) -> Result<()> {
        self.writer_config(PathBuf::from(".")).validate()
    }

    /// The plan each of `workers` runs when this plan's rate is a whole fleet's (a fleet
    /// server's `--rate`): the rate split evenly, `rate / workers` MiB/s each (so that the
    /// workers together write at the fleet's rate), everything else as it is. Without a rate,
    /// or for one worker, the plan itself.
    ///
    /// ```
    /// use loadmon::plan::Plan;
    /// let fleet = Plan { rate_mb_s: Some(90.0), ..Plan::default() };
    /// assert_eq!(fleet.worker_share(3), Plan { rate_mb_s: Some(30.0), ..Plan::default() });
    /// assert_eq!(Plan::default().worker_share(3), Plan::default());
    /// ```
    pub fn worker_share(&self, workers: usize) -> Plan {
        Plan {
            rate_mb_s: self.rate_mb_s.map(|r| r / workers.max(1) as f64),
            ..*self
        }
    }
}

impl Plan {
    /// The plan on the wire for run `run`: its settings under [`WIRE_KEYS`], in that order,
    /// then those of [`OPTIONAL_WIRE_KEYS`] that are not the default.
    ///
    /// ```
    /// use loadmon::plan::Plan;
    /// use loadmon::protocol::Message;
    /// assert_eq!(
    ///     Message::Plan(Plan::default().to_wire(7)).encode(),
    ///     "plan:run=7:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:keep_files=2"
    /// );
    /// let p = Plan { chunk_size_bytes: 256 << 10, min_chunk_size_bytes: 4096, jobs: 4, rate_mb_s: Some(200.0), ..Plan::default() };
    /// assert_eq!(
    ///     Message::Plan(p.to_wire(7)).encode(),
    ///     "plan:run=7:runtime=15:chunksize=256k:filesize=50:min_chunksize=4k:sync=none:keep_files=2:jobs=4:rate=200"
    /// );
    /// ```
    pub fn to_wire(&self, run: u64) -> WirePlan {
        let [runtime, chunk, file, min_chunk, sync, keep] = WIRE_KEYS;
        let [jobs, iodepth, rate, verify, verify_block, verify_continue, verify_peer, overwrite] =
            OPTIONAL_WIRE_KEYS;
        let default = FileWriterConfig::default();
        let mut w = WirePlan::new(run)
            .with(runtime, self.run_time_s)
            .with(chunk, format_size(self.chunk_size_bytes))
            .with(file, format_size(self.file_size_bytes))
            .with(min_chunk, format_size(self.min_chunk_size_bytes))
            .with(sync, self.sync)
            .with(keep, self.keep_files);
        if self.jobs != 1 {
            w = w.with(jobs, self.jobs);
        }
        if self.iodepth != 1 {
            w = w.with(iodepth, self.iodepth);
        }
        if let Some(r) = self.rate_mb_s {
            w = w.with(rate, r);
        }
        if self.verify != default.verify {
            w = w.with(verify, self.verify);
        }
        if self.verify_block_bytes != default.verify_block_bytes {
            w = w.with(verify_block, format_size(self.verify_block_bytes));
        }
        for (key, on) in [
            (verify_continue, self.verify_continue),
            (verify_peer, self.verify_peer),
            (overwrite, self.overwrite),
        ] {
            if on {
                w = w.with(key, 1);
            }
        }
        w
    }

    /// The run and the plan a wire plan carries: every key of [`WIRE_KEYS`] exactly once,
    /// those of [`OPTIONAL_WIRE_KEYS`] at most once, no other, each value within the wire's
    /// bounds (the file writer's own rules are [`Plan::validate`]'s), read by
    /// [`WirePlan::read`] in line order.
    ///
    /// ```
    /// use loadmon::plan::Plan;
    /// assert_eq!(Plan::from_wire(&Plan::default().to_wire(3)), Ok((3, Plan::default())));
    /// ```
    ///
    /// # Errors
    /// [`ProtocolError::WrongFieldCount`] for another number of settings,
    /// [`ProtocolError::InvalidArgument`] naming the bad key or value.
    pub fn from_wire(wire: &WirePlan) -> std::result::Result<(u64, Plan), ProtocolError> {
        let optional = wire
            .fields()
            .filter(|f| {
                f.split_once('=')
                    .is_some_and(|(k, _)| OPTIONAL_WIRE_KEYS.contains(&k))
            })
            .count();
        let mut got = Fields::default();
        let run = wire.read(WIRE_KEYS.len() + optional, |key, value| {
            got.take(key, value)
        })?;
        Ok((run, got.plan().ok_or_else(|| wire.missing_key())?))
    }
}

/// The settings of a wire plan read so far.
#[derive(Default)]
struct Fields {
    run_time_s: Option<f64>,
    chunk_size_bytes: Option<u64>,
    file_size_bytes: Option<u64>,
    min_chunk_size_bytes: Option<u64>,
    sync: Option<SyncMode>,
    keep_files: Option<KeepFiles>,
    jobs: Option<u32>,
    iodepth: Option<u32>,
    rate_mb_s: Option<f64>,
    verify: Option<VerifyMode>,
    verify_block_bytes: Option<u64>,
    verify_continue: Option<bool>,
    verify_peer: Option<bool>,
    overwrite: Option<bool>,
}

impl Fields {
    /// Reads one setting (the protocol sees to it that no key comes twice).
    fn take(&mut self, key: &str, value: &str) -> std::result::Result<(), ProtocolError> {
        match key {
            "runtime" => self.run_time_s = Some(run_time(value)?),
            "chunksize" => self.chunk_size_bytes = Some(size("chunksize", value)?),
            "filesize" => self.file_size_bytes = Some(size("filesize", value)?),
            "min_chunksize" => self.min_chunk_size_bytes = Some(size("min_chunksize", value)?),
            "sync" => self.sync = Some(sync_mode(value)?),
            "keep_files" => self.keep_files = Some(keep_files(value)?),
            "jobs" => self.jobs = Some(count("jobs", value)?),
            "iodepth" => self.iodepth = Some(count("iodepth", value)?),
            "rate" => self.rate_mb_s = Some(rate(value)?),
            "verify" => self.verify = Some(verify_mode(value)?),
            "verify_block" => self.verify_block_bytes = Some(size("verify_block", value)?),
            "verify_continue" => self.verify_continue = Some(flag("verify_continue", value)?),
            "verify_peer" => self.verify_peer = Some(flag("verify_peer", value)?),
            "overwrite" => self.overwrite = Some(flag("overwrite", value)?),
            _ => {
                let field = format!("{key}={value}");
                return Err(ProtocolError::invalid(C, "argument", &field, "unknown key"));
            }
        }
        Ok(())
    }

    /// The plan, if every key was there (the optional ones at their defaults).
    fn plan(self) -> Option<Plan> {
        Some(Plan {
            run_time_s: self.run_time_s?,
            chunk_size_bytes: self.chunk_size_bytes?,
            file_size_bytes: self.file_size_bytes?,
            min_chunk_size_bytes: self.min_chunk_size_bytes?,
            sync: self.sync?,
            keep_files: self.keep_files?,
            jobs: self.jobs.unwrap_or(1),
            iodepth: self.iodepth.unwrap_or(1),
            rate_mb_s: self.rate_mb_s,
            verify: self.verify.unwrap_or_default(),
            verify_block_bytes: self
                .verify_block_bytes
                .unwrap_or(u64::from(crate::verify::DEFAULT_BLOCK_BYTES)),
            verify_continue: self.verify_continue.unwrap_or(false),
            verify_peer: self.verify_peer.unwrap_or(false),
            overwrite: self.overwrite.unwrap_or(false),
        })
    }
}

/// `verify`: `none`, `rollover` or `end`.
fn verify_mode(value: &str) -> std::result::Result<VerifyMode, ProtocolError> {
    match value {
        "none" => Ok(VerifyMode::None),
        "rollover" => Ok(VerifyMode::Rollover),
        "end" => Ok(VerifyMode::End),
        _ => Err(ProtocolError::invalid(
            C,
            "verify",
            value,
            "not none, rollover or end",
        )),
    }
}

/// A flag: `1` (on) or `0` (off).
fn flag(key: &'static str, value: &str) -> std::result::Result<bool, ProtocolError> {
    match value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(ProtocolError::invalid(C, key, value, "not 1 or 0")),
    }
}

/// A size: whole MiB (`10`, at most [`MAX_SIZE_MB`]), whole KiB with `k`, or bytes with `b`,
/// at most 1 PiB.
fn size(key: &'static str, value: &str) -> std::result::Result<u64, ProtocolError> {
    let (digits, unit) = match value.strip_suffix('k') {
        Some(d) => (d, BYTES_PER_KIB),
        None => match value.strip_suffix('b') {
            Some(d) => (d, 1),
            None => return Ok(parse_size_mb(C, key, value)? * BYTES_PER_MB_U64),
        },
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ProtocolError::invalid(
                C,
                key,
                value,
                "not a whole number of MiB, KiB (k) or bytes (b)",
            )
        })?;
    n.checked_mul(unit)
        .filter(|b| *b <= MAX_SIZE_MB * BYTES_PER_MB_U64)
        .ok_or_else(|| ProtocolError::invalid(C, key, value, "larger than 1 PiB"))
}

/// `jobs`, `iodepth`: an unsigned 32-bit integer (their bounds are the file writer's rules).
fn count(key: &'static str, value: &str) -> std::result::Result<u32, ProtocolError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| ProtocolError::invalid(C, key, value, "not an unsigned 32-bit integer"))
}

/// `rate`: MiB/s above 0 and at most [`MAX_RATE_MB_S`](crate::config::MAX_RATE_MB_S).
fn rate(value: &str) -> std::result::Result<f64, ProtocolError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|r| crate::config::rate_mb_s("rate", *r).is_ok())
        .ok_or_else(|| {
            ProtocolError::invalid(
                C,
                "rate",
                value,
                "not a number of MB/s above 0 and at most 1e6",
            )
        })
}

/// `runtime`: seconds above 0 and at most [`MAX_RUN_TIME_S`].
fn run_time(value: &str) -> std::result::Result<f64, ProtocolError> {
    let x = value
        .parse::<f64>()
        .map_err(|_| ProtocolError::invalid(C, "runtime", value, "not a number"))?;
    // `contains` is false for NaN.
    if !(x > 0.0 && (0.0..=MAX_RUN_TIME_S).contains(&x)) {
        return Err(ProtocolError::invalid(
            C,
            "runtime",
            value,
            "not a number of seconds above 0 and at most 1e9",
        ));
    }
    Ok(x)
}

/// `sync`: `none`, `file` or `direct`, exactly.
fn sync_mode(value: &str) -> std::result::Result<SyncMode, ProtocolError> {
    match value {
        "none" => Ok(SyncMode::None),
        "file" => Ok(SyncMode::File),
        "direct" => Ok(SyncMode::Direct),
        _ => Err(ProtocolError::invalid(
            C,
            "sync",
            value,
            "expected none, file or direct",
        )),
    }
}

/// `keep_files`: a number or `all`.
fn keep_files(value: &str) -> std::result::Result<KeepFiles, ProtocolError> {
    if value == "all" {
        return Ok(KeepFiles::All);
    }
    value
        .parse::<usize>()
        .map(KeepFiles::Last)
        .map_err(|_| ProtocolError::invalid(C, "keep_files", value, "expected a number or \"all\""))
}

impl fmt::Display for Plan {
    /// `15 s, 10 MB chunks, 50 MB files, min chunk 10 MB, sync none, keep 2`, then `, 4 jobs`,
    /// `, iodepth 8`, `, 200 MB/s` where they are not the default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} s, {} chunks, {} files, min chunk {}, sync {}, keep {}",
            self.run_time_s,
            size_text(self.chunk_size_bytes),
            size_text(self.file_size_bytes),
            size_text(self.min_chunk_size_bytes),
            self.sync,
            self.keep_files
        )?;
        if self.jobs != 1 {
            write!(f, ", {} jobs", self.jobs)?;
        }
        if self.iodepth != 1 {
            write!(f, ", iodepth {}", self.iodepth)?;
        }
        if let Some(r) = self.rate_mb_s {
            write!(f, ", {r} MB/s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Message;

    #[test]
    fn the_default_plan_is_the_seed_test_and_valid() {
        let p = Plan::default();
        assert_eq!(
            (p.run_time_s, p.chunk_size_bytes, p.file_size_bytes),
            (15.0, 10 << 20, 50 << 20)
        );
        assert_eq!((p.jobs, p.iodepth, p.rate_mb_s), (1, 1, None));
        assert!(p.validate().is_ok());
        let back = Plan::from_writer_config(&p.writer_config("x".into()));
        assert_eq!(back, p);
    }

    #[test]
    fn the_verify_settings_travel_only_when_not_the_default() {
        let p = Plan {
            verify: VerifyMode::Rollover,
            verify_block_bytes: 64 << 10,
            verify_continue: true,
            overwrite: true,
            ..Plan::default()
        };
        let line = Message::Plan(p.to_wire(9)).encode();
        assert!(
            line.ends_with(
                ":keep_files=2:verify=rollover:verify_block=64k:verify_continue=1:overwrite=1"
            ),
            "{line}"
        );
        let Message::Plan(w) = Message::parse(&line).unwrap() else {
            panic!("{line}")
        };
        assert_eq!(Plan::from_wire(&w), Ok((9, p)));
        let off = "plan:run=1:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:keep_files=2:overwrite=0:verify=none";
        let Message::Plan(w) = Message::parse(off).unwrap() else {
            panic!()
        };
        assert_eq!(Plan::from_wire(&w), Ok((1, Plan::default())));
        for bad in ["verify=later", "verify_continue=yes", "verify_block=x"] {
            let line = format!("plan:run=1:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:keep_files=2:{bad}");
            let Message::Plan(w) = Message::parse(&line).unwrap() else {
                panic!()
            };
            assert!(Plan::from_wire(&w).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_file_writer_rules_apply() {
        let bad = [
            Plan {
                chunk_size_bytes: 5 << 20,
                ..Plan::default()
            },
            Plan {
                chunk_size_bytes: 60 << 20,
                ..Plan::default()
            },
            Plan {
                jobs: 0,
                ..Plan::default()
            },
            Plan {
                jobs: 10_000,
                ..Plan::default()
            },
            Plan {
                iodepth: 0,
                ..Plan::default()
            },
            Plan {
                rate_mb_s: Some(f64::NAN),
                ..Plan::default()
            },
            Plan {
                rate_mb_s: Some(2e6),
                ..Plan::default()
            },
            Plan {
                run_time_s: 1e300,
                ..Plan::default()
            },
            Plan {
                run_time_s: f64::NAN,
                ..Plan::default()
            },
            Plan {
                keep_files: KeepFiles::Last(0),
                ..Plan::default()
            },
        ];
        for p in bad {
            assert!(p.validate().unwrap_err().is_config(), "{p:?}");
        }
    }

    /// A `plan` line as a worker reads it: parsed by the protocol, then by the plan's codec.
    fn decode(line: &str) -> std::result::Result<(u64, Plan), ProtocolError> {
        match Message::parse(line)? {
            Message::Plan(w) => Plan::from_wire(&w),
            other => panic!("{other:?}"),
        }
    }

    fn encode(run: u64, plan: &Plan) -> String {
        Message::Plan(plan.to_wire(run)).encode()
    }

    #[test]
    fn a_plan_is_key_value_in_any_order_and_every_value_is_bounded() {
        let line = "plan:run=7:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:\
                    keep_files=2";
        let p = decode(line).unwrap();
        assert_eq!(p, (7, Plan::default()));
        assert_eq!(encode(p.0, &p.1), line);
        let shuffled = "plan:keep_files=2:sync=none:min_chunksize=10:filesize=50:chunksize=10:\
                        runtime=15:run=7";
        assert_eq!(decode(shuffled), Ok(p));
        let good = |k: &str, v: &str| {
            line.replace(&format!("{k}={}", value_of(line, k)), &format!("{k}={v}"))
        };
        for (key, value) in [
            ("runtime", "1e300"),
            ("runtime", "inf"),
            ("runtime", "NaN"),
            ("runtime", "0"),
            ("runtime", "-1"),
            ("runtime", "1000000000.5"),
            ("runtime", "abc"),
            ("chunksize", "-1"),
            ("filesize", "99999999999"),
            ("min_chunksize", "x"),
            ("sync", "fsync"),
            ("keep_files", "-2"),
            ("keep_files", "some"),
            ("run", "-1"),
            ("run", "18446744073709551616"),
        ] {
            let bad = good(key, value);
            assert!(
                matches!(decode(&bad), Err(ProtocolError::InvalidArgument { .. })),
                "{bad}"
            );
        }
        assert!(decode("plan:runtime=15").is_err());
        assert!(decode(&format!("{line}:extra=1")).is_err());
        assert!(decode(&line.replace("sync=none", "runtime=3")).is_err());
        assert!(decode(&line.replace("sync=none", "colour=red")).is_err());
        assert!(decode(&line.replace("sync=none", "syncnone")).is_err());
        assert_eq!(
            decode(&good("runtime", "1e9")).map(|(run, p)| encode(run, &p)),
            Ok(good("runtime", "1000000000"))
        );
    }

    fn value_of<'a>(line: &'a str, key: &str) -> &'a str {
        line.split(':')
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
    }

    #[test]
    fn the_wire_errors_are_the_protocol_errors_they_were() {
        let line = "plan:run=1:runtime=1:chunksize=1:filesize=2:min_chunksize=1:sync=none:\
                    keep_files=2";
        for (bad, want) in [
            (
                format!("{line}:rm=rf"),
                "plan: expected 8 field(s), got 9".to_string(),
            ),
            (
                line.replace(":keep_files=2", ""),
                "plan: expected 8 field(s), got 7".into(),
            ),
            (
                line.replace("runtime=1:", "runtime=1e300:"),
                "plan: invalid runtime \"1e300\": not a number of seconds above 0 and at most \
                 1e9"
                .into(),
            ),
            (
                line.replace("runtime=1:", "runtime=x:"),
                "plan: invalid runtime \"x\": not a number".into(),
            ),
            (
                line.replace("sync=none", "sync=maybe"),
                "plan: invalid sync \"maybe\": expected none, file or direct".into(),
            ),
            (
                line.replace("keep_files=2", "keep_files=some"),
                "plan: invalid keep_files \"some\": expected a number or \"all\"".into(),
            ),
            (
                line.replace(":chunksize=1:", ":chunksize=1073741825:"),
                "plan: invalid chunksize \"1073741825\": larger than 1 PiB".into(),
            ),
            (
                line.replace("sync=none", "colour=red"),
                "plan: invalid argument \"colour=red\": unknown key".into(),
            ),
            (
                line.replace("run=1", "runtime=2"),
                "plan: invalid argument \"runtime=1\": key given twice".into(),
            ),
            (
                line.replace("run=1", "run=99999999999999999999"),
                "plan: invalid run \"99999999999999999999\": not an unsigned integer".into(),
            ),
        ] {
            assert_eq!(decode(&bad).unwrap_err().to_string(), want, "{bad}");
        }
    }

    #[test]
    fn new_keys_round_trip_and_a_default_plan_is_the_line_it_was() {
        let seed = "plan:run=7:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:\
                    keep_files=2";
        assert_eq!(encode(7, &Plan::default()), seed);
        let p = Plan {
            chunk_size_bytes: 256 << 10,
            file_size_bytes: (1 << 20) + 512,
            min_chunk_size_bytes: 4096,
            jobs: 4,
            iodepth: 8,
            rate_mb_s: Some(200.5),
            ..Plan::default()
        };
        let line = encode(9, &p);
        assert_eq!(
            line,
            "plan:run=9:runtime=15:chunksize=256k:filesize=1049088b:min_chunksize=4k:sync=none:\
             keep_files=2:jobs=4:iodepth=8:rate=200.5"
        );
        assert_eq!(decode(&line), Ok((9, p)));
        // In any order; absent optional keys are the defaults.
        let shuffled = "plan:rate=200.5:keep_files=2:iodepth=8:sync=none:min_chunksize=4k:\
                        filesize=1049088b:jobs=4:chunksize=256k:runtime=15:run=9";
        assert_eq!(decode(shuffled), Ok((9, p)));
        for bad in [
            format!("{seed}:jobs=1:jobs=2"),
            format!("{seed}:jobs=-1"),
            format!("{seed}:jobs=x"),
            format!("{seed}:iodepth=4294967296"),
            format!("{seed}:rate=0"),
            format!("{seed}:rate=NaN"),
            format!("{seed}:rate=1e7"),
            seed.replace("chunksize=10:", "chunksize=1.5k:"),
            seed.replace("chunksize=10:", "chunksize=10m:"),
            seed.replace("chunksize=10:", "chunksize=2000000000000k:"),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
        // Parsed, then refused by the rules (with the bound in the message).
        let (_, p) = decode(&format!("{seed}:jobs=10000")).unwrap();
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("jobs must be from 1 to 256, not 10000"), "{e}");
    }
}
