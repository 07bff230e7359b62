//! The evaluator: every rule checked at each check (the server's: once a second, on its own
//! clock) and once more on the final report; it keeps, for each rule and target (the fleet,
//! or each client), the value seen, whether it was judged and when it first failed.
//!
//! When a rule is judged:
//! - over a window (`over 60s`): at every check once a full window of complete data exists;
//!   a window that fails fails the rule (at that time, with that window's value);
//! - over the run, a figure that can only grow (`files`, `bytes`, `max_ms`,
//!   `heartbeat_gap_s`, `verify_errors`): live as soon as it passes an upper bound (it
//!   cannot come back), and at the end;
//! - over the run, any other figure (a percentile, an average rate): at the end, on the final
//!   report (while running it is PENDING with its current value; use a window to judge it live).

use std::collections::BTreeMap;

use super::metrics::{Scope, Source};
use super::read::{self, Input, Read};
use super::rule::{Bound, Rule};
use crate::report::{ClientRuleResult, Outcome, Report, RuleVerdict, Verdict};
use crate::series::ClientSeries;

/// One target's state under one rule.
#[derive(Debug, Clone, Default, PartialEq)]
struct Target {
    /// The latest value read.
    observed: Option<f64>,
    /// When it first failed (seconds since the server started) and the value then.
    failed: Option<(f64, f64)>,
    /// Whether it was judged at least once.
    judged: bool,
    /// Why there was no data, at the latest check that had none.
    no_data: Option<String>,
    /// A fleet rule: the client its failing value came from, where one can be named
    /// ([`read::fleet_client`]: bad blocks).
    failed_client: Option<u32>,
}

impl Target {
    fn check(&mut self, read: Read, rule: &Rule, bound: f64, input: &Input) {
        let v = match read {
            Read::Value(v) => v,
            Read::NoData(why) => {
                self.no_data = Some(why);
                return;
            }
            Read::NotYet => return,
        };
        self.observed = Some(v);
        self.no_data = None;
        let judge = rule.window_s.is_some() || input.is_final;
        let fails = if judge {
            self.judged = true;
            !rule.op.holds(v, bound)
        } else {
            rule.metric.monotone && rule.op.fails_for_good(v, bound)
        };
        if fails && self.failed.is_none() {
            self.failed = Some((input.now_s, v));
        }
    }

    /// Live, a rule judged over its windows passes so far (PASS) once a window was judged;
    /// any other is PENDING until the end.
    fn outcome(&self, is_final: bool) -> Outcome {
        match (self.failed, is_final, self.judged) {
            (Some(_), _, _) => Outcome::Fail,
            (None, _, true) => Outcome::Pass,
            (None, false, false) => Outcome::Pending,
            (None, true, false) => Outcome::NoData,
        }
    }

    /// The value to show: the failing one if it failed, else the latest.
    fn shown(&self) -> Option<f64> {
        self.failed.map(|f| f.1).or(self.observed)
    }
}

/// One rule and its targets.
#[derive(Debug, Clone)]
struct RuleState {
    rule: Rule,
    fleet: Target,
    clients: BTreeMap<u32, Target>,
}

/// The thresholds of a run, judged as it goes.
#[derive(Debug, Clone)]
pub struct Evaluator {
    rules: Vec<RuleState>,
    /// Each client's longest time without a heartbeat, seconds (the largest of the server's
    /// exact figures given at the checks).
    gaps: BTreeMap<u32, f64>,
    /// The baseline (its path, its report) the `baseline` bounds refer to.
    baseline: Option<(String, Report)>,
    /// `--abort-on-fail`: the failure that stopped the run.
    aborted_by: Option<String>,
    is_final: bool,
}

/// A rule that failed at a check (what `--abort-on-fail` stops the run with).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The rule, its value and the client: `client.mb_s >= 80 over 10s (client 102: 41.20
    /// MiB/s)`.
    pub reason: String,
}

