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
//! plan:run=<id>:runtime=<s>:chunksize=<mb>:filesize=<mb>:min_chunksize=<mb>:sync=<none|file|direct>:keep_files=<n|all>
//! ```
//!
//! Every key exactly once, in any order (encoded in this order); an unknown key is invalid;
//! `runtime` above 0 and at most [`MAX_RUN_TIME_S`], the sizes at most
//! [`MAX_SIZE_MB`](crate::units::MAX_SIZE_MB).

use std::fmt;
use std::path::PathBuf;

use crate::error::{ProtocolError, Result};
use crate::protocol::{parse_size_mb, WirePlan};
use crate::workload::file_writer::{FileWriterConfig, KeepFiles, SyncMode};

/// Longest run time a plan may carry, seconds (every duration's bound,
/// [`units::MAX_SECONDS`](crate::units::MAX_SECONDS), about 31.7 years).
pub const MAX_RUN_TIME_S: f64 = crate::units::MAX_SECONDS;

/// The plan's keys on the wire, in the order [`Plan::to_wire`] writes them.
pub const WIRE_KEYS: [&str; 6] = [
    "runtime",
    "chunksize",
    "filesize",
    "min_chunksize",
    "sync",
    "keep_files",
];

/// The command its errors name.
const C: &str = "plan";

/// What every worker of a fleet runs. `Default` gives the seed's test (15 s, 10 MB chunks,
/// 50 MB files), as `loadmon client` without options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// How long to write, seconds (`--runtime`).
    pub run_time_s: f64,
    /// Size of one write, MiB (`--chunksize`).
    pub chunk_size_mb: u64,
    /// Size of one file, MiB (`--filesize`).
    pub file_size_mb: u64,
    /// Smallest chunk allowed, MiB (`--min-chunksize`, the seed's 10 by default).
    pub min_chunk_size_mb: u64,
    /// Durability mode (`--sync`).
    pub sync: SyncMode,
    /// Finished files each worker keeps (`--keep-files`).
    pub keep_files: KeepFiles,
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
            chunk_size_mb: c.chunk_size_mb,
            file_size_mb: c.file_size_mb,
            min_chunk_size_mb: c.min_chunk_size_mb,
            sync: c.sync,
            keep_files: c.keep_files,
        }
    }

    /// The file writer's settings for this plan, writing into `out_dir`.
    pub fn writer_config(&self, out_dir: PathBuf) -> FileWriterConfig {
        FileWriterConfig {
            run_time_s: self.run_time_s,
            chunk_size_mb: self.chunk_size_mb,
            file_size_mb: self.file_size_mb,
            min_chunk_size_mb: self.min_chunk_size_mb,
            out_dir,
            sync: self.sync,
            keep_files: self.keep_files,
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
}

impl Plan {
    /// The plan on the wire for run `run`: its settings under [`WIRE_KEYS`], in that order.
    ///
    /// ```
    /// use loadmon::plan::Plan;
    /// use loadmon::protocol::Message;
    /// assert_eq!(
    ///     Message::Plan(Plan::default().to_wire(7)).encode(),
    ///     "plan:run=7:runtime=15:chunksize=10:filesize=50:min_chunksize=10:sync=none:keep_files=2"
    /// );
    /// ```
    pub fn to_wire(&self, run: u64) -> WirePlan {
        let [runtime, chunk, file, min_chunk, sync, keep] = WIRE_KEYS;
        WirePlan::new(run)
            .with(runtime, self.run_time_s)
            .with(chunk, self.chunk_size_mb)
            .with(file, self.file_size_mb)
            .with(min_chunk, self.min_chunk_size_mb)
            .with(sync, self.sync)
            .with(keep, self.keep_files)
    }

    /// The run and the plan a wire plan carries: every key of [`WIRE_KEYS`] exactly once, no
    /// other, each value within the wire's bounds (the file writer's own rules are
    /// [`Plan::validate`]'s), read by [`WirePlan::read`] in line order.
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
        let mut got = Fields::default();
        let run = wire.read(WIRE_KEYS.len(), |key, value| got.take(key, value))?;
        Ok((run, got.plan().ok_or_else(|| wire.missing_key())?))
    }
}

/// The settings of a wire plan read so far.
#[derive(Default)]
struct Fields {
    run_time_s: Option<f64>,
    chunk_size_mb: Option<u64>,
    file_size_mb: Option<u64>,
    min_chunk_size_mb: Option<u64>,
    sync: Option<SyncMode>,
    keep_files: Option<KeepFiles>,
}

impl Fields {
    /// Reads one setting (the protocol sees to it that no key comes twice).
    fn take(&mut self, key: &str, value: &str) -> std::result::Result<(), ProtocolError> {
        match key {
            "runtime" => self.run_time_s = Some(run_time(value)?),
            "chunksize" => self.chunk_size_mb = Some(parse_size_mb(C, "chunksize", value)?),
            "filesize" => self.file_size_mb = Some(parse_size_mb(C, "filesize", value)?),
            "min_chunksize" => {
                self.min_chunk_size_mb = Some(parse_size_mb(C, "min_chunksize", value)?);
            }
            "sync" => self.sync = Some(sync_mode(value)?),
            "keep_files" => self.keep_files = Some(keep_files(value)?),
            _ => {
                let field = format!("{key}={value}");
                return Err(ProtocolError::invalid(C, "argument", &field, "unknown key"));
            }
        }
        Ok(())
    }

    /// The plan, if every key was there.
    fn plan(self) -> Option<Plan> {
        Some(Plan {
            run_time_s: self.run_time_s?,
            chunk_size_mb: self.chunk_size_mb?,
            file_size_mb: self.file_size_mb?,
            min_chunk_size_mb: self.min_chunk_size_mb?,
            sync: self.sync?,
            keep_files: self.keep_files?,
        })
    }
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
    /// `15 s, 10 MB chunks, 50 MB files, min chunk 10 MB, sync none, keep 2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} s, {} MB chunks, {} MB files, min chunk {} MB, sync {}, keep {}",
            self.run_time_s,
            self.chunk_size_mb,
            self.file_size_mb,
            self.min_chunk_size_mb,
            self.sync,
            self.keep_files
        )
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
            (p.run_time_s, p.chunk_size_mb, p.file_size_mb),
            (15.0, 10, 50)
        );
        assert!(p.validate().is_ok());
        let back = Plan::from_writer_config(&p.writer_config("x".into()));
        assert_eq!(back, p);
    }

    #[test]
    fn the_file_writer_rules_apply() {
        let bad = [
            Plan {
                chunk_size_mb: 5,
                ..Plan::default()
            },
            Plan {
                chunk_size_mb: 60,
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
}
