//! The run's verdict as data: each threshold rule (`--threshold`), what was observed, pass or
//! fail, when it first failed and which client (see [`crate::verdict`], which judges the
//! rules). The report carries it as `verdict` (JSON, `/api`), a section of the text and HTML
//! reports and `loadmon_threshold_ok` on `/metrics`; the CSV (one row per client) does not.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A rule's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The rule held (at the end of the run, or over every window judged).
    #[serde(rename = "PASS")]
    Pass,
    /// The rule failed.
    #[serde(rename = "FAIL")]
    Fail,
    /// Nothing to judge it on (no client measured the metric, the run was shorter than the
    /// rule's window, the metric is not measured yet): not a pass.
    #[serde(rename = "NO DATA")]
    NoData,
    /// Live only: not judged yet (a whole-run rule is judged at the end; a windowed one once
    /// a full window was seen). Never in a final report.
    #[serde(rename = "PENDING")]
    Pending,
}

impl Outcome {
    /// The outcome as the reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::NoData => "NO DATA",
            Outcome::Pending => "PENDING",
        }
    }

    /// Whether the rule has not failed (so far): PASS or PENDING.
    pub fn is_ok(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Pending)
    }
}

/// One client's result under a `client.` rule (only clients that did not pass are listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRuleResult {
    /// The client's id.
    pub id: u32,
    /// FAIL or NO DATA.
    pub outcome: Outcome,
    /// The value seen (the failing one when it failed), in the rule's unit.
    pub observed: Option<f64>,
    /// When it first failed, seconds since the server started.
    pub first_failed_s: Option<f64>,
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleVerdict {
    /// The rule as given (`fleet.p99_ms < 50`).
    pub rule: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// The value the outcome is about, in [`RuleVerdict::unit`]: for a fleet rule the fleet's
    /// (the failing window's when it failed), for a `client.` rule the worst client's.
    pub observed: Option<f64>,
    /// The bound compared with (a baseline rule's: the baseline's figure times the factor).
    pub bound: Option<f64>,
    /// The metric's unit (`ms`, `MiB/s`, `%`, `s`, `files`, `bytes`, `errors`).
    pub unit: String,
    /// When it first failed, seconds since the server started.
    pub first_failed_s: Option<f64>,
    /// When it first failed (RFC 3339, local time).
    pub first_failed_at: Option<String>,
    /// A `client.` rule: the client the first failure was seen on (or the worst client); a
    /// fleet rule on bad blocks (`verify_errors`) that failed: the client with the most then.
    pub client: Option<u32>,
    /// A `client.` rule: clients it was judged on.
    #[serde(default)]
    pub clients_judged: usize,
    /// A `client.` rule: each client that did not pass it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientRuleResult>,
    /// Why there is no data, or how the rule was judged, when that needs saying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The verdict of a run with thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Every rule passed (false while any failed, had no data or is pending).
    pub passed: bool,
    /// Whether the verdict is final (the run is over); a live snapshot's is not.
    pub is_final: bool,
    /// Each rule, in the order given.
    pub rules: Vec<RuleVerdict>,
    /// `--abort-on-fail`: the rule that stopped the run, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<String>,
    /// The baseline report the `baseline` rules refer to (its path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// A value with its unit for the reports (`73.20 ms`, `412.0 MiB/s`, `n/a`).
pub fn fmt_value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if unit == "files" || unit == "bytes" || unit == "errors" => {
            format!("{v:.0} {unit}")
        }
        Some(v) => format!("{v:.2} {unit}"),
    }
}

impl RuleVerdict {
    /// One line of the text report: `PASS  fleet.p99_ms < 50: 12.30 ms`, then where and when
    /// it failed.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{:<8}{}: {}",
            self.outcome.as_str(),
            self.rule,
            fmt_value(self.observed, &self.unit)
        );
        if let Some(b) = self.bound.filter(|_| self.rule.contains("baseline")) {
            let _ = write!(s, " (bound {})", fmt_value(Some(b), &self.unit));
        }
        if let Some(c) = self.client {
            let _ = write!(s, ", client {c}");
        }
        if self.clients_judged > 0 {
            let failed = self
                .clients
                .iter()
                .filter(|c| c.outcome == Outcome::Fail)
                .count();
            let _ = write!(s, ", {failed} of {} client(s) failed", self.clients_judged);
        }
        if let Some(t) = self.first_failed_s {
            let _ = write!(s, ", first failed at {t:.1} s");
        }
        if let Some(n) = &self.note {
            let _ = write!(s, " ({n})");
        }
        s
    }
}

impl Verdict {
    /// The text report's section: a heading with the verdict, then a line per rule.
    pub fn to_text(&self) -> String {
        let head = match (self.is_final, self.passed) {
            (false, _) => "RUNNING",
            (true, true) => "PASSED",
            (true, false) => "FAILED",
        };
        let mut s = format!("Thresholds: {head}\n");
        if let Some(r) = &self.aborted_by {
            let _ = writeln!(s, "  run aborted by: {r}");
        }
        if let Some(b) = &self.baseline {
            let _ = writeln!(s, "  baseline: {b}");
        }
        for r in &self.rules {
            let _ = writeln!(s, "  {}", r.line());
        }
        s
    }
}
