//! The report's verified data (clients that check what they wrote, `--verify rollover|end`;
//! their `verify` and `vfind` lines): the fleet's figures from the clients'
//! ([`Total::verify_of`]; the types, [`ClientVerify`] and [`TotalVerify`], are `types`'),
//! and the text report's section.

use std::fmt::Write as _;

use super::types::{ClientReport, ClientVerify, Report, Total, TotalVerify, MAX_CLOCK_WARNINGS};
use crate::protocol::VerifyFinding;
use crate::verify::{ClassCounts, FindingClass};

/// Findings of a client the text report prints (the JSON report has every one kept).
pub const TEXT_FINDINGS: usize = 5;

impl ClientVerify {
    /// `errors` as the text shows them: `corrupt 1, stale 2, misdirected 0, torn 0, short 0`.
    pub fn errors_text(errors: &ClassCounts) -> String {
        FindingClass::ALL
            .iter()
            .map(|c| format!("{} {}", c.name(), errors.get(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A finding as one line: `stale at offset 12288 of /data/f (2 block(s)): expected …, found
/// …`.
pub fn finding_line(f: &VerifyFinding) -> String {
    f.sentence()
}

impl Total {
    /// The verifying `clients`' figures together (sums saturate); `None` when no client
    /// verified.
    pub fn verify_of(clients: &[ClientReport]) -> Option<TotalVerify> {
        let mut t: Option<TotalVerify> = None;
        for v in clients.iter().filter_map(|c| c.verify.as_deref()) {
            let t = t.get_or_insert_with(TotalVerify::default);
            t.clients += 1;
            t.clients_with_errors += usize::from(v.errors_total > 0);
            t.files_checked = t.files_checked.saturating_add(v.files_checked);
            t.blocks_checked = t.blocks_checked.saturating_add(v.blocks_checked);
            t.errors.add_all(&v.errors);
        }
        if let Some(t) = &mut t {
            t.errors_total = t.errors.total();
        }
        t
    }

    /// The text report's line of the verifying clients (`None` when none verified):
    /// `Verified data, 2 client(s): 2048 block(s) in 8 file(s) checked, 3 bad (corrupt 1,
    /// stale 2, misdirected 0, torn 0, short 0) in 1 client(s)`.
    pub fn verify_line(&self) -> Option<String> {
        let v = self.verify.as_ref()?;
        let mut s = format!(
            "Verified data, {} client(s): {} block(s) in {} file(s) checked, ",
            v.clients, v.blocks_checked, v.files_checked
        );
        if v.errors_total == 0 {
            s.push_str("no bad block");
        } else {
            let _ = write!(
                s,
                "{} bad ({}) in {} client(s)",
                v.errors_total,
                ClientVerify::errors_text(&v.errors),
                v.clients_with_errors
            );
        }
        Some(s)
    }
}

impl Report {
    /// The text report's verify section: the fleet's line ([`Total::verify_line`]), then for
    /// each client with bad blocks (at most [`MAX_CLOCK_WARNINGS`], then a count of the
    /// others) its counts and its first [`TEXT_FINDINGS`] findings. Empty when no client
    /// verified.
    pub fn verify_text(&self) -> String {
        let mut s = String::new();
        let Some(line) = self.total.verify_line() else {
            return s;
        };
        s.push_str(&line);
        s.push('\n');
        let bad = self
            .clients
            .iter()
            .filter_map(|c| Some((c.id, c.verify.as_deref()?)))
            .filter(|(_, v)| v.errors_total > 0);
        let mut more = 0usize;
        for (i, (id, v)) in bad.enumerate() {
            if i >= MAX_CLOCK_WARNINGS {
                more += 1;
                continue;
            }
            let _ = writeln!(
                s,
                "  Client {id}: {} bad block(s) of {} checked ({})",
                v.errors_total,
                v.blocks_checked,
                ClientVerify::errors_text(&v.errors)
            );
            for f in v.findings.iter().take(TEXT_FINDINGS) {
                // Peer text: escaped for the terminal (the JSON keeps it exact).
                let _ = writeln!(s, "    {}", crate::text::escape_control(&finding_line(f)));
            }
            let rest = v.findings.len().saturating_sub(TEXT_FINDINGS);
            if rest > 0 {
                let _ = writeln!(s, "    ({rest} more finding(s) in the JSON report)");
            }
        }
        if more > 0 {
            let _ = writeln!(
                s,
                "  {more} more client(s) with bad blocks (see each client's verify)"
            );
        }
        s
    }
}