impl Evaluator {
    /// An evaluator of `rules`; `baseline`: the report (and its path) `baseline` bounds refer
    /// to.
    pub fn new(rules: Vec<Rule>, baseline: Option<(String, Report)>) -> Evaluator {
        Evaluator {
            rules: rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    fleet: Target::default(),
                    clients: BTreeMap::new(),
                })
                .collect(),
            gaps: BTreeMap::new(),
            baseline,
            aborted_by: None,
            is_final: false,
        }
    }

    /// Whether there is any rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Records that `reason` stopped the run (`--abort-on-fail`).
    pub fn aborted(&mut self, reason: &str) {
        self.aborted_by.get_or_insert_with(|| reason.to_string());
    }

    /// The bound of `rule` for `client` (`None`: the fleet's), or why there is none.
    fn bound(&self, rule: &Rule, client: Option<u32>) -> Result<f64, String> {
        let factor = match rule.bound {
            Bound::Value(v) => return Ok(v),
            Bound::Baseline(f) => f,
        };
        let Some((_, base)) = &self.baseline else {
            return Err("no baseline given".into());
        };
        let none = BTreeMap::new();
        let read = match client {
            None => read::fleet_run(rule.metric, base, &none),
            Some(id) => match base.clients.iter().find(|c| c.id == id) {
                Some(c) => read::client_run(rule.metric, c, &none),
                None => return Err(format!("the baseline has no client {id}")),
            },
        };
        match read {
            Read::Value(v) => Ok(v * factor),
            Read::NoData(why) => Err(format!("the baseline has no figure: {why}")),
            Read::NotYet => Err("the baseline has no figure".into()),
        }
    }

    /// One check on `input`: every rule's targets updated. Returns the rules that failed at
    /// this check for the first time.
    pub fn check(&mut self, input: &Input) -> Vec<Failure> {
        let r = input.report;
        for (id, gap) in input.heartbeat_gaps {
            if gap.is_finite() {
                let g = self.gaps.entry(*id).or_insert(0.0);
                *g = g.max(*gap);
            }
        }
        let series: BTreeMap<u32, &ClientSeries> = r.series.iter().map(|s| (s.id, s)).collect();
        let mut failures = Vec::new();
        for i in 0..self.rules.len() {
            let rule = self.rules[i].rule.clone();
            let before = self.rules[i].fleet.failed.is_some()
                || self.rules[i].clients.values().any(|t| t.failed.is_some());
            match rule.scope {
                Scope::Fleet => self.check_fleet(i, &rule, input),
                Scope::Client => self.check_clients(i, &rule, input, &series),
            }
            if !before {
                failures.extend(self.failure(i));
            }
        }
        self.is_final |= input.is_final;
        failures
    }

    fn check_fleet(&mut self, i: usize, rule: &Rule, input: &Input) {
        let read = match (rule.window_s, rule.metric.source) {
            (Some(w), Source::MbS) => read::fleet_mb_s_window(input, w),
            (Some(w), Source::Latency(l)) => read::fleet_latency_window(input, l, w),
            _ => read::fleet_run(rule.metric, input.report, &self.gaps),
        };
        let bound = self.bound(rule, None);
        let t = &mut self.rules[i].fleet;
        let failed_before = t.failed.is_some();
        match bound {
            Ok(b) => t.check(read, rule, b, input),
            Err(why) => t.no_data = Some(why),
        }
        if !failed_before && t.failed.is_some() {
            t.failed_client = read::fleet_client(rule.metric, input.report);
        }
    }

    fn check_clients(
        &mut self,
        i: usize,
        rule: &Rule,
        input: &Input,
        series: &BTreeMap<u32, &ClientSeries>,
    ) {
        for c in input.report.clients.iter().filter(|c| c.time_ran_s > 0.0) {
            let s = series.get(&c.id).copied();
            let read = match (rule.window_s, rule.metric.source) {
                (Some(w), Source::MbS) => read::client_mb_s_window(input, s, w),
                (Some(w), Source::CpuPct) => read::client_cpu_window(input, s, w),
                _ => read::client_run(rule.metric, c, &self.gaps),
            };
            let bound = self.bound(rule, Some(c.id));
            let t = self.rules[i].clients.entry(c.id).or_default();
            match bound {
                Ok(b) => t.check(read, rule, b, input),
                Err(why) => t.no_data = Some(why),
            }
        }
    }

    /// Rule `i`'s first failure, if it has one: the reason the run would stop with.
    fn failure(&self, i: usize) -> Option<Failure> {
        let st = &self.rules[i];
        let unit = st.rule.metric.unit;
        if let Some((_, v)) = st.fleet.failed {
            let value = crate::report::fmt_value(Some(v), unit);
            let who = st
                .fleet
                .failed_client
                .map_or_else(String::new, |id| format!(", client {id}"));
            return Some(Failure {
                reason: format!("threshold failed: {} (fleet: {value}{who})", st.rule.text),
            });
        }
        let (id, t) = first_failed(&st.clients)?;
        let value = crate::report::fmt_value(t.failed.map(|f| f.1), unit);
        Some(Failure {
            reason: format!("threshold failed: {} (client {id}: {value})", st.rule.text),
        })
    }

    /// The verdict so far (final once a check with `is_final` was made); `start_time`: the
    /// server's start (RFC 3339), for the times of failures.
    pub fn verdict(&self, start_time: &str) -> Verdict {
        let rules: Vec<RuleVerdict> = self
            .rules
            .iter()
            .map(|st| self.rule_verdict(st, start_time))
            .collect();
        Verdict {
            passed: self.is_final && rules.iter().all(|r| r.outcome == Outcome::Pass),
            is_final: self.is_final,
            rules,
            aborted_by: self.aborted_by.clone(),
            baseline: self.baseline.as_ref().map(|b| b.0.clone()),
        }
    }

    fn rule_verdict(&self, st: &RuleState, start_time: &str) -> RuleVerdict {
        let rule = &st.rule;
        let mut v = RuleVerdict {
            rule: rule.text.clone(),
            outcome: Outcome::NoData,
            observed: None,
            bound: self.bound(rule, None).ok(),
            unit: rule.metric.unit.to_string(),
            first_failed_s: None,
            first_failed_at: None,
            client: None,
            clients_judged: 0,
            clients: Vec::new(),
            note: None,
        };
        match rule.scope {
            Scope::Fleet => {
                v.outcome = st.fleet.outcome(self.is_final);
                v.observed = st.fleet.shown();
                v.first_failed_s = st.fleet.failed.map(|f| f.0);
                v.client = st.fleet.failed_client;
                v.note = st
                    .fleet
                    .no_data
                    .clone()
                    .filter(|_| v.outcome != Outcome::Fail);
            }
            Scope::Client => self.client_rule_verdict(st, &mut v),
        }
        v.first_failed_at = v.first_failed_s.and_then(|s| at(start_time, s));
        if v.outcome == Outcome::NoData && v.note.is_none() {
            v.note = Some(
                match rule.scope {
                    Scope::Client => "no client ran",
                    Scope::Fleet => "nothing measured",
                }
                .into(),
            );
        }
        v
    }

    fn client_rule_verdict(&self, st: &RuleState, v: &mut RuleVerdict) {
        let rule = &st.rule;
        v.bound = match rule.bound {
            Bound::Value(b) => Some(b),
            Bound::Baseline(_) => None,
        };
        v.clients_judged = st.clients.len();
        for (id, t) in &st.clients {
            let outcome = t.outcome(self.is_final);
            if matches!(outcome, Outcome::Fail | Outcome::NoData) {
                v.clients.push(ClientRuleResult {
                    id: *id,
                    outcome,
                    observed: t.shown(),
                    first_failed_s: t.failed.map(|f| f.0),
                });
            }
        }
        let outcomes: Vec<Outcome> = st
            .clients
            .values()
            .map(|t| t.outcome(self.is_final))
            .collect();
        v.outcome = if outcomes.contains(&Outcome::Fail) {
            Outcome::Fail
        } else if outcomes.is_empty() || outcomes.contains(&Outcome::NoData) {
            if self.is_final {
                Outcome::NoData
            } else {
                Outcome::Pending
            }
        } else if outcomes.contains(&Outcome::Pending) {
            Outcome::Pending
        } else {
            Outcome::Pass
        };
        if let Some((id, t)) = first_failed(&st.clients) {
            v.client = Some(id);
            v.observed = t.failed.map(|f| f.1);
            v.first_failed_s = t.failed.map(|f| f.0);
        } else if let Some((id, x)) = worst(rule, &st.clients) {
            v.client = Some(id);
            v.observed = Some(x);
        }
        let no_data = st.clients.iter().find_map(|(id, t)| {
            (t.outcome(self.is_final) == Outcome::NoData)
                .then(|| format!("client {id}: {}", t.no_data.as_deref().unwrap_or("no data")))
        });
        v.note = no_data.filter(|_| v.outcome != Outcome::Fail);
    }
}

