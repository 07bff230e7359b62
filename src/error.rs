//! The library's one error type.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::connection::FrameError;
use crate::protocol::ProtocolError;

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
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Net {
        /// What was being done, with the address.
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
    /// A bug: an invariant did not hold. Please report it.
    #[error("internal error: {0}")]
    Internal(String),
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

    /// Whether this is a configuration error (the CLI exits 2 for those).
    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config(_))
    }

    pub(crate) fn from_frame(e: FrameError, context: &str) -> Self {
        match e {
            FrameError::Io(e) => Error::net(context, e),
            FrameError::Protocol(p) => Error::Protocol(p),
        }
    }
}
