//! The JSON report: every field of the report's types, exact.

use std::path::Path;

use super::types::Report;
use crate::error::{Error, Result};
use crate::out_file::write_atomic;

impl Report {
    /// The JSON report (pretty-printed).
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail (no maps with non-string keys, no
        // non-finite floats: every float is computed from checked input).
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Parses a JSON report.
    ///
    /// # Errors
    /// [`Error::Config`] if the text is not a report.
    pub fn from_json(text: &str) -> Result<Report> {
        serde_json::from_str(text).map_err(|e| Error::Config(format!("not a loadmon report: {e}")))
    }

    /// Writes the JSON report to `path` atomically (temporary file in the same directory,
    /// fsync, rename), so a reader never sees half a report.
    ///
    /// # Errors
    /// [`Error::File`] with the path.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}
