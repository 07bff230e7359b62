//! Findings: their classes, their counts, and the bounded list a file's check keeps.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What is wrong with a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingClass {
    /// Its CRC-32C does not match its bytes (and it is not torn): the bytes changed.
    Corrupt,
    /// A valid block of the right place, but of an older write generation: a lost write.
    Stale,
    /// A valid block of another place: another file, client, stream, run or offset.
    Misdirected,
    /// Some sectors as written and the others zero or another write's, or all zero.
    Torn,
    /// The file ends before the size its blocks claim.
    Short,
}

impl FindingClass {
    /// Every class, in declaration order.
    pub const ALL: [FindingClass; 5] = [
        FindingClass::Corrupt,
        FindingClass::Stale,
        FindingClass::Misdirected,
        FindingClass::Torn,
        FindingClass::Short,
    ];

    /// Its name in reports and metrics labels (`"corrupt"`, …).
    pub fn name(self) -> &'static str {
        match self {
            FindingClass::Corrupt => "corrupt",
            FindingClass::Stale => "stale",
            FindingClass::Misdirected => "misdirected",
            FindingClass::Torn => "torn",
            FindingClass::Short => "short",
        }
    }
}

/// Bad blocks by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    /// [`FindingClass::Corrupt`] blocks.
    pub corrupt: u64,
    /// [`FindingClass::Stale`] blocks.
    pub stale: u64,
    /// [`FindingClass::Misdirected`] blocks.
    pub misdirected: u64,
    /// [`FindingClass::Torn`] blocks (zero ones included).
    pub torn: u64,
    /// Blocks missing at the end of a [`FindingClass::Short`] file (a partial one included).
    pub short: u64,
}

impl ClassCounts {
    /// The count of one class.
    pub fn get(&self, class: FindingClass) -> u64 {
        match class {
            FindingClass::Corrupt => self.corrupt,
            FindingClass::Stale => self.stale,
            FindingClass::Misdirected => self.misdirected,
            FindingClass::Torn => self.torn,
            FindingClass::Short => self.short,
        }
    }

    /// Adds `n` blocks of `class`.
    pub fn add(&mut self, class: FindingClass, n: u64) {
        let c = match class {
            FindingClass::Corrupt => &mut self.corrupt,
            FindingClass::Stale => &mut self.stale,
            FindingClass::Misdirected => &mut self.misdirected,
            FindingClass::Torn => &mut self.torn,
            FindingClass::Short => &mut self.short,
        };
        *c = c.saturating_add(n);
    }

    /// Adds every class of `other`.
    pub fn add_all(&mut self, other: &ClassCounts) {
        for c in FindingClass::ALL {
            self.add(c, other.get(c));
        }
    }

    /// All bad blocks.
    pub fn total(&self) -> u64 {
        FindingClass::ALL
            .iter()
            .fold(0u64, |t, &c| t.saturating_add(self.get(c)))
    }
}

/// One finding: a bad block, or consecutive bad blocks with the same finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file (in JSON as text: bytes that are not UTF-8 become U+FFFD).
    #[serde(serialize_with = "super::lossy_path")]
    pub path: PathBuf,
    /// Offset of the first bad block, bytes (for `short`: the file's size).
    pub offset_bytes: u64,
    /// Blocks it covers (for `short`: blocks missing).
    pub blocks: u64,
    /// Its class.
    pub class: FindingClass,
    /// What should be there.
    pub expected: String,
    /// What is there.
    pub found: String,
}

impl Finding {
    /// The finding as one line: `stale at offset 12288 of /data/f (2 block(s)): expected …,
    /// found …` ([`finding_sentence`]).
    pub fn sentence(&self) -> String {
        finding_sentence(
            self.class,
            self.offset_bytes,
            self.path.display(),
            self.blocks,
            &self.expected,
            &self.found,
        )
    }
}

/// A finding as one line: `<class> at offset <o> of <path> (<n> block(s)): expected <e>,
/// found <f>` — the writer's error, the client's log, the server's log and reports all say it
/// so.
pub fn finding_sentence(
    class: FindingClass,
    offset_bytes: u64,
    path: impl std::fmt::Display,
    blocks: u64,
    expected: &str,
    found: &str,
) -> String {
    format!(
        "{} at offset {offset_bytes} of {path} ({blocks} block(s)): expected {expected}, found \
         {found}",
        class.name()
    )
}

/// A file's findings: counted, merged when consecutive and alike, the first `max` kept.
pub(super) struct Sink {
    path: PathBuf,
    block_bytes: u64,
    max: usize,
    pub(super) findings: Vec<Finding>,
    pub(super) left_off: u64,
    pub(super) counts: ClassCounts,
}

impl Sink {
    pub(super) fn new(path: PathBuf, block_bytes: u64, max: usize) -> Sink {
        Sink {
            path,
            block_bytes,
            max,
            findings: Vec::new(),
            left_off: 0,
            counts: ClassCounts::default(),
        }
    }

    /// Records `blocks` bad blocks from `offset_bytes` (findings come in offset order).
    pub(super) fn push(
        &mut self,
        offset_bytes: u64,
        blocks: u64,
        class: FindingClass,
        expected: &str,
        found: String,
    ) {
        self.counts.add(class, blocks);
        if let Some(last) = self.findings.last_mut() {
            let end = last
                .offset_bytes
                .saturating_add(last.blocks.saturating_mul(self.block_bytes));
            if self.left_off == 0
                && class != FindingClass::Short
                && last.class == class
                && end == offset_bytes
                && last.expected == expected
                && last.found == found
            {
                last.blocks += blocks;
                return;
            }
        }
        if self.findings.len() >= self.max {
            self.left_off += 1;
            return;
        }
        self.findings.push(Finding {
            path: self.path.clone(),
            offset_bytes,
            blocks,
            class,
            expected: expected.to_string(),
            found,
        });
    }
}
