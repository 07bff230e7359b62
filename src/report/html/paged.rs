//! The page of a large run (above [`STATIC_MAX_CLIENTS`](super::STATIC_MAX_CLIENTS)
//! clients): a summary and fleet charts drawn statically, then the per-client table a page at
//! a time and one client's charts when it is opened, drawn by a small inline script
//! (`page.js`) from the data the page embeds ([`page_data`]).

use std::fmt::Write as _;

use super::chart::{fleet_chart, latency_chart, svg_chart};
use super::data::page_data;
use super::page::{footer, head, CLIENT_COLUMNS, CPU_MEM_NOTE};
use super::summary::{fleet_bands, summary_tables};
use crate::report::types::Report;
use crate::series::Sample;

/// The page of a large run: a summary (clients by status, the spread of each figure across
/// the clients) and fleet charts drawn statically, then the per-client table a page at a time
/// and one client's charts when it is opened, drawn by a small inline script from data the
/// page embeds (each client's series kept to a budget of points).
pub(super) fn render_paged(report: &Report) -> String {
    let mut s = String::new();
    head(
        &mut s,
        report,
        concat!(
            "th.sortable{cursor:pointer}#controls{margin:1em 0}#controls *{margin-right:.6em}",
            "#detail{border:1px solid #999;padding:0 1em;margin:1em 0;background:#fafafa}",
            "table.fields th{text-align:left}"
        ),
    );
    summary_tables(&mut s, report);
    s.push_str("<h2>Fleet charts</h2>\n");
    fleet_chart(&mut s, report);
    latency_chart(&mut s, report);
    super::pace::pace_section(&mut s, report, false);
    super::verify::verify_section(&mut s, report, false);
    let bands = |f: fn(&Sample) -> f64| fleet_bands(&report.series, f);
    let throughput = bands(|p| p.throughput_mb_s);
    if throughput.is_empty() {
        s.push_str("<p>No client sent stats: no per-client spread charts.</p>\n");
    } else {
        s.push_str(&svg_chart(
            "Throughput per client across the fleet: the spread",
            "MB/s",
            &throughput,
        ));
        s.push('\n');
        s.push_str(&svg_chart(
            "CPU per client across the fleet: the spread",
            "%",
            &bands(|p| p.cpu_pct),
        ));
        s.push('\n');
        s.push_str(concat!(
            "<p><small>At each moment, the slowest, the 10th percentile, the median, the 90th ",
            "percentile and the fastest of the clients running then (from their stats samples).",
            "</small></p>\n"
        ));
    }
    s.push_str(CPU_MEM_NOTE);
    let _ = writeln!(
        s,
        "<h2>Clients</h2>\n<noscript><p>The per-client table and charts need JavaScript; the \
         CSV and JSON reports have every client.</p></noscript>\n<div id=\"controls\">\
         <select id=\"status-filter\" aria-label=\"status\"></select>\
         <input id=\"search\" type=\"search\" placeholder=\"client id, reason or peer\" \
         aria-label=\"search\"><button id=\"prev\" type=\"button\">previous</button>\
         <button id=\"next\" type=\"button\">next</button><span id=\"pager-text\"></span></div>\n\
         <div id=\"detail\" hidden></div>\n\
         <table id=\"clients\"><thead>{CLIENT_COLUMNS}</thead><tbody></tbody></table>"
    );
    s.push_str("<script type=\"application/json\" id=\"loadmon-data\">");
    s.push_str(&page_data(report));
    s.push_str("</script>\n<script>\n");
    s.push_str(PAGE_SCRIPT);
    s.push_str("</script>\n");
    footer(&mut s);
    s
}

/// The paged page's script.
const PAGE_SCRIPT: &str = include_str!("page.js");
