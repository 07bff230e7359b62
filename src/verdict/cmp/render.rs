//! A comparison as text, JSON and a self-contained HTML page.

use std::fmt::Write as _;

use super::{Change, Comparison};
use crate::report::fmt_value;

fn change_cells(c: &Change) -> [String; 5] {
    let pct = c
        .change_pct
        .map_or_else(|| "n/a".into(), |p| format!("{p:+.1} %"));
    let how = match c.p_value {
        Some(p) => format!("p={p:.4}, {} vs {} samples", c.samples.0, c.samples.1),
        None if c.samples.0 + c.samples.1 == 0 => "no samples".into(),
        None => format!("{} vs {} samples", c.samples.0, c.samples.1),
    };
    [
        c.figure.clone(),
        format!(
            "{} -> {}",
            fmt_value(c.old, &c.unit),
            fmt_value(c.new, &c.unit)
        ),
        pct,
        c.judgement.as_str().into(),
        how,
    ]
}

impl Comparison {
    /// The text: parameters that differ, the fleet's changes, each client's, how judged.
    pub fn to_text(&self) -> String {
        let mut s = format!("loadmon cmp {} -> {}\n", self.old, self.new);
        if self.params.is_empty() {
            s.push_str("Parameters: the same\n");
        } else {
            s.push_str("Parameters that differ:\n");
            for p in &self.params {
                let _ = writeln!(s, "  {}: {} -> {}", p.name, p.old, p.new);
            }
        }
        s.push_str("Fleet:\n");
        for c in &self.fleet {
            let [f, v, p, j, h] = change_cells(c);
            let _ = writeln!(s, "  {f:<8} {v:<34} {p:>9}  {j} ({h})");
        }
        for (id, changes) in &self.clients {
            let _ = writeln!(s, "Client {id}:");
            for c in changes {
                let [f, v, p, j, h] = change_cells(c);
                let _ = writeln!(s, "  {f:<8} {v:<34} {p:>9}  {j} ({h})");
            }
        }
        if !self.unmatched_clients.is_empty() {
            let ids: Vec<String> = self.unmatched_clients.iter().map(u32::to_string).collect();
            let _ = writeln!(s, "Clients in one run only: {}", ids.join(", "));
        }
        let _ = writeln!(s, "Judged: {}", self.method);
        s
    }

    /// The JSON (pretty).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A self-contained HTML page (no scripts, no remote assets).
    pub fn to_html(&self) -> String {
        let mut s = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>loadmon cmp</title>\
             <style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px \
             solid #ccc;padding:2px 8px}.slower{color:#b00}.faster{color:#070}</style></head>\
             <body>\n",
        );
        let _ = writeln!(s, "<h1>{} &rarr; {}</h1>", esc(&self.old), esc(&self.new));
        s.push_str("<h2>Parameters that differ</h2>\n<table><tr><th>parameter</th><th>old</th><th>new</th></tr>\n");
        for p in &self.params {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.name),
                esc(&p.old),
                esc(&p.new)
            );
        }
        s.push_str("</table>\n");
        table(&mut s, "Fleet", &self.fleet);
        for (id, changes) in &self.clients {
            table(&mut s, &format!("Client {id}"), changes);
        }
        let _ = writeln!(s, "<p>Judged: {}</p>\n</body></html>", esc(&self.method));
        s
    }
}

fn table(s: &mut String, title: &str, changes: &[Change]) {
    let _ = writeln!(
        s,
        "<h2>{}</h2>\n<table><tr><th>figure</th><th>old &rarr; new</th><th>change</th>\
         <th>judged</th><th>how</th></tr>",
        esc(title)
    );
    for c in changes {
        let [f, v, p, j, h] = change_cells(c);
        let class = j.replace(' ', "_");
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            esc(&f),
            esc(&v),
            esc(&p),
            esc(&j),
            esc(&h)
        );
    }
    s.push_str("</table>\n");
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
