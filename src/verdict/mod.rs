//! Verdicts for CI: threshold rules the server checks while the run goes on, their verdict
//! (carried by the report as [`Verdict`](crate::report::Verdict)), the JUnit XML of a
//! verdict (the report renders it, JUnit XML included), and the comparison of two runs (`loadmon cmp`). Pure: no I/O, no server; the
//! server feeds the evaluator its report once a second (`server::thresholds`).
//!
//! One room per job:
//! - `metrics`: the registry — every metric a rule may name, its unit, scopes, windows and
//!   where it is read from ([`METRICS`]);
//! - `rule`: the grammar and the parser, with errors that point into the rule ([`Rule`]);
//! - `read`: how each metric is read from a report's merged data;
//! - `eval`: the [`Evaluator`] (when a rule is judged, what it keeps);
//! - `cmp/`: two runs compared, judged against run-to-run noise ([`compare`]).
//!
//! # Rules
//! `[fleet.|client.]METRIC OP BOUND [over Ns]`, e.g. `fleet.p99_ms < 50`,
//! `fleet.mb_s >= 400 over 60s`, `client.mb_s >= 80`, `client.cpu_pct < 90`,
//! `heartbeat_gap_s < 5`, `fleet.p99_ms <= baseline * 1.1`. A `client.` rule holds for every
//! client that ran. A bound is a plain number in the metric's unit. `verify_errors` counts
//! the bad blocks the clients' data checks found (`--verify`), a finding at once: a rule on
//! it gives NO DATA where no client verified, which is not a pass; a fleet rule that fails
//! names the client with the most.
//!
//! A rule is judged over a window at every check once a full window of complete data exists;
//! over the run, a figure that can only grow (counts, maxima) fails live as soon as it passes
//! an upper bound, any other at the end (see `eval`). The verdict passes when every rule
//! passed: FAIL and NO DATA do not.

mod cmp;
mod eval;
mod metrics;
mod read;
mod rule;

pub use cmp::{compare, Change, Comparison, Judgement, ParamDiff, MIN_SAMPLES, P_VALUE};
pub use eval::{Evaluator, Failure};
pub use metrics::{metric, metric_list, Latency, Metric, Scope, Source, METRICS};
pub use read::{common_start_s, Input, Read};
pub use rule::{parse_rules, Bound, Op, Rule, RuleError, MAX_RULES, MAX_RULE_CHARS, MAX_WINDOW_S};

#[cfg(test)]
mod tests;
