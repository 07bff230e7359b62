//! The wire's leaf error types: [`ProtocolError`] (a line that is not a message, or a broken
//! frame) and [`FrameError`] (reading or writing lines). They import nothing of the crate, so
//! the protocol, the connection and every codec of a workload's settings can use them.

use std::io;

/// Why a line could not be turned into a [`Message`](crate::protocol::Message) (or read at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The line was empty.
    #[error("empty line")]
    Empty,
    /// The command is not one loadmon knows.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// The command had the wrong number of fields.
    #[error("{command}: expected {expected} field(s), got {got}")]
    WrongFieldCount {
        /// The command.
        command: &'static str,
        /// Fields expected, the command included.
        expected: usize,
        /// Fields received.
        got: usize,
    },
    /// An argument was not valid for its command.
    #[error("{command}: invalid {field} {value:?}: {reason}")]
    InvalidArgument {
        /// The command.
        command: &'static str,
        /// Which argument.
        field: &'static str,
        /// The value received (cut to 64 bytes).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A line exceeded the configured maximum length.
    #[error("line longer than {max_bytes} bytes")]
    LineTooLong {
        /// The bound in force.
        max_bytes: usize,
    },
    /// A line was not valid UTF-8.
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    /// The peer closed the connection in the middle of a line.
    #[error("connection closed in the middle of a line")]
    Truncated,
    /// The handshake did not authenticate the peer: a server that did not prove it knows the
    /// token, or that offers no challenge–response to a client that may not send it in clear.
    #[error("authentication failed: {0}")]
    Auth(String),
}

/// How many bytes of a bad value a [`ProtocolError::InvalidArgument`] keeps.
pub const MAX_SHOWN_VALUE_BYTES: usize = 64;

impl ProtocolError {
    /// A [`ProtocolError::InvalidArgument`]: `field` of `command` is `value`, wrong because of
    /// `reason`; the value is cut to [`MAX_SHOWN_VALUE_BYTES`] (on a character boundary).
    pub fn invalid(
        command: &'static str,
        field: &'static str,
        value: &str,
        reason: &'static str,
    ) -> ProtocolError {
        ProtocolError::InvalidArgument {
            command,
            field,
            value: truncate(value, MAX_SHOWN_VALUE_BYTES),
            reason,
        }
    }

    /// `Ok` if `command` has `expected` fields (itself included), else a
    /// [`ProtocolError::WrongFieldCount`].
    ///
    /// # Errors
    /// [`ProtocolError::WrongFieldCount`] if `got` is not `expected`.
    pub fn expect_fields(
        command: &'static str,
        got: usize,
        expected: usize,
    ) -> Result<(), ProtocolError> {
        if got == expected {
            Ok(())
        } else {
            Err(ProtocolError::WrongFieldCount {
                command,
                expected,
                got,
            })
        }
    }

    /// The command the bad line had, when the line got that far.
    pub fn command(&self) -> Option<&str> {
        match self {
            ProtocolError::WrongFieldCount { command, .. }
            | ProtocolError::InvalidArgument { command, .. } => Some(command),
            ProtocolError::UnknownCommand(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the error ends the connection (framing broke) rather than one line.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProtocolError::LineTooLong { .. }
                | ProtocolError::InvalidUtf8
                | ProtocolError::Truncated
        )
    }
}

/// The first `max` bytes of `s` at most, cut on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// An error while reading or writing lines.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The peer broke the framing (fatal for that peer).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_errors_are_framing_errors() {
        assert!(ProtocolError::InvalidUtf8.is_fatal());
        assert!(ProtocolError::LineTooLong { max_bytes: 1 }.is_fatal());
        assert!(!ProtocolError::Empty.is_fatal());
        assert!(!ProtocolError::UnknownCommand("x".into()).is_fatal());
    }

    #[test]
    fn a_shown_value_is_cut_on_a_character_boundary() {
        let e = ProtocolError::invalid("c", "f", &"é".repeat(40), "bad");
        let ProtocolError::InvalidArgument { value, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(value.len(), 64);
        assert_eq!(e.command(), Some("c"));
        assert_eq!(
            ProtocolError::expect_fields("c", 2, 3),
            Err(ProtocolError::WrongFieldCount {
                command: "c",
                expected: 3,
                got: 2
            })
        );
    }
}
