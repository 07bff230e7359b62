//! The self-contained HTML report. No external file: it opens anywhere, offline.
//!
//! Up to [`STATIC_MAX_CLIENTS`] clients the page is static, without a script: the report
//! table, a chart of all clients' throughput together (the report's `total.series`, from the
//! common start), and inline SVG charts of each client's throughput and CPU over time.
//! Throughput is charted for every client that wrote something: from its stats samples where
//! it sent any, otherwise as its average over its run (from the bytes and files it reported and
//! its start and end times), so that a seed client, which sends no periodic stats, has a line
//! too. CPU is charted from stats samples only.
//!
//! Above that the page stays small and usable however many clients ran (under 4 MB at 10,000
//! clients, where one chart per client made 50 MB and more): a summary drawn statically
//! (clients by status; min, 10th percentile, median, 90th percentile and max of each figure
//! across the clients), the fleet charts (all clients together, and the spread of per-client
//! throughput and CPU over time), then the per-client table a page of 100 rows at a time
//! (filter by status, search, sort by any column) and one client's detail and charts when it
//! is opened (`report.html#client-<id>`), drawn by a small inline script from compact data the
//! page embeds: each client's row, and its series kept to a budget of points (all 96 up to
//! about 3,500 clients), 12 bits per value. The JSON and CSV reports keep everything exact.
//!
//! The rooms: `page` (style, head, footer), `static_page` and `paged` (the two kinds of
//! page), `chart` (SVG line charts), `pace` (the paced clients' section), `verify` (the
//! verifying clients' section), `summary` (the paged page's static summary), `data` (what
//! the paged page's script, `page.js`, reads), `format` (escaping, numbers, times).

use std::path::Path;

use crate::error::Result;
use crate::out_file::write_atomic;
use crate::report::types::Report;

mod chart;
mod data;
mod format;
mod pace;
mod page;
mod paged;
mod static_page;
mod summary;
mod verdict;
mod verify;

/// Up to this many clients the page is static (every row, every client's line in one
/// chart, no script); above it the page is the paged one (see the module docs).
const STATIC_MAX_CLIENTS: usize = 50;

impl Report {
    /// A self-contained HTML page (nothing loaded from elsewhere). Up to 50 clients: the
    /// report table and inline SVG charts of each client's throughput and CPU over time (from
    /// [`Report::series`]), no script. Above: a summary and fleet charts drawn statically, and
    /// the per-client table a page at a time with a client's charts drawn when it is opened
    /// (`#client-<id>`) by an inline script, so that the page stays small (under 4 MB at
    /// 10,000 clients).
    pub fn to_html(&self) -> String {
        render(self)
    }

    /// Writes [`Report::to_html`] to `path` atomically.
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) with the path.
    pub fn write_html(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_html().as_bytes())
    }
}

/// The whole report as one HTML page: static up to [`STATIC_MAX_CLIENTS`] clients, paged
/// above.
fn render(report: &Report) -> String {
    if report.clients.len() <= STATIC_MAX_CLIENTS {
        static_page::render_static(report)
    } else {
        paged::render_paged(report)
    }
}

/// A stats sample for the tests.
#[cfg(test)]
fn sample(t_s: f64, throughput_mb_s: f64, cpu_pct: f64) -> crate::series::Sample {
    crate::series::Sample {
        t_s,
        bytes_written: 0,
        throughput_mb_s,
        cpu_pct,
        mem_pct: 0.0,
        rss_bytes: None,
    }
}
