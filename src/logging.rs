//! Session logs: every event goes to `tracing` (the CLI's console), to the log sink a face
//! installed ([`set_log_sink`]: a C callback through a [`LogDelivery`], Python's `logging`
//! through a queue), and, when a log directory is set, to a per-session file named as the seed
//! named it (`server_logs/server_log_<YYYY-mm-dd_HH.MM.SS>.txt`, `client_logs/client_log_<…>.txt`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

mod delivery;
pub use delivery::{LogDelivery, DROPPED_TARGET, LOG_DRAIN, LOG_QUEUE_CAPACITY};

/// The seed's directory for a server's session log files: the CLI's `--log-dir` default, and
/// the demo's under its own log directory.
pub const SERVER_LOG_DIR: &str = "server_logs";
/// The seed's directory for a client's session log files: the CLI's `--log-dir` default for
/// `loadmon client` and `loadmon worker`, and the demo's under its own log directory.
pub const CLIENT_LOG_DIR: &str = "client_logs";

/// Severity of a record handed to the log sink (ordered: `Debug < Info < Warn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Per-message details (every heartbeat): off unless the sink asks for them.
    Debug = 1,
    /// Progress: a client connected, got an id, finished; the report's lines.
    Info = 2,
    /// Something went wrong with a peer or a file.
    Warn = 3,
}

/// One log record, as the sink receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord<'a> {
    /// Severity.
    pub level: LogLevel,
    /// Where it comes from: `loadmon::server`, `loadmon::client` or `loadmon::report` (a line
    /// of the final text report).
    pub target: &'static str,
    /// The message, control characters escaped: one line, except for the final text report,
    /// which comes as one record (target `loadmon::report`) of several lines.
    pub message: &'a str,
}

/// A function that receives log records. It is called on the engine's threads, so it must not
/// block for long nor wait for anything the caller of the engine holds (Python's GIL): queue
/// the record and return.
pub type LogSink = Arc<dyn Fn(&LogRecord<'_>) + Send + Sync>;

static SINK: RwLock<Option<(LogLevel, LogSink)>> = RwLock::new(None);
/// The sink's level as a number (0: no sink), read on the hot path without the lock.
static SINK_LEVEL: AtomicU8 = AtomicU8::new(0);

/// Installs `sink` for every server and client of this process, receiving records at `level`
/// and above (`None` removes it). Records also go to `tracing` as before.
///
/// # Examples
/// ```
/// use std::sync::{Arc, Mutex};
/// use loadmon::logging::{set_log_sink, LogLevel};
///
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let l = lines.clone();
/// set_log_sink(Some((LogLevel::Info, Arc::new(move |r| l.lock().unwrap().push((r.target, r.message.to_string()))))));
/// let server = loadmon::blocking::ServerHandle::start(loadmon::server::ServerConfig {
///     port: 0,
///     ..Default::default()
/// })
/// .unwrap();
/// server.stop().unwrap();
/// set_log_sink(None);
/// // The final text report arrives as one record.
/// let lines = lines.lock().unwrap();
/// let report: Vec<_> = lines.iter().filter(|(t, _)| *t == "loadmon::report").collect();
/// assert_eq!(report.len(), 1);
/// assert!(report[0].1.contains('\n'));
/// ```
pub fn set_log_sink(sink: Option<(LogLevel, LogSink)>) {
    // Never an unbounded wait: in a child made by fork() the lock may be held by a thread that
    // does not exist there, and would never be released. The lock is otherwise held only for
    // an `Arc` clone, so a change waits microseconds; past the bound it is not made (only a
    // forked child can get there, and it then keeps the sink it inherited).
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    loop {
        let mut g = match SINK.try_write() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                if std::time::Instant::now() >= deadline {
                    return;
                }
                std::thread::yield_now();
                continue;
            }
        };
        SINK_LEVEL.store(
            sink.as_ref().map_or(0, |(l, _)| *l as u8),
            Ordering::Release,
        );
        *g = sink;
        return;
    }
}

