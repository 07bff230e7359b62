//! Live console output for the CLI: a table of clients redrawn every second when stdout is a
//! terminal, a plain status line every few seconds when it is not, and a progress bar for a
//! test client's run.
//!
//! Log lines and the live table share the terminal: install [`SuspendingStderr`] as the log
//! writer and a log line is printed above the table instead of through it.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Progress;
use crate::report::{ClientReport, Status};
use crate::server::ServerControl;
use crate::units::BYTES_PER_MB;

/// Most rows the live table shows; the rest are summed up in one line.
pub const MAX_ROWS: usize = 30;

/// How often a server's live view prints a status line when stdout is not a terminal, unless
/// told otherwise (the CLI's `--status-interval` default).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// The bar on screen, if any, so that log lines can be printed around it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn set_active(bar: Option<ProgressBar>) {
    *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// A log writer for stderr that hides the live table or progress bar while it writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SuspendingStderr;

/// A closed stderr (EPIPE) swallows log lines: logging must never fail or panic the run.
fn ignore_closed(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

impl Write for SuspendingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
        ignore_closed(match bar {
            Some(b) => b.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        ignore_closed(std::io::stderr().flush())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SuspendingStderr {
    type Writer = SuspendingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// The live table: a header and one row per client (id, status, elapsed, files, MB/s,
/// CPU %, memory, seconds since the last heartbeat), at most [`MAX_ROWS`] rows.
///
/// # Examples
/// ```
/// let text = loadmon::console::table(&[]);
/// assert!(text.starts_with("  client"));
/// ```
pub fn table(clients: &[ClientReport]) -> String {
    let mut s = format!(
        "{:>8}  {:<11} {:>9} {:>6} {:>9} {:>7} {:>10} {:>8}\n",
        "client", "status", "elapsed", "files", "MB/s", "CPU %", "mem MiB", "hb age"
    );
    // Running clients first (those are the ones to watch), then by id.
    let mut rows: Vec<&ClientReport> = clients.iter().collect();
    rows.sort_by_key(|c| (c.status != Status::Running, c.id));
    for c in rows.iter().take(MAX_ROWS) {
        s.push_str(&format!(
            "{:>8}  {:<11} {:>8.1}s {:>6} {:>9.2} {:>7} {:>10} {:>8}\n",
            c.id,
            c.status.as_str(),
            c.time_ran_s,
            c.files_written,
            c.throughput_mb_s,
            opt(c.cpu_last_pct, 1),
            opt(c.rss_last_bytes.map(|b| b as f64 / BYTES_PER_MB), 1),
            opt(c.last_heartbeat_age_s, 1),
        ));
    }
    if rows.len() > MAX_ROWS {
        s.push_str(&format!(
            "{:>8}  … {} more client(s)\n",
            "",
            rows.len() - MAX_ROWS
        ));
    }
    s.push_str(&summary(clients));
    s
}

/// One line: clients by status, files, MB written and overall MB/s.
pub fn summary(clients: &[ClientReport]) -> String {
    let count = |st: Status| clients.iter().filter(|c| c.status == st).count();
    let bytes: u64 = clients.iter().map(|c| c.bytes_written).sum();
    let mb_s: f64 = clients
        .iter()
        .filter(|c| c.status == Status::Running)
        .map(|c| c.throughput_mb_s)
        .sum();
    let mut s = format!(
        "{} client(s): {} running, {} pass",
        clients.len(),
        count(Status::Running),
        count(Status::Pass)
    );
    let bad = count(Status::Aborted) + count(Status::TimedOut) + count(Status::Failed);
    if bad > 0 {
        s.push_str(&format!(", {bad} aborted/timed out/failed"));
    }
    s.push_str(&format!(
        "; {} file(s), {:.1} MB written, {:.2} MB/s now",
        clients.iter().map(|c| c.files_written).sum::<u64>(),
        bytes as f64 / BYTES_PER_MB,
        mb_s
    ));
    s
}

/// A background thread that redraws (or prints) until dropped.
#[derive(Debug)]
pub struct LiveView {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveView {
    fn spawn(period: Duration, mut tick: impl FnMut() + Send + 'static) -> LiveView {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("loadmon-console".into())
            .spawn(move || loop {
                tick();
                let (lock, cv) = &*s;
                let g = lock.lock().unwrap_or_else(|p| p.into_inner());
                let (g, _) = cv
                    .wait_timeout_while(g, period, |stopped| !*stopped)
                    .unwrap_or_else(|p| p.into_inner());
                if *g {
                    break;
                }
            })
            .ok();
        LiveView { stop, thread }
    }

    /// Shows the server's clients: a live table on stdout if it is a terminal that can
    /// redraw (not `TERM=dumb`), else a status line (through `tracing`, target `loadmon::status`) every `status_every`.
    pub fn server(control: ServerControl, status_every: Option<Duration>) -> LiveView {
        // A terminal that can redraw (not TERM=dumb) gets the table; anything else, lines.
        let target = ProgressDrawTarget::stdout();
        if std::io::stdout().is_terminal() && !target.is_hidden() {
            let bar = ProgressBar::with_draw_target(None, target);
            bar.set_style(
                ProgressStyle::with_template("{msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            set_active(Some(bar.clone()));
            LiveView::spawn(Duration::from_secs(1), move || {
                bar.set_message(table(&control.snapshot()));
            })
        } else if let Some(every) = status_every {
            let started = Instant::now();
            let mut first = true;
            LiveView::spawn(every, move || {
                // The first tick is at start: nothing to say yet.
                if std::mem::take(&mut first) {
                    return;
                }
                let clients = control.snapshot();
                if !clients.is_empty() {
                    tracing::info!(
                        target: "loadmon::status",
                        "[{:.0} s] {}",
                        started.elapsed().as_secs_f64(),
                        summary(&clients)
                    );
                }
            })
        } else {
            LiveView::inert()
        }
    }

    /// A view that shows nothing.
    fn inert() -> LiveView {
        LiveView {
            stop: Arc::new((Mutex::new(true), Condvar::new())),
            thread: None,
        }
    }

    /// A progress bar of a client's run time with MB/s, on stderr if it is a terminal.
    pub fn client(progress: Progress) -> LiveView {
        let target = ProgressDrawTarget::stderr();
        if !std::io::stderr().is_terminal() || target.is_hidden() {
            return LiveView::inert();
        }
        let bar = ProgressBar::with_draw_target(Some(1000), target);
        bar.set_style(
            ProgressStyle::with_template("client {prefix} [{bar:40}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        set_active(Some(bar.clone()));
        LiveView::spawn(Duration::from_millis(250), move || {
            let Some(p) = progress.get() else {
                bar.set_message("connecting…");
                return;
            };
            bar.set_prefix(p.client_id.to_string());
            if let Some(rt) = p.run_time.filter(|r| !r.is_zero()) {
                let frac = (p.elapsed.as_secs_f64() / rt.as_secs_f64()).min(1.0);
                bar.set_position((frac * 1000.0) as u64);
            }
            bar.set_message(format!(
                "{:.0}/{} s  {} file(s)  {:.1} MB/s",
                p.elapsed.as_secs_f64(),
                p.run_time
                    .map_or_else(|| "?".into(), |r| format!("{:.0}", r.as_secs_f64())),
                p.files_written,
                p.throughput_mb_s()
            ));
        })
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let bar = ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: u32, status: Status) -> ClientReport {
        let json = format!(
            r#"{{"id":{id},"status":"{status}","time_ran_s":3.25,"cpu_avg_pct":1.0,"mem_avg_pct":0.5,
            "files_written":4,"file_size_mb":2,"chunk_size_mb":1,"heartbeats":3,"stats_reports":2,
            "bytes_written":8388608,"throughput_mb_s":2.46,"reason":null,"peer":null,
            "protocol_version":"1.0","start_time":null,"end_time":null,"cpu_core_avg_pct":null,
            "rss_avg_bytes":null,"rss_peak_bytes":null,"chunk_p50_ms":null,"chunk_p99_ms":null,
            "last_heartbeat_age_s":0.4,"cpu_last_pct":12.5,"rss_last_bytes":10485760}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn table_has_a_row_per_client_running_first() {
        let t = table(&[client(100, Status::Pass), client(101, Status::Running)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[1].trim_start().starts_with("101  RUNNING"), "{t}");
        assert!(lines[1].contains("12.5") && lines[1].contains("10.0") && lines[1].contains("0.4"));
        assert!(lines[2].trim_start().starts_with("100  PASS"));
        assert!(
            lines[3].starts_with("2 client(s): 1 running, 1 pass"),
            "{t}"
        );
    }

    #[test]
    fn table_is_bounded() {
        let many: Vec<ClientReport> = (0..100).map(|i| client(i, Status::Running)).collect();
        let t = table(&many);
        assert_eq!(t.lines().count(), 1 + MAX_ROWS + 2);
        assert!(t.contains("70 more client(s)"));
    }
}
