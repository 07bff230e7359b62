//! Checks shared by the server's and the client's settings.

use crate::error::{Error, Result};

/// Smallest line bound a peer may be configured with (the longest seed line fits easily).
pub const MIN_LINE_BYTES: usize = 64;

/// The settings both ends of a connection have: the line bound and the optional token.
///
/// # Errors
/// [`Error::Config`] naming the bad setting.
pub(crate) fn check_wire(max_line_bytes: usize, token: Option<&str>) -> Result<()> {
    if max_line_bytes < MIN_LINE_BYTES {
        return Err(Error::Config(format!(
            "max_line_bytes must be at least {MIN_LINE_BYTES}"
        )));
    }
    if matches!(token, Some(t) if t.is_empty() || t.contains(['\n', '\r'])) {
        return Err(Error::Config(
            "token must be non-empty and on one line".into(),
        ));
    }
    Ok(())
}