fn sink_wants(level: LogLevel) -> bool {
    let l = SINK_LEVEL.load(Ordering::Acquire);
    l != 0 && level as u8 >= l
}

fn to_sink(level: LogLevel, target: &'static str, message: &str) {
    if !sink_wants(level) {
        return;
    }
    // Never waits: a record that meets a sink being changed (or, in a forked child, a lock
    // held by a thread that is not there) is dropped rather than blocking the engine.
    let sink = match SINK.try_read() {
        Ok(g) => g.as_ref().map(|(_, s)| s.clone()),
        Err(std::sync::TryLockError::Poisoned(p)) => {
            p.into_inner().as_ref().map(|(_, s)| s.clone())
        }
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    if let Some(sink) = sink {
        // A sink that panics must not take the engine down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sink(&LogRecord {
                level,
                target,
                message,
            })
        }));
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    /// A line of the final report (target `loadmon::report`, so that a console that prints the
    /// report itself can filter these out).
    Report,
}

/// Names tried for one session's log file (`<base>.txt`, then `<base>_2.txt`, …) before giving up.
const LOG_NAMES: u32 = 1000;

/// Creates the log file `<base>.txt` in `dir`, or `<base>_<n>.txt` if that name is taken: two
/// sessions in the same second (tests, the demo) must not share a file. The file is always a
/// new regular file, opened append-only: an existing name of any kind (a file, a symbolic link,
/// even a dangling one, a FIFO: something planted in a shared log directory) is never opened
/// nor followed (`O_CREAT|O_EXCL|O_NOFOLLOW`), only skipped.
pub(crate) fn create_log_file(dir: &Path, base: &str) -> Result<(PathBuf, File)> {
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    for n in 1..=LOG_NAMES {
        let path = if n == 1 {
            dir.join(format!("{base}.txt"))
        } else {
            dir.join(format!("{base}_{n}.txt"))
        };
        match opts.open(&path) {
            Ok(f) => {
                return match f.metadata() {
                    Ok(m) if m.is_file() => Ok((path, f)),
                    Ok(_) => Err(Error::file(
                        "create",
                        &path,
                        std::io::Error::other("not a regular file"),
                    )),
                    Err(e) => Err(Error::file("stat", &path, e)),
                };
            }
            // Taken (ELOOP: a link, should O_EXCL ever let one through): the next name.
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    || e.raw_os_error() == Some(libc::ELOOP) => {}
            Err(e) => return Err(Error::file("create", &path, e)),
        }
    }
    Err(Error::file(
        "create",
        dir.join(format!("{base}_{LOG_NAMES}.txt")),
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("all {LOG_NAMES} names {base}[_<n>].txt are taken"),
        ),
    ))
}

/// A log that writes to `tracing` and optionally to a file.
#[derive(Debug)]
pub(crate) struct EventLog {
    role: &'static str,
    file: Option<(PathBuf, Mutex<BufWriter<File>>)>,
}

