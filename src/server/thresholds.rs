//! The server's thresholds (`ServerConfig::thresholds`): the evaluator of
//! [`crate::verdict`] behind a lock, and the run's parameters the report carries for
//! `loadmon cmp`. `shared` feeds it the report once a second (the task `mod.rs` starts) and
//! the final report at the end; with `abort_on_fail`, the first rule that fails stops the run
//! (every client still running ABORTED with the rule as its reason).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::config::ServerConfig;
use crate::error::{Error, Result};
use crate::report::{Report, Verdict};
use crate::verdict::{Evaluator, Failure, Input};

/// How often the thresholds are checked.
pub(super) const CHECK_PERIOD: Duration = Duration::from_secs(1);

/// A server's thresholds.
#[derive(Debug)]
pub(super) struct Thresholds {
    evaluator: Mutex<Evaluator>,
    abort_on_fail: bool,
}

impl Thresholds {
    /// The thresholds of `config` (`None` without rules), its baseline read now.
    ///
    /// # Errors
    /// [`Error::Config`] for a rule that does not parse or a baseline that cannot be read.
    pub(super) fn load(config: &ServerConfig) -> Result<Option<Thresholds>> {
        let rules = config.threshold_rules()?;
        if rules.is_empty() {
            return Ok(None);
        }
        let baseline = match &config.baseline {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    Error::Config(format!("baseline {}: cannot read it: {e}", p.display()))
                })?;
                let report = Report::from_json(&text).map_err(|e| {
                    Error::Config(format!(
                        "baseline {}: not a loadmon JSON report: {e}",
                        p.display()
                    ))
                })?;
                Some((p.display().to_string(), report))
            }
            None => None,
        };
        Ok(Some(Thresholds {
            evaluator: Mutex::new(Evaluator::new(rules, baseline)),
            abort_on_fail: config.abort_on_fail,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Evaluator> {
        self.evaluator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the first rule that fails stops the run.
    pub(super) fn abort_on_fail(&self) -> bool {
        self.abort_on_fail
    }

    /// One check on `input`: the rules that failed at it for the first time.
    pub(super) fn check(&self, input: &Input) -> Vec<Failure> {
        self.lock().check(input)
    }

    /// Records that `reason` stopped the run.
    pub(super) fn aborted(&self, reason: &str) {
        self.lock().aborted(reason);
    }

    /// The verdict so far (`start_time`: the server's start, RFC 3339).
    pub(super) fn verdict(&self, start_time: &str) -> Verdict {
        self.lock().verdict(start_time)
    }
}

/// The run's parameters (`Report::params`): the fleet's plan (`plan.<key>` for each wire
/// setting), its size and start timeout, the thresholds.
pub(super) fn run_params(config: &ServerConfig) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    if let Some(f) = &config.fleet {
        let wire = crate::protocol::Message::Plan(f.plan.to_wire(0)).encode();
        for field in wire.split(':').skip(1) {
            if let Some((k, v)) = field.split_once('=').filter(|(k, _)| *k != "run") {
                p.insert(format!("plan.{k}"), v.to_string());
            }
        }
        p.insert("expect_clients".into(), f.expect_clients.to_string());
        if let Some(t) = f.start_timeout {
            p.insert("start_timeout_s".into(), format!("{}", t.as_secs_f64()));
        }
    }
    if !config.thresholds.is_empty() {
        p.insert("thresholds".into(), config.thresholds.join("; "));
    }
    p
}
