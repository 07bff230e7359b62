//! The flags of thresholds and verdicts (`loadmon server --threshold …`) and of `loadmon cmp`.

use std::path::PathBuf;

use clap::Args;

/// Thresholds: rules the server checks live, and the verdict's files.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Thresholds (the verdict for CI; exit code 4 when they fail)")]
pub(crate) struct VerdictArgs {
    /// A threshold rule, repeatable: [fleet.|client.]METRIC OP BOUND [over Ns], e.g.
    /// 'fleet.p99_ms < 50', 'fleet.mb_s >= 400 over 60s', 'client.mb_s >= 80',
    /// 'heartbeat_gap_s < 5', 'fleet.p99_ms <= baseline * 1.1'. A bad rule lists the metrics.
    #[arg(long = "threshold", value_name = "RULE")]
    pub(crate) thresholds: Vec<String>,
    /// Stop the run at the first threshold that fails (clients ABORTED with the rule as the
    /// reason); otherwise the verdict is given at the end.
    #[arg(long)]
    pub(crate) abort_on_fail: bool,
    /// A JSON report of an earlier run, for rules with `baseline` as their bound.
    #[arg(long, value_name = "OLD.json")]
    pub(crate) baseline: Option<PathBuf>,
    /// Write the JUnit XML (a test case per rule and per client) here, for CI systems.
    #[arg(long, value_name = "PATH")]
    pub(crate) report_junit: Option<PathBuf>,
}

/// `loadmon cmp OLD.json NEW.json`.
#[derive(Args, Debug)]
pub(crate) struct CmpArgs {
    /// The earlier run's JSON report.
    pub(crate) old: PathBuf,
    /// The later run's JSON report.
    pub(crate) new: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long, conflicts_with = "html")]
    pub(crate) json: bool,
    /// Write the comparison as an HTML page here (the text still goes to stdout).
    #[arg(long, value_name = "PATH")]
    pub(crate) html: Option<PathBuf>,
}