impl EventLog {
    /// `role` is `"server"` or `"client"`; with `dir`, a file `<role>_log_<time>.txt` in it.
    pub(crate) fn open(role: &'static str, dir: Option<&Path>) -> Result<EventLog> {
        let file = match dir {
            None => None,
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::file("create directory", dir, e))?;
                let stamp = chrono::Local::now().format("%Y-%m-%d_%H.%M.%S");
                let (path, f) = create_log_file(dir, &format!("{role}_log_{stamp}"))?;
                Some((path, Mutex::new(BufWriter::new(f))))
            }
        };
        Ok(EventLog { role, file })
    }

    /// The log file's path, if any.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// Logs `msg`; control characters in it (peer text: an `error:` reason, a bad line) are
    /// written as visible escapes, so no log line can drive a terminal or forge another line.
    pub(crate) fn log(&self, level: Level, msg: &str) {
        let msg = crate::text::escape_control(msg);
        let msg = msg.as_ref();
        let target = match (self.role, level) {
            (_, Level::Report) => "loadmon::report",
            ("server", _) => "loadmon::server",
            _ => "loadmon::client",
        };
        let sink_level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info | Level::Report => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
        };
        if level != Level::Report {
            to_sink(sink_level, target, msg);
        }
        match (self.role, level) {
            ("server", Level::Debug) => tracing::debug!(target: "loadmon::server", "{msg}"),
            ("server", Level::Info) => tracing::info!(target: "loadmon::server", "{msg}"),
            ("server", Level::Warn) => tracing::warn!(target: "loadmon::server", "{msg}"),
            (_, Level::Report) => tracing::info!(target: "loadmon::report", "{msg}"),
            (_, Level::Debug) => tracing::debug!(target: "loadmon::client", "{msg}"),
            (_, Level::Info) => tracing::info!(target: "loadmon::client", "{msg}"),
            (_, Level::Warn) => tracing::warn!(target: "loadmon::client", "{msg}"),
        }
        if level == Level::Debug {
            return;
        }
        if let Some((_, f)) = &self.file {
            let tag = match level {
                Level::Debug => "DEBUG", // not reached: debug lines stay out of the file
                Level::Info | Level::Report => "INFO",
                Level::Warn => "WARNING",
            };
            let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f");
            if let Ok(mut w) = f.lock() {
                // A full disk must not stop the test: the console still has the line.
                let _ = writeln!(w, "{now} {tag} {msg}");
                let _ = w.flush();
            }
        }
    }

    /// A debug line, formatted only if someone listens: these are per-message lines (every
    /// heartbeat), on the hot path. They go to `tracing` only, not to the session file.
    pub(crate) fn debug(&self, msg: impl FnOnce() -> String) {
        let enabled = sink_wants(LogLevel::Debug)
            || match self.role {
                "server" => tracing::enabled!(target: "loadmon::server", tracing::Level::DEBUG),
                _ => tracing::enabled!(target: "loadmon::client", tracing::Level::DEBUG),
            };
        if enabled {
            self.log(Level::Debug, &msg());
        }
    }

    /// The final text report: one record to the sink, a line at a time to `tracing` and the
    /// session file.
    pub(crate) fn report(&self, text: &str) {
        if sink_wants(LogLevel::Info) {
            let escaped: Vec<_> = text.lines().map(crate::text::escape_control).collect();
            to_sink(LogLevel::Info, "loadmon::report", &escaped.join("\n"));
        }
        for line in text.lines() {
            self.log(Level::Report, line);
        }
    }

    pub(crate) fn info(&self, msg: impl AsRef<str>) {
        self.log(Level::Info, msg.as_ref());
    }

    pub(crate) fn warn(&self, msg: impl AsRef<str>) {
        self.log(Level::Warn, msg.as_ref());
    }

    /// A warning about a line from the server that was ignored, within `budget`: a server
    /// sending junk (or flooding a waiting client) cannot fill the log or the disk; the next
    /// one logged says how many were not.
    pub(crate) fn warn_ignored(&self, budget: &mut WarnBudget, msg: impl AsRef<str>) {
        match budget.allow(Instant::now()) {
            Some(0) => self.warn(msg),
            Some(n) => self.warn(format!(
                "{} ({n} more lines from the server ignored and not logged)",
                msg.as_ref()
            )),
            None => {}
        }
    }

    /// Says how many lines from the server `budget` kept out of the log since the last one
    /// logged (at the end of a connection's phase), and starts counting again.
    pub(crate) fn ignored_summary(&self, budget: &mut WarnBudget) {
        let n = std::mem::take(&mut budget.suppressed);
        if n > 0 {
            self.warn(format!(
                "{n} more lines from the server ignored and not logged"
            ));
        }
    }
}

/// Lines about one peer (the server's about a client, a client's about its server): a burst,
/// then one per [`WARN_REFILL`]; the rest are counted. (A well-behaved client causes at most 5
/// information lines and no warning.)
pub(crate) const WARN_BURST: u32 = 8;
/// How often one more warning about a peer is allowed after the burst.
pub(crate) const WARN_REFILL: Duration = Duration::from_secs(10);

