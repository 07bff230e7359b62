//! The server's thresholds (`ServerConfig::thresholds`): the evaluator of
//! [`crate::verdict`], fed the report once a second on the server's clock and the final report
//! at the end; with `abort_on_fail`, the first rule that fails stops the run (every client
//! still running ABORTED with the rule as its reason). Also the run's parameters the report
//! carries for `loadmon cmp`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::config::ServerConfig;
use super::record::seconds_since;
use super::shared::{lock_cell, Shared};
use crate::error::{Error, Result};
use crate::report::{Report, Status};
use crate::verdict::{Evaluator, Input};

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

impl Shared {
    /// One check of the thresholds on the report so far; with `abort_on_fail`, a rule that
    /// fails stops the run.
    pub(super) fn check_thresholds(&self, now: Instant) {
        let Some(t) = &self.thresholds else {
            return;
        };
        let report = self.report();
        let intervals = self.fleet_latency().intervals();
        let failures = t.lock().check(&Input {
            report: &report,
            now_s: seconds_since(self.started, now),
            fleet_intervals: &intervals,
            is_final: false,
        });
        if let Some(f) = failures.first() {
            self.log.warn(f.reason.clone());
            if t.abort_on_fail {
                self.abort_run(&f.reason, now);
            }
        }
    }

    /// `--abort-on-fail`: every client not finished becomes ABORTED with `reason`, and the
    /// run stops.
    fn abort_run(&self, reason: &str, now: Instant) {
        if let Some(t) = &self.thresholds {
            t.lock().aborted(reason);
        }
        self.log.warn(format!("Aborting the run: {reason}"));
        for cell in self.cells() {
            let event = lock_cell(&cell).set_status(Status::Aborted, Some(reason.into()), now);
            if let Some(e) = event {
                self.events.emit(|| e);
            }
        }
        self.stop.cancel();
    }

    /// The final check on the final `report`, whose verdict it sets.
    pub(super) fn final_verdict(&self, report: &mut Report) {
        let Some(t) = &self.thresholds else {
            return;
        };
        let intervals = self.fleet_latency().intervals();
        let mut e = t.lock();
        let failures = e.check(&Input {
            report,
            now_s: seconds_since(self.started, Instant::now()),
            fleet_intervals: &intervals,
            is_final: true,
        });
        for f in failures {
            self.log.warn(f.reason);
        }
        let verdict = e.verdict(&report.start_time);
        drop(e);
        self.log.info(format!(
            "Thresholds {}",
            if verdict.passed { "passed" } else { "FAILED" }
        ));
        report.verdict = Some(verdict);
    }

    /// The final verdict once the run is over, the verdict so far before.
    pub(super) fn verdict(&self) -> Option<crate::report::Verdict> {
        if let Some(r) = self.final_report().as_ref() {
            return r.verdict.clone();
        }
        let t = self.thresholds.as_ref()?;
        let start = self.start_time.to_rfc3339();
        Some(t.lock().verdict(&start))
    }

    /// The verdict so far into a live `report`.
    pub(super) fn live_verdict(&self, report: &mut Report) {
        if let Some(t) = &self.thresholds {
            report.verdict = Some(t.lock().verdict(&report.start_time));
        }
    }
}

/// Checks the thresholds of `shared` every [`CHECK_PERIOD`] until its run is over (a task
/// on the server's runtime; nothing without thresholds).
pub(super) fn watch(shared: &Arc<Shared>) {
    if shared.thresholds.is_none() {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.finished.cancelled() => return,
                () = shared.stop.cancelled() => return,
            }
            shared.check_thresholds(Instant::now());
        }
    });
}
