//! `--json-stream`: every event of a server's run as one JSON line, on a thread of its own, to
//! stdout, a file, or a FIFO (which may get its reader late).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loadmon::blocking::{EventPoll, Events};
use loadmon::events::{Event, EventKind, EventStream};
use loadmon::text::escape_control;
use loadmon::Error;

/// Where `--json-stream` writes, as first opened (without blocking).
pub(crate) enum StreamTarget {
    /// `-`.
    Stdout,
    /// A regular file, created (truncated).
    File(std::fs::File),
    /// Anything else (a FIFO with a reader, a terminal), opened without blocking; the
    /// writer's thread makes its writes ordinary (blocking) ones.
    Special(std::fs::File),
    /// A FIFO that no reader has opened yet.
    NoReader(PendingFifo),
}

impl StreamTarget {
    /// Opens `path` without ever blocking (a FIFO without a reader is [`StreamTarget::NoReader`]).
    ///
    /// # Errors
    /// [`Error::File`] if `path` cannot be opened for writing.
    pub(crate) fn open(path: &Path) -> Result<StreamTarget, Error> {
        if path == Path::new("-") {
            return Ok(StreamTarget::Stdout);
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Opening a FIFO for writing blocks until a reader opens it; with O_NONBLOCK it
            // fails with ENXIO instead.
            options.custom_flags(libc::O_NONBLOCK);
        }
        let file = match options.open(path) {
            Ok(f) => f,
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                return PendingFifo::find(path)
                    .map(StreamTarget::NoReader)
                    .map_err(|e| Error::file("open the JSON stream", path, e))
            }
            Err(e) => return Err(Error::file("create the JSON stream", path, e)),
        };
        match file.metadata() {
            // O_NONBLOCK means nothing for a regular file's writes.
            Ok(m) if m.is_file() => Ok(StreamTarget::File(file)),
            _ => Ok(StreamTarget::Special(file)),
        }
    }

    /// A writer for the stream, `None` while a FIFO has no reader. Called on the writer's
    /// thread only.
    fn writer(self) -> std::io::Result<Option<Box<dyn Write + Send>>> {
        Ok(match self {
            StreamTarget::Stdout => Some(Box::new(std::io::stdout())),
            StreamTarget::File(f) => Some(Box::new(f)),
            StreamTarget::Special(f) => {
                blocking_writes(&f)?;
                Some(Box::new(f))
            }
            StreamTarget::NoReader(_) => None,
        })
    }
}

/// Makes the writes of a file opened with O_NONBLOCK ordinary ones (a FIFO whose reader is
/// slow then makes the writer wait, as a file does).
fn blocking_writes(f: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(f)?;
    rustix::fs::fcntl_setfl(f, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// A `--json-stream` FIFO that no reader had opened at the start: its directory (opened then)
/// and name, and which file it was. It is tried again there, never through a link put at the
/// name since, and only while it is the same FIFO.
pub(crate) struct PendingFifo {
    dir: std::os::fd::OwnedFd,
    name: std::ffi::OsString,
    found: rustix::fs::Stat,
}

impl PendingFifo {
    fn find(path: &Path) -> std::io::Result<PendingFifo> {
        use rustix::fs::{AtFlags, Mode, OFlags};
        let real = std::fs::canonicalize(path)?;
        let name = real
            .file_name()
            .ok_or_else(|| std::io::Error::other("not a file path"))?
            .to_os_string();
        let dir = rustix::fs::open(
            real.parent().unwrap_or(Path::new("/")),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let found = rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(PendingFifo { dir, name, found })
    }

    /// The FIFO, for ordinary writes, once a reader has opened it; `None` until then.
    fn open(&self) -> std::io::Result<Option<std::fs::File>> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.dir, &self.name, flags, Mode::empty()) {
            Err(rustix::io::Errno::NXIO) => Ok(None),
            Err(e) => Err(e.into()),
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd)?;
                if (st.st_dev, st.st_ino) != (self.found.st_dev, self.found.st_ino) {
                    return Err(std::io::Error::other(
                        "the FIFO was replaced during the run (the new file is not written)",
                    ));
                }
                blocking_writes(&fd)?;
                Ok(Some(std::fs::File::from(fd)))
            }
        }
    }
}

