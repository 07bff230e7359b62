//! The report files of a run: which reports to write where ([`ReportFiles`]), resolved at the
//! run's start ([`OpenReportFiles`]) and written at its end.

use std::path::{Path, PathBuf};

use super::types::Report;
use crate::error::{Error, Result};
use crate::latency::LatencyInterval;
use crate::out_file::OutFile;

/// The report files of a run (each optional): resolved when the run starts (a relative path
/// against the working directory of that moment; see [`ReportFiles::open`]), written after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFiles {
    /// The JSON report.
    pub json: Option<PathBuf>,
    /// The CSV report (one row per client).
    pub csv: Option<PathBuf>,
    /// The HTML report (table and charts).
    pub html: Option<PathBuf>,
    /// The fleet's merged chunk write latency intervals, in the HdrHistogram interval-log
    /// format ([`crate::latency::interval_log`]).
    pub latency_log: Option<PathBuf>,
    /// The JUnit XML (`Report::to_junit`): a test case per threshold rule and per client.
    pub junit: Option<PathBuf>,
}

impl ReportFiles {
    fn each(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("JSON", &self.json),
            ("CSV", &self.csv),
            ("HTML", &self.html),
            (LATENCY_LOG, &self.latency_log),
            (JUNIT, &self.junit),
        ]
        .into_iter()
        .filter_map(|(kind, p)| p.as_deref().map(|p| (kind, p)))
    }

    /// Checks every path before the run, so that a report is never lost to a path found
    /// unusable afterwards: see [`check_path`](crate::out_file::check_path).
    ///
    /// # Errors
    /// [`Error::Config`] naming the report and the path.
    pub fn check(&self) -> Result<()> {
        self.open().map(drop)
    }

    /// Resolves every path now (see [`OutFile::open`]): a server does this when it starts,
    /// so that the files are written where the paths pointed then, and never through a link
    /// planted during the run.
    ///
    /// # Errors
    /// [`Error::Config`] naming the report and the path.
    pub fn open(&self) -> Result<OpenReportFiles> {
        let files = self
            .each()
            .map(|(kind, path)| Ok((kind, path.to_path_buf(), ReportFiles::one(kind, path)?)))
            .collect::<Result<_>>()?;
        Ok(OpenReportFiles { files })
    }

    /// Resolves every path now and writes every report file (each is attempted even if
    /// another failed); one `(kind, path, result)` per file. See [`ReportFiles::open`].
    /// The latency log has no intervals here (a server's run writes them: see
    /// [`OpenReportFiles::write_with_latency`]).
    pub fn write(&self, report: &Report) -> Vec<(&'static str, PathBuf, Result<()>)> {
        self.each()
            .map(|(kind, path)| {
                let r = ReportFiles::one(kind, path)
                    .and_then(|file| file.write(render(kind, report, &[])?.as_bytes()));
                (kind, path.to_path_buf(), r)
            })
            .collect()
    }

    fn one(kind: &'static str, path: &Path) -> Result<OutFile> {
        if kind != "JSON" && kind != LATENCY_LOG && kind != JUNIT && !cfg!(feature = "reports") {
            return Err(Error::Config(format!(
                "{kind} report {}: loadmon was built without the `reports` feature",
                path.display()
            )));
        }
        OutFile::resolve(path)
            .map_err(|why| Error::Config(format!("{kind} report {}: {why}", path.display())))
    }
}

/// The report files of a run, resolved at its start ([`ReportFiles::open`]).
#[derive(Debug)]
pub struct OpenReportFiles {
    files: Vec<(&'static str, PathBuf, OutFile)>,
}

impl OpenReportFiles {
    /// Writes every report file (each is attempted even if another failed); one
    /// `(kind, path, result)` per file. The latency log has no intervals (see
    /// [`OpenReportFiles::write_with_latency`]).
    pub fn write(&self, report: &Report) -> Vec<(&'static str, PathBuf, Result<()>)> {
        self.write_with_latency(report, &[])
    }

    /// As [`OpenReportFiles::write`], the latency log with the fleet's merged `intervals`.
    pub fn write_with_latency(
        &self,
        report: &Report,
        intervals: &[LatencyInterval],
    ) -> Vec<(&'static str, PathBuf, Result<()>)> {
        self.files
            .iter()
            .map(|(kind, path, file)| {
                let r =
                    render(kind, report, intervals).and_then(|text| file.write(text.as_bytes()));
                (*kind, path.clone(), r)
            })
            .collect()
    }
}

/// The kind of the latency log among the report files.
const LATENCY_LOG: &str = "latency log";
/// The kind of the JUnit XML among the report files.
const JUNIT: &str = "JUnit";

/// The report file of `kind` (JSON, CSV, HTML, the latency log of `intervals`).
fn render(kind: &str, report: &Report, intervals: &[LatencyInterval]) -> Result<String> {
    match kind {
        "JSON" => Ok(report.to_json()),
        LATENCY_LOG => Ok(report.latency_log(intervals)),
        JUNIT => Ok(report.to_junit()),
        #[cfg(feature = "reports")]
        "CSV" => Ok(report.to_csv()),
        #[cfg(feature = "reports")]
        _ => Ok(report.to_html()),
        #[cfg(not(feature = "reports"))]
        _ => Err(Error::Config(format!(
            "{kind} report: loadmon was built without the `reports` feature"
        ))),
    }
}
