//! The thresholds' verdict on the HTML pages: under the head, a table of every rule (its
//! outcome, the value observed, the bound, when it first failed and which client).

use std::fmt::Write as _;

use super::format::escape;
use crate::report::types::Report;
use crate::report::verdict::{fmt_value, Outcome};

/// The verdict's section (nothing for a run without thresholds).
pub(super) fn section(s: &mut String, report: &Report) {
    let Some(v) = &report.verdict else {
        return;
    };
    let (head, colour) = match (v.is_final, v.passed) {
        (false, _) => ("RUNNING", "#555"),
        (true, true) => ("PASSED", "#0a7d2c"),
        (true, false) => ("FAILED", "#b00020"),
    };
    let _ = writeln!(
        s,
        "<div id=\"verdict\"><h2>Thresholds: <span style=\"color:{colour}\">{head}</span></h2>"
    );
    if let Some(a) = &v.aborted_by {
        let _ = writeln!(s, "<p>Run aborted by: {}</p>", escape(a));
    }
    if let Some(b) = &v.baseline {
        let _ = writeln!(s, "<p>Baseline: {}</p>", escape(b));
    }
    s.push_str(
        "<table><tr><th>Rule</th><th>Outcome</th><th>Observed</th><th>Bound</th>\
         <th>First failed (s)</th><th>Client</th><th>Note</th></tr>\n",
    );
    for r in &v.rules {
        let class = if r.outcome == Outcome::Pass {
            "PASS"
        } else {
            "FAILED"
        };
        let _ = writeln!(
            s,
            "<tr><td class=\"l\">{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&r.rule),
            r.outcome.as_str(),
            escape(&fmt_value(r.observed, &r.unit)),
            escape(&fmt_value(r.bound, &r.unit)),
            r.first_failed_s
                .map_or_else(String::new, |t| format!("{t:.1}")),
            r.client.map_or_else(String::new, |c| c.to_string()),
            escape(r.note.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table></div>\n");
}