/// The client that failed first (the lowest id among those that failed at the same time).
fn first_failed(clients: &BTreeMap<u32, Target>) -> Option<(u32, &Target)> {
    clients
        .iter()
        .filter_map(|(id, t)| t.failed.map(|f| (f.0, *id, t)))
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
        .map(|(_, id, t)| (id, t))
}

/// The client closest to failing `rule`: the highest value under an upper bound, the
/// lowest under a lower one.
fn worst(rule: &Rule, clients: &BTreeMap<u32, Target>) -> Option<(u32, f64)> {
    let upper = matches!(
        rule.op,
        super::rule::Op::Lt | super::rule::Op::Le | super::rule::Op::Eq
    );
    clients
        .iter()
        .filter_map(|(id, t)| t.observed.map(|v| (*id, v)))
        .reduce(|a, b| {
            let b_worse = if upper { b.1 > a.1 } else { b.1 < a.1 };
            if b_worse {
                b
            } else {
                a
            }
        })
}

/// `start_time` plus `s` seconds, RFC 3339.
fn at(start_time: &str, s: f64) -> Option<String> {
    let start = chrono::DateTime::parse_from_rfc3339(start_time).ok()?;
    let d = chrono::Duration::microseconds((s * 1e6) as i64);
    Some(start.checked_add_signed(d)?.to_rfc3339())
}
