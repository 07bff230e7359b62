//! The JUnit XML of a run (`--report-junit`), in the Apache Ant JUnit format that CI systems
//! read (Jenkins, GitLab, GitHub actions, Azure): a `thresholds` suite with one test case per
//! rule (FAIL: `<failure>`, NO DATA: `<error>`) and a `clients` suite with one per client
//! (a client that did not PASS, or failed a `client.` rule: `<failure>`).

use std::fmt::Write as _;

use super::types::{ClientReport, Report, Status};
use super::verdict::{fmt_value, Outcome, RuleVerdict};

/// XML text: the five entities escaped; characters XML 1.0 does not allow become `?`.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A test case's body: nothing, a `<failure>` or an `<error>`.
enum Case {
    Pass,
    Failure(String),
    Error(String),
}

fn case(out: &mut String, class: &str, name: &str, time_s: f64, c: &Case) {
    let head = format!(
        "    <testcase name=\"{}\" classname=\"{class}\" time=\"{:.3}\"",
        xml(name),
        time_s.max(0.0)
    );
    let _ = match c {
        Case::Pass => writeln!(out, "{head}/>"),
        Case::Failure(m) => writeln!(
            out,
            "{head}>\n      <failure message=\"{0}\" type=\"threshold\">{0}</failure>\n    </testcase>",
            xml(m)
        ),
        Case::Error(m) => writeln!(
            out,
            "{head}>\n      <error message=\"{0}\" type=\"no data\">{0}</error>\n    </testcase>",
            xml(m)
        ),
    };
}

fn rule_case(r: &RuleVerdict) -> Case {
    match r.outcome {
        Outcome::Pass => Case::Pass,
        Outcome::Fail => Case::Failure(r.line()),
        Outcome::NoData | Outcome::Pending => Case::Error(r.line()),
    }
}

/// Why client `c` fails its test case: its status, then each `client.` rule it failed.
fn client_case(c: &ClientReport, rules: &[RuleVerdict]) -> Case {
    let mut why = Vec::new();
    if c.status != Status::Pass {
        let reason = c
            .reason
            .as_deref()
            .map_or(String::new(), |r| format!(": {r}"));
        why.push(format!("status {}{reason}", c.status));
    }
    for r in rules {
        for f in r
            .clients
            .iter()
            .filter(|f| f.id == c.id && f.outcome == Outcome::Fail)
        {
            why.push(format!("{}: {}", r.rule, fmt_value(f.observed, &r.unit)));
        }
    }
    if why.is_empty() {
        Case::Pass
    } else {
        Case::Failure(why.join("; "))
    }
}

/// The suite's opening tag.
fn suite(
    out: &mut String,
    id: usize,
    name: &str,
    stamp: &str,
    counts: (usize, usize, usize),
    time_s: f64,
) {
    let (tests, failures, errors) = counts;
    let _ = writeln!(
        out,
        "  <testsuite package=\"loadmon\" id=\"{id}\" name=\"{name}\" timestamp=\"{stamp}\" \
         hostname=\"localhost\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" \
         time=\"{time_s:.3}\">"
    );
}

impl Report {
    /// The JUnit XML of the report (`--report-junit`): its verdict's rules (if it has
    /// one) and its clients.
    ///
    /// # Examples
    /// ```
    /// let report = loadmon::Report::from_json(r#"{"start_time":"2024-05-01T10:00:00+02:00",
    ///   "end_time":"2024-05-01T10:00:05+02:00","clients":[],"total":{"clients":0,"passed":0,
    ///   "files_written":0,"bytes_written":0,"throughput_mb_s":0.0,"first_done":null,
    ///   "last_done":null}}"#).unwrap();
    /// let xml = report.to_junit();
    /// assert!(xml.contains("<testsuite package=\"loadmon\" id=\"1\" name=\"clients\""));
    /// ```
    pub fn to_junit(&self) -> String {
        junit_xml(self)
    }
}

/// The JUnit XML of `report` (see [`Report::to_junit`]).
pub(super) fn junit_xml(report: &Report) -> String {
    let stamp = chrono::DateTime::parse_from_rfc3339(&report.start_time).map_or_else(
        |_| "1970-01-01T00:00:00".to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%S").to_string(),
    );
    let span_s = match (
        chrono::DateTime::parse_from_rfc3339(&report.start_time),
        chrono::DateTime::parse_from_rfc3339(&report.end_time),
    ) {
        (Ok(a), Ok(b)) => (b - a).num_milliseconds().max(0) as f64 / 1000.0,
        _ => 0.0,
    };
    let rules: &[RuleVerdict] = report.verdict.as_ref().map_or(&[], |v| &v.rules);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    let cases: Vec<Case> = rules.iter().map(rule_case).collect();
    let count = |cs: &[Case]| {
        let f = cs.iter().filter(|c| matches!(c, Case::Failure(_))).count();
        let e = cs.iter().filter(|c| matches!(c, Case::Error(_))).count();
        (cs.len(), f, e)
    };
    suite(&mut out, 0, "thresholds", &stamp, count(&cases), span_s);
    out.push_str("    <properties>\n");
    if let Some(b) = report.verdict.as_ref().and_then(|v| v.baseline.as_deref()) {
        let _ = writeln!(
            out,
            "      <property name=\"baseline\" value=\"{}\"/>",
            xml(b)
        );
    }
    if let Some(a) = report
        .verdict
        .as_ref()
        .and_then(|v| v.aborted_by.as_deref())
    {
        let _ = writeln!(
            out,
            "      <property name=\"aborted_by\" value=\"{}\"/>",
            xml(a)
        );
    }
    out.push_str("    </properties>\n");
    for (r, c) in rules.iter().zip(&cases) {
        case(&mut out, "loadmon.thresholds", &r.rule, span_s, c);
    }
    out.push_str("    <system-out/>\n    <system-err/>\n  </testsuite>\n");
    let cases: Vec<Case> = report
        .clients
        .iter()
        .map(|c| client_case(c, rules))
        .collect();
    suite(&mut out, 1, "clients", &stamp, count(&cases), span_s);
    out.push_str("    <properties/>\n");
    for (c, k) in report.clients.iter().zip(&cases) {
        case(
            &mut out,
            "loadmon.clients",
            &format!("client {}", c.id),
            c.time_ran_s,
            k,
        );
    }
    out.push_str("    <system-out/>\n    <system-err/>\n  </testsuite>\n</testsuites>\n");
    out
}