/// A token bucket for warnings about one peer, so that a peer sending junk cannot fill the
/// log: [`WARN_BURST`] warnings, then one per [`WARN_REFILL`], and the next one allowed says
/// how many were suppressed.
#[derive(Debug, Clone)]
pub(crate) struct WarnBudget {
    tokens: u32,
    refilled: Instant,
    suppressed: u64,
}

impl WarnBudget {
    pub(crate) fn new(now: Instant) -> Self {
        WarnBudget {
            tokens: WARN_BURST,
            refilled: now,
            suppressed: 0,
        }
    }

    /// `Some(n)` if a warning may be logged now (`n` were suppressed since the last one);
    /// `None` if this one must be suppressed (it is counted).
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.refilled);
        if elapsed >= WARN_REFILL {
            let periods = elapsed.as_secs_f64() / WARN_REFILL.as_secs_f64();
            let add = periods.min(f64::from(WARN_BURST)) as u32;
            self.tokens = (self.tokens + add).min(WARN_BURST);
            self.refilled = now;
        }
        if self.tokens == 0 {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Warnings suppressed and not yet reported.
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        if let Some((_, f)) = &self.file {
            if let Ok(mut w) = f.lock() {
                let _ = w.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_seed_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = EventLog::open("server", Some(dir.path())).unwrap();
        let b = EventLog::open("server", Some(dir.path())).unwrap();
        a.info("hello");
        a.debug(|| "details".into());
        let name = a
            .path()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            name.starts_with("server_log_") && name.ends_with(".txt"),
            "{name}"
        );
        assert_ne!(a.path(), b.path());
        drop(a);
        let text = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        assert!(text.contains("INFO hello"), "{text}");
        assert!(
            !text.contains("details"),
            "debug lines stay out of the file: {text}"
        );
    }

    /// Names `server_log_<stamp>[_n].txt` for every second from now to `secs` on.
    fn names_ahead(dir: &Path, suffix: &str, secs: i64) -> Vec<PathBuf> {
        let now = chrono::Local::now();
        (-1..=secs)
            .map(|d| {
                let stamp = (now + chrono::TimeDelta::seconds(d)).format("%Y-%m-%d_%H.%M.%S");
                dir.join(format!("server_log_{stamp}{suffix}.txt"))
            })
            .collect()
    }

    /// Opens a session log in `dir` on a thread, bounded: a blocked open fails the test.
    fn open_bounded(dir: &Path) -> EventLog {
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(EventLog::open("server", Some(&d)));
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the log file's open blocked")
            .unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_link_at_the_log_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("made_through_the_link");
        for name in names_ahead(dir.path(), "", 10) {
            std::os::unix::fs::symlink(&target, name).unwrap();
        }
        let log = open_bounded(dir.path());
        log.warn("peer text");
        let path = log.path().unwrap().to_path_buf();
        drop(log);
        assert!(!target.exists(), "a file was created through the link");
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert!(
            path.to_string_lossy().ends_with("_2.txt"),
            "{}",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("WARNING peer text"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_at_the_log_name_is_skipped_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        for suffix in ["", "_2"] {
            for name in names_ahead(dir.path(), suffix, 10) {
                let st = std::process::Command::new("mkfifo").arg(&name).status();
                assert!(st.unwrap().success());
            }
        }
        let log = open_bounded(dir.path());
        let path = log.path().unwrap().to_path_buf();
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert!(
            path.to_string_lossy().ends_with("_3.txt"),
            "{}",
            path.display()
        );
    }

    #[test]
    fn a_log_file_is_appended_to_never_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut f) = create_log_file(dir.path(), "x").unwrap();
        writeln!(f, "one").unwrap();
        // The name is taken now: the next session gets the next name, the first file stays.
        let (next, _) = create_log_file(dir.path(), "x").unwrap();
        assert_eq!(next, dir.path().join("x_2.txt"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
    }
}