/// Writes every event of `events` as a JSON line to `target` (`path` "-": stdout), flushed at
/// once, on a thread of its own: a slow reader makes the stream lag (it then says how many
/// events it missed), never the server. A FIFO that no reader has opened yet is tried again
/// every 200 ms; until then events are dropped (a warning says so, and the first line the
/// reader gets is a `lagged` event with their number). A write error (full disk, reader gone)
/// is logged once and ends the stream.
pub(crate) fn json_stream(
    path: PathBuf,
    target: StreamTarget,
    events: EventStream,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let name = escape_control(&path.display().to_string()).into_owned();
    let events = Events::new(events)?;
    if matches!(target, StreamTarget::NoReader(_)) {
        tracing::warn!(
            "JSON stream {name}: no reader has opened this FIFO yet; events are dropped until one does"
        );
    }
    std::thread::Builder::new()
        .name("loadmon-json-stream".into())
        .spawn(move || {
            let (out, fifo) = match target {
                StreamTarget::NoReader(fifo) => (None, Some(fifo)),
                target => match target.writer() {
                    Ok(w) => (w, None),
                    Err(err) => {
                        tracing::warn!("JSON stream {name}: {err}; no events are written");
                        return;
                    }
                },
            };
            let mut stream = Stream {
                name,
                path,
                out,
                fifo,
                dropped: 0,
            };
            stream.pump(events);
        })
        .map_err(|e| Error::Internal(format!("cannot start the JSON stream thread: {e}")))
}

/// The writer's side of a JSON stream, on its thread.
struct Stream {
    /// The path as given, escaped, for messages.
    name: String,
    /// The path as given.
    path: PathBuf,
    /// Where lines go; `None` while the FIFO has no reader.
    out: Option<Box<dyn Write + Send>>,
    /// The FIFO that had no reader at the start, tried again while `out` is `None`.
    fifo: Option<PendingFifo>,
    /// Events dropped while nobody read.
    dropped: u64,
}

/// The stream is over: a write or an open failed (said in the log).
struct Ended;

impl Stream {
    /// Writes every event until the stream ends or a write fails.
    fn pump(&mut self, mut events: Events) {
        loop {
            // While waiting for a reader, wake up now and then to try again.
            let wait = self.out.is_none().then(|| Duration::from_millis(200));
            let event = match events.next_timeout(wait) {
                EventPoll::Event(e) => Some(e),
                EventPoll::Timeout => None,
                EventPoll::Ended => break,
            };
            if self.look_for_reader(event.as_deref()).is_err() {
                return;
            }
            let Some(event) = event else { continue };
            match self.out.as_mut() {
                Some(w) => {
                    if let Err(err) = write_line(w, &event) {
                        self.stop(&err);
                        return;
                    }
                }
                None => self.dropped += 1,
            }
        }
        if self.out.is_none() {
            tracing::warn!(
                "JSON stream {}: no reader ever opened this FIFO; {} event(s), the final \
                 report included, were not written",
                self.name,
                self.dropped
            );
        }
    }

    /// While nobody reads the FIFO: opens it if a reader has come, and tells the reader how
    /// many events it missed (`event`: the one at hand, for the time).
    fn look_for_reader(&mut self, event: Option<&Event>) -> Result<(), Ended> {
        let (None, Some(fifo)) = (&self.out, &self.fifo) else {
            return Ok(());
        };
        match fifo.open() {
            Ok(Some(f)) => {
                let mut w: Box<dyn Write + Send> = Box::new(f);
                tracing::info!("JSON stream {}: a reader opened it", self.name);
                if self.dropped > 0 {
                    let lagged = Event {
                        time: chrono::Local::now().to_rfc3339(),
                        elapsed_s: event.map_or(0.0, |e| e.elapsed_s),
                        kind: EventKind::Lagged {
                            missed: self.dropped,
                        },
                    };
                    if let Err(err) = write_line(&mut w, &lagged) {
                        self.stop(&err);
                        return Err(Ended);
                    }
                    self.dropped = 0;
                }
                self.out = Some(w);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(err) => {
                self.stop(&Error::file("open the JSON stream", &self.path, err));
                Err(Ended)
            }
        }
    }

    /// Says why no more events are written.
    fn stop(&self, err: &dyn std::fmt::Display) {
        tracing::warn!(
            "JSON stream {}: {err}; no more events are written",
            self.name
        );
    }
}

fn write_line(out: &mut Box<dyn Write + Send>, event: &Event) -> std::io::Result<()> {
    out.write_all(event.to_json_line().as_bytes())
        .and_then(|()| out.flush())
}
