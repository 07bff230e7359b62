//! `verify` and `vfind`: what a client's check of its written data found (`--verify
//! rollover|end`); loadmon's own lines, which a seed peer never sees.

use super::{invalid, parse_u64, Fields, ProtocolError};
use crate::verify::{ClassCounts, FindingClass};

/// The most `vfind` lines a client sends in a run (the first findings; the rest are counted
/// on the `verify` line only), and the most a server keeps of a client.
pub const MAX_FINDINGS_SENT: usize = 20;

/// The longest text of a `vfind` field (path, expected, found), bytes: a longer one is cut (on
/// a character boundary) by the sender.
pub const MAX_FINDING_TEXT_BYTES: usize = 1024;

/// `verify:<files>:<blocks>:<corrupt>:<stale>:<misdirected>:<torn>:<short>`: the client's
/// checks so far (cumulative): files checked, blocks checked, and bad blocks by class (short:
/// blocks missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Files checked so far.
    pub files_checked: u64,
    /// Blocks checked so far.
    pub blocks_checked: u64,
    /// Bad blocks so far, by class.
    pub errors: ClassCounts,
}

const V: &str = "verify";
const F: &str = "vfind";

impl VerifyStats {
    /// The line's fields after the command.
    pub(super) fn encode(&self, cmd: &str) -> String {
        let e = &self.errors;
        format!(
            "{cmd}:{}:{}:{}:{}:{}:{}:{}",
            self.files_checked,
            self.blocks_checked,
            e.corrupt,
            e.stale,
            e.misdirected,
            e.torn,
            e.short
        )
    }

    /// Parses the line's fields: 8, each an unsigned integer.
    pub(super) fn parse(f: &Fields<'_>) -> Result<VerifyStats, ProtocolError> {
        f.expect(V, 8)?;
        let mut args = f.rest().split(':');
        let mut next = |name| parse_u64(V, name, args.next().unwrap_or(""));
        Ok(VerifyStats {
            files_checked: next("files")?,
            blocks_checked: next("blocks")?,
            errors: ClassCounts {
                corrupt: next("corrupt")?,
                stale: next("stale")?,
                misdirected: next("misdirected")?,
                torn: next("torn")?,
                short: next("short")?,
            },
        })
    }
}

/// `vfind:<class>:<offset_bytes>:<blocks>:<path>\t<expected>\t<found>`: one finding of the
/// client's check (the first [`MAX_FINDINGS_SENT`] of a run): its class (`corrupt`, `stale`,
/// `misdirected`, `torn`, `short`), the offset of its first bad block (short: the file's
/// size), the blocks it covers, and three tab-separated texts (the file, what was expected,
/// what was found), each without a tab or a line break. (Serde: a finding as the JSON report
/// and the `verify_finding` event show it.)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifyFinding {
    /// Its class.
    pub class: FindingClass,
    /// Offset of its first bad block, bytes (short: the file's size).
    pub offset_bytes: u64,
    /// Blocks it covers (short: blocks missing).
    pub blocks: u64,
    /// The file, as the client names it.
    pub path: String,
    /// What should be there.
    pub expected: String,
    /// What is there.
    pub found: String,
}

/// `s` as one field of a `vfind` line: tabs and line breaks become spaces, cut to
/// [`MAX_FINDING_TEXT_BYTES`] on a character boundary.
pub fn finding_text(s: &str) -> String {
    let mut end = s.len().min(MAX_FINDING_TEXT_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].replace(['\t', '\n', '\r'], " ")
}

impl VerifyFinding {
    /// A finding of the checker's, its texts made fit for the line ([`finding_text`]).
    pub fn of(f: &crate::verify::Finding) -> VerifyFinding {
        VerifyFinding {
            class: f.class,
            offset_bytes: f.offset_bytes,
            blocks: f.blocks,
            path: finding_text(&f.path.to_string_lossy()),
            expected: finding_text(&f.expected),
            found: finding_text(&f.found),
        }
    }

    /// The finding as one line ([`finding_sentence`](crate::verify::finding_sentence)).
    pub fn sentence(&self) -> String {
        crate::verify::finding_sentence(
            self.class,
            self.offset_bytes,
            &self.path,
            self.blocks,
            &self.expected,
            &self.found,
        )
    }

