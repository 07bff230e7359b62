//! The report: what the server knows about every client, as serde types with the seed's text
//! rendering (byte for byte for every line the seed had) and JSON, CSV and HTML renderings.
//!
//! One room per job:
//! - `types`: [`Status`], the client row [`ClientReport`] (with [`StreamReport`] and
//!   [`ClientVerify`]), [`Total`] (with [`TotalVerify`]) and [`Report`] (serde:
//!   the JSON report's field names, and the CSV columns);
//! - `text`: the seed's text report ([`Report::to_text`], [`Total::fleet_line`]);
//! - `json`: [`Report::to_json`], [`Report::from_json`], [`Report::write_json`];
//! - `latency`: the fleet's latency line of the text report ([`Total::latency_line`]) and the
//!   interval log ([`Report::latency_log`]);
//! - `pace`: paced clients' figures in a row ([`ClientReport::set_pace`]), the text report's
//!   pace line ([`Total::pace_line`]) and the warnings about clients that could not keep pace
//!   ([`Report::pace_warnings`]);
//! - `csv` (feature `reports`): `Report::to_csv`, its header and rows from [`ClientReport`]'s
//!   serde derive;
//! - `html` (feature `reports`): `Report::to_html`, the self-contained page;
//! - `junit`: [`Report::to_junit`], the JUnit XML CI systems read (`--report-junit`);
//! - `verdict`: the thresholds' verdict as data ([`Verdict`]) and its text section;
//! - `verify`: the clients' checks of their written data together ([`Total::verify_of`]) and
//!   the text report's verify section ([`Report::verify_text`]);
//! - `files`: the report files of a run ([`ReportFiles`], [`OpenReportFiles`]), written through
//!   [`out_file`](crate::out_file).
//!
//! Each renders the types; none reads another's internals (`html` uses `text`'s fleet line),
//! and `files` picks the renderer of each kind.

#[cfg(feature = "reports")]
mod csv;
mod files;
#[cfg(feature = "reports")]
mod html;
mod json;
mod junit;
mod latency;
mod pace;
mod text;
mod types;
mod verdict;
mod verify;

pub use files::{OpenReportFiles, ReportFiles};
pub use types::{
    ClientReport, ClientVerify, Report, Status, StreamReport, Total, TotalVerify, ABORTED_HEADLINE,
    CLOCK_WARN_MS, MAX_CLOCK_WARNINGS, STOPPED_REASON,
};
pub use verdict::{fmt_value, ClientRuleResult, Outcome, RuleVerdict, Verdict};
pub use verify::{finding_line, TEXT_FINDINGS};

/// Kept here for the report's callers; the check lives in [`out_file`](crate::out_file).
pub use crate::out_file::check_path as check_report_path;
/// Kept here for the report's callers; the writer lives in [`out_file`](crate::out_file).
pub use crate::out_file::write_atomic;

#[cfg(test)]
mod tests;
