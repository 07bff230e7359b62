//! Session logs: every event goes to `tracing` (console, Python `logging`, …) and, when a log
//! directory is set, to a per-session file named as the seed named it
//! (`server_logs/server_log_<YYYY-mm-dd_HH.MM.SS>.txt`, `client_logs/client_log_<…>.txt`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

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
                let mut path = dir.join(format!("{role}_log_{stamp}.txt"));
                // Two sessions in the same second (tests, the demo) must not share a file.
                let mut n = 1;
                while path.exists() {
                    n += 1;
                    path = dir.join(format!("{role}_log_{stamp}_{n}.txt"));
                }
                let f = File::create(&path).map_err(|e| Error::file("create", &path, e))?;
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
        let enabled = match self.role {
            "server" => tracing::enabled!(target: "loadmon::server", tracing::Level::DEBUG),
            _ => tracing::enabled!(target: "loadmon::client", tracing::Level::DEBUG),
        };
        if enabled {
            self.log(Level::Debug, &msg());
        }
    }

    pub(crate) fn info(&self, msg: impl AsRef<str>) {
        self.log(Level::Info, msg.as_ref());
    }

    pub(crate) fn warn(&self, msg: impl AsRef<str>) {
        self.log(Level::Warn, msg.as_ref());
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
}