    /// The line's fields after the command (the texts as they are: [`VerifyFinding::of`]
    /// makes them fit).
    pub(super) fn encode(&self, cmd: &str) -> String {
        format!(
            "{cmd}:{}:{}:{}:{}\t{}\t{}",
            self.class.name(),
            self.offset_bytes,
            self.blocks,
            finding_text(&self.path),
            finding_text(&self.expected),
            finding_text(&self.found)
        )
    }

    /// Parses the line: a class, two unsigned integers, then (the rest of the line, `:`
    /// allowed) exactly three tab-separated texts, each at most [`MAX_FINDING_TEXT_BYTES`].
    pub(super) fn parse(f: &Fields<'_>) -> Result<VerifyFinding, ProtocolError> {
        if f.n < 5 {
            ProtocolError::expect_fields(F, f.n, 5)?;
        }
        let mut parts = f.rest().splitn(4, ':');
        let mut next = || parts.next().unwrap_or("");
        let raw = next();
        let class = FindingClass::ALL
            .into_iter()
            .find(|c| c.name() == raw)
            .ok_or_else(|| {
                invalid(
                    F,
                    "class",
                    raw,
                    "not corrupt, stale, misdirected, torn or short",
                )
            })?;
        let offset_bytes = parse_u64(F, "offset_bytes", next())?;
        let blocks = parse_u64(F, "blocks", next())?;
        let texts = next();
        let mut t = texts.split('\t');
        let (Some(path), Some(expected), Some(found), None) =
            (t.next(), t.next(), t.next(), t.next())
        else {
            return Err(invalid(
                F,
                "texts",
                texts,
                "not three tab-separated texts (path, expected, found)",
            ));
        };
        for (name, s) in [("path", path), ("expected", expected), ("found", found)] {
            if s.len() > MAX_FINDING_TEXT_BYTES {
                return Err(invalid(F, name, s, "longer than 1024 bytes"));
            }
        }
        Ok(VerifyFinding {
            class,
            offset_bytes,
            blocks,
            path: path.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Message;
    use super::*;

    #[test]
    fn a_verify_line_round_trips_and_is_checked() {
        let s = VerifyStats {
            files_checked: 3,
            blocks_checked: 1 << 40,
            errors: ClassCounts {
                corrupt: 1,
                stale: 2,
                misdirected: 3,
                torn: 4,
                short: 5,
            },
        };
        let line = Message::Verify(s).encode();
        assert_eq!(line, "verify:3:1099511627776:1:2:3:4:5");
        assert_eq!(Message::parse(&line).unwrap(), Message::Verify(s));
        for bad in [
            "verify:1:2:3:4:5:6",
            "verify:1:2:3:4:5:6:7:8",
            "verify:1:2:3:4:5:6:-7",
            "verify:a:2:3:4:5:6:7",
            "verify:1:2:3:4:5:6:18446744073709551616",
        ] {
            assert!(Message::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_finding_line_round_trips_keeps_colons_and_is_checked() {
        let f = VerifyFinding {
            class: FindingClass::Stale,
            offset_bytes: 12288,
            blocks: 2,
            path: "/data/a:b/client_1_0_2026-12-05_10.00.00".into(),
            expected: "client 1 stream 0 file 0 run 0x1 generation 2".into(),
            found: "generation 1 (an older write)".into(),
        };
        let line = Message::VerifyFinding(Box::new(f.clone())).encode();
        assert_eq!(
            line,
            "vfind:stale:12288:2:/data/a:b/client_1_0_2026-12-05_10.00.00\tclient 1 stream 0 \
             file 0 run 0x1 generation 2\tgeneration 1 (an older write)"
        );
        assert_eq!(
            Message::parse(&line).unwrap(),
            Message::VerifyFinding(Box::new(f))
        );
        let long = "x".repeat(MAX_FINDING_TEXT_BYTES + 1);
        for bad in [
            "vfind:stale:1:2".to_string(),
            "vfind:rotten:1:2:p\te\tf".into(),
            "vfind:stale:-1:2:p\te\tf".into(),
            "vfind:stale:1:2:p\te".into(),
            "vfind:stale:1:2:p\te\tf\tg".into(),
            format!("vfind:torn:1:2:{long}\te\tf"),
        ] {
            assert!(Message::parse(&bad).is_err(), "{bad}");
        }
        // What a sender makes of hostile texts: one line, bounded.
        let t = finding_text(&format!("a\tb\nc{}", "é".repeat(MAX_FINDING_TEXT_BYTES)));
        assert!(t.len() <= MAX_FINDING_TEXT_BYTES && !t.contains(['\t', '\n']));
        assert!(t.starts_with("a b c"));
    }
}
