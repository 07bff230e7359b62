//! Text that came from a peer, made safe for a terminal, a log line or the text report.
//!
//! A peer controls the reason in `error:<reason>` and `refused:<reason>`; printed raw, an escape
//! sequence in it would reach the operator's terminal (retitle it, hide lines, fake output).
//! [`escape_control`] keeps printable text as it is and writes every control character (C0, DEL,
//! C1, and the Unicode bidirectional overrides) as a visible `\u{..}` escape. The JSON report
//! keeps the text exact; only what a human reads is escaped.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal raw.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// `s` with every control character written as a visible escape (`\n` → `\u{a}`, ESC →
/// `\u{1b}`); borrowed when nothing needs escaping.
///
/// # Examples
/// ```
/// use loadmon::text::escape_control;
///
/// assert_eq!(escape_control("disk full"), "disk full");
/// assert_eq!(escape_control("\x1b]0;pwned\x07ok"), "\\u{1b}]0;pwned\\u{7}ok");
/// ```
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_borrowed_and_controls_are_visible() {
        assert!(matches!(escape_control("état 100 %"), Cow::Borrowed(_)));
        assert_eq!(escape_control("a\r\nb\tc"), "a\\u{d}\\u{a}b\\u{9}c");
        assert_eq!(escape_control("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape_control("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_control("\x7f"), "\\u{7f}");
    }
}
