//! The library's one error type, and the wire's leaf error types it wraps ([`ProtocolError`],
//! [`FrameError`], in `error/wire.rs`). A leaf: it imports nothing of the crate.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod wire;

pub(crate) use wire::truncate;
pub use wire::{FrameError, ProtocolError, MAX_SHOWN_VALUE_BYTES};

/// Everything that can go wrong in loadmon. Cloneable so that a stored result (a server's final
/// report, say) can be handed out more than once.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid (exit code 2 in the CLI).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file or directory operation failed.
    #[error("{op} {}: {source}", path.display())]
    File {
        /// What was being done ("create", "write", "fsync", …).
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A socket operation failed: the server could not be reached, or the connection broke.
    #[error("{context}: {source}")]
    Net {
        /// What was being done, with the address.
        context: String,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A listening address could not be bound: the port is in use, binding it is not
    /// permitted, or no socket could be made (file descriptors exhausted). Not a connection
    /// failure: nothing was being reached.
    #[error("{context}: {source}")]
    Bind {
        /// What was being bound, with the address (`"bind 127.0.0.1:1234"`).
        context: String,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The peer broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer speaks another major protocol version.
    #[error("protocol version mismatch: we speak {ours}, the peer speaks {theirs}")]
    VersionMismatch {
        /// Our version, `major.minor`.
        ours: String,
        /// The peer's version, `major.minor`.
        theirs: String,
    },
    /// The server refused this client (`refused:<reason>`).
    #[error("refused by the server: {0}")]
    Refused(String),
    /// The connection ended before the exchange was complete.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The workload reported a failure.
    #[error("workload failed: {0}")]
    Workload(String),
    /// The operation was interrupted (Ctrl-C, stop requested).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A call does not fit the handle's state (start twice, join before start, a workload's
    /// context used after its run).
    #[error("{0}")]
    State(String),
    /// A bug: an invariant did not hold, or a thread of the engine panicked. Please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What kind of error an [`Error`] is: the one mapping a face needs (a Python exception class,
/// a C status code, a CLI exit code). Exhaustive on purpose: a new kind must be handled by every
/// face, which a wildcard arm would hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// [`Error::Config`].
    Config,
    /// [`Error::File`].
    File,
    /// [`Error::Net`].
    Net,
    /// [`Error::Bind`].
    Bind,
    /// [`Error::Protocol`].
    Protocol,
    /// [`Error::VersionMismatch`].
    VersionMismatch,
    /// [`Error::Refused`].
    Refused,
    /// [`Error::Disconnected`].
    Disconnected,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::Workload`].
    Workload,
    /// [`Error::Interrupted`].
    Interrupted,
    /// [`Error::State`].
    State,
    /// [`Error::Internal`].
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Config,
        ErrorKind::File,
        ErrorKind::Net,
        ErrorKind::Bind,
        ErrorKind::Protocol,
        ErrorKind::VersionMismatch,
        ErrorKind::Refused,
        ErrorKind::Disconnected,
        ErrorKind::Timeout,
        ErrorKind::Workload,
        ErrorKind::Interrupted,
        ErrorKind::State,
        ErrorKind::Internal,
    ];

    /// A short lower-case name (`"config"`, `"version_mismatch"`, …).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::File => "file",
            ErrorKind::Net => "net",
            ErrorKind::Bind => "bind",
            ErrorKind::Protocol => "protocol",
            ErrorKind::VersionMismatch => "version_mismatch",
            ErrorKind::Refused => "refused",
            ErrorKind::Disconnected => "disconnected",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Workload => "workload",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::State => "state",
            ErrorKind::Internal => "internal",
        }
    }

    /// The CLI's exit code for this kind: 2 for a configuration error (a usage error, as
    /// clap's), 130 for an interruption (128 + SIGINT), 1 otherwise.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Config => 2,
            ErrorKind::Interrupted => 130,
            ErrorKind::File
            | ErrorKind::Net
            | ErrorKind::Bind
            | ErrorKind::Protocol
            | ErrorKind::VersionMismatch
            | ErrorKind::Refused
            | ErrorKind::Disconnected
            | ErrorKind::Timeout
            | ErrorKind::Workload
            | ErrorKind::State
            | ErrorKind::Internal => 1,
        }
    }
}

/// Shorthand for `Result<T, loadmon::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::File`] for `op` on `path`.
    pub fn file(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::File {
            op,
            path: path.as_ref().to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// A [`Error::Net`] with a context such as `"connect 127.0.0.1:1234"`.
    pub fn net(context: impl Into<String>, source: io::Error) -> Self {
        Error::Net {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// A [`Error::Bind`] with a context such as `"bind 127.0.0.1:1234"`.
    pub fn bind(context: impl Into<String>, source: io::Error) -> Self {
        Error::Bind {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The operating system's error behind a [`Error::File`], [`Error::Net`] or
    /// [`Error::Bind`]; `None` for the other kinds.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::File { source, .. } | Error::Net { source, .. } | Error::Bind { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }

    /// The OS error code (`errno`) behind this error, when the operating system gave one.
    ///
    /// ```
    /// use loadmon::Error;
    /// let e = Error::file("write", "/data/f", std::io::Error::from_raw_os_error(28));
    /// assert_eq!(e.raw_os_error(), Some(28)); // ENOSPC on Linux
    /// assert_eq!(Error::Config("x".into()).raw_os_error(), None);
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error().and_then(io::Error::raw_os_error)
    }

    /// The operating system's description of the error behind this one (`strerror`: "No
    /// space left on device"), or the description of an error without a code; `None` for the
    /// kinds without an OS error.
    ///
    /// ```
    /// use loadmon::Error;
    /// let e = Error::file("write", "/data/f", std::io::Error::from_raw_os_error(28));
    /// assert_eq!(e.os_message().as_deref(), Some("No space left on device"));
    /// ```
    pub fn os_message(&self) -> Option<String> {
        let e = self.io_error()?;
        let text = e.to_string();
        // std writes an OS error as "<strerror> (os error <code>)".
        Some(match e.raw_os_error() {
            Some(code) => text
                .strip_suffix(&format!(" (os error {code})"))
                .map_or_else(|| text.clone(), str::to_string),
            None => text,
        })
    }

    /// The path a [`Error::File`] is about; `None` for the other kinds.
    ///
    /// ```
    /// use loadmon::Error;
    /// let e = Error::file("create", "/data/f", std::io::Error::from_raw_os_error(13));
    /// assert_eq!(e.path(), Some(std::path::Path::new("/data/f")));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Whether this is a configuration error (the CLI exits 2 for those).
    pub fn is_config(&self) -> bool {
        self.kind() == ErrorKind::Config
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::File { .. } => ErrorKind::File,
            Error::Net { .. } => ErrorKind::Net,
            Error::Bind { .. } => ErrorKind::Bind,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::VersionMismatch { .. } => ErrorKind::VersionMismatch,
            Error::Refused(_) => ErrorKind::Refused,
            Error::Disconnected(_) => ErrorKind::Disconnected,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Workload(_) => ErrorKind::Workload,
            Error::Interrupted(_) => ErrorKind::Interrupted,
            Error::State(_) => ErrorKind::State,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The error for a panic caught at a boundary (`what` says where), with the panic's
    /// message when it has one.
    pub fn from_panic(what: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        Error::Internal(match msg {
            Some(m) => format!("{what} panicked: {m}"),
            None => format!("{what} panicked"),
        })
    }

    /// The error for a [`FrameError`]: [`Error::Net`] with `context` for the socket's,
    /// [`Error::Protocol`] for a broken frame.
    pub(crate) fn from_frame(e: FrameError, context: &str) -> Self {
        match e {
            FrameError::Io(e) => Error::net(context, e),
            FrameError::Protocol(p) => Error::Protocol(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_keeps_its_code_text_and_path() {
        let e = Error::file("write", "/d/f", io::Error::from_raw_os_error(28));
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(e.os_message().as_deref(), Some("No space left on device"));
        assert_eq!(e.path(), Some(Path::new("/d/f")));
        assert_eq!(
            e.to_string(),
            "write /d/f: No space left on device (os error 28)"
        );
        let b = Error::bind("bind 127.0.0.1:1", io::Error::from_raw_os_error(98));
        assert_eq!(
            (b.kind(), b.raw_os_error(), b.path()),
            (ErrorKind::Bind, Some(98), None)
        );
        let custom = Error::net("connect x", io::Error::other("gave up"));
        assert_eq!(custom.raw_os_error(), None);
        assert_eq!(custom.os_message().as_deref(), Some("gave up"));
        assert_eq!(Error::Config("c".into()).os_message(), None);
    }

    #[test]
    fn every_kind_is_listed_once_with_a_distinct_name() {
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::Bind.exit_code(), 1);
    }
}
