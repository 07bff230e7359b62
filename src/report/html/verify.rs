//! The verifying clients' section (clients that check their written data, `--verify`; the
//! report's `total.verify`): its line, a table of the clients (every verifying one on the
//! static page; on the paged page those with bad blocks, at most [`PAGED_MAX_CLIENTS`]) and
//! each one's first findings. Nothing when no client verified.

use std::fmt::Write as _;

use super::format::escape;
use crate::protocol::MAX_FINDINGS_SENT;
use crate::report::finding_line;
use crate::report::types::ClientVerify;
use crate::report::types::{ClientReport, Report};
use crate::report::verify::TEXT_FINDINGS;
use crate::verify::FindingClass;

/// Most clients the paged page's verify table lists (those with bad blocks).
const PAGED_MAX_CLIENTS: usize = 50;

/// The verify section; `all`: list every verifying client (the static page), else only those
/// with bad blocks, at most [`PAGED_MAX_CLIENTS`], with their first [`TEXT_FINDINGS`]
/// findings.
pub(super) fn verify_section(s: &mut String, report: &Report, all: bool) {
    let Some(line) = report.total.verify_line() else {
        return;
    };
    let _ = writeln!(
        s,
        "<h2>Verified data</h2>\n<p id=\"verify-total\">{}</p>",
        escape(&line)
    );
    let rows: Vec<(&ClientReport, &ClientVerify)> = report
        .clients
        .iter()
        .filter_map(|c| Some((c, c.verify.as_deref()?)))
        .filter(|(_, v)| all || v.errors_total > 0)
        .collect();
    if rows.is_empty() {
        return;
    }
    s.push_str("<table id=\"verify\"><thead><tr><th>Client</th><th>Files checked</th>");
    s.push_str("<th>Blocks checked</th><th>Bad blocks</th>");
    for c in FindingClass::ALL {
        let _ = write!(s, "<th>{}</th>", c.name());
    }
    s.push_str("</tr></thead><tbody>\n");
    let shown = if all { rows.len() } else { PAGED_MAX_CLIENTS };
    for (c, v) in rows.iter().take(shown) {
        let bad = if v.errors_total > 0 {
            " class=\"FAILED\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr data-verify=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td{bad}>{}</td>",
            c.id, c.id, v.files_checked, v.blocks_checked, v.errors_total
        );
        for class in FindingClass::ALL {
            let _ = write!(s, "<td>{}</td>", v.errors.get(class));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
    if rows.len() > shown {
        let _ = writeln!(
            s,
            "<p>{} more client(s) with bad blocks: the JSON report has every one.</p>",
            rows.len() - shown
        );
    }
    let per_client = if all {
        MAX_FINDINGS_SENT
    } else {
        TEXT_FINDINGS
    };
    for (c, v) in rows
        .iter()
        .take(shown)
        .filter(|(_, v)| !v.findings.is_empty())
    {
        let _ = writeln!(
            s,
            "<h3>Client {}: first findings</h3>\n<ul class=\"findings\" data-verify=\"{}\">",
            c.id, c.id
        );
        for f in v.findings.iter().take(per_client) {
            let _ = writeln!(s, "<li>{}</li>", escape(&finding_line(f)));
        }
        s.push_str("</ul>\n");
        let more = v.findings.len().saturating_sub(per_client);
        if more > 0 {
            let _ = writeln!(s, "<p>{more} more in the JSON report.</p>");
        }
    }
}
