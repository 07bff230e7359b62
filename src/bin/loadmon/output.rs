//! The console text: [`say`] (never a panic on a closed stream), the text report, the exit
//! code a report means.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use loadmon::text::escape_control;
use loadmon::{Report, Status};

/// Streams the console stops writing to once they are closed.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// Which console stream [`say`] writes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Console {
    Out,
    Err,
}

/// Writes `text` to stdout or stderr and flushes, never panicking: a closed pipe (EPIPE) or
/// any other write error ends output to that stream, quietly (a failed stdout is mentioned
/// once on stderr unless it was a closed pipe); the run itself goes on.
pub(crate) fn say(to: Console, text: &str) {
    let gone = match to {
        Console::Out => &STDOUT_GONE,
        Console::Err => &STDERR_GONE,
    };
    if gone.load(Ordering::Relaxed) {
        return;
    }
    let result = match to {
        Console::Out => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Console::Err => {
            let mut err = std::io::stderr().lock();
            err.write_all(text.as_bytes()).and_then(|()| err.flush())
        }
    };
    if let Err(e) = result {
        let first = !gone.swap(true, Ordering::Relaxed);
        if first && matches!(to, Console::Out) && e.kind() != std::io::ErrorKind::BrokenPipe {
            say(
                Console::Err,
                &format!("loadmon: stdout: {e}; nothing more is written there\n"),
            );
        }
    }
}

/// The text report for the console, each line with its control characters escaped (a
/// client's reason comes from the peer: `error:<reason>`).
pub(crate) fn report_text(report: &Report) -> String {
    let mut s = String::new();
    for line in report.to_text().lines() {
        s.push_str(&escape_control(line));
        s.push('\n');
    }
    s
}

/// 0 if every client PASSed (and there was at least one, and in fleet mode every expected
/// client started), else 3.
pub(crate) fn report_exit(report: &Report) -> ExitCode {
    // Thresholds failed: their own code, whatever the clients' statuses.
    if report.verdict.as_ref().is_some_and(|v| !v.passed) {
        return ExitCode::from(THRESHOLDS_FAILED);
    }
    let t = &report.total;
    let fleet_short = t
        .expected_clients
        .is_some_and(|n| t.started_clients != Some(n));
    // No client at all (a run stopped by a signal before any got an id) is no success.
    if !fleet_short
        && !report.clients.is_empty()
        && report.clients.iter().all(|c| c.status == Status::Pass)
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

/// The exit code of a run whose thresholds failed (`--threshold`): not 3, "a client did not
/// PASS", so that a pipeline tells a slow run from a broken one.
pub(crate) const THRESHOLDS_FAILED: u8 = 4;

/// A latency for the console: two decimals, or `-` when there is none.
pub(crate) fn fmt_ms(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}
