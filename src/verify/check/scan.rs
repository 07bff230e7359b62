//! A file's check: the block size, one pass that records runs of blocks (reading the next
//! piece while it checks this one), the expectation settled, each run judged (bad blocks read
//! again, one read at a time), the file's size.

use std::path::Path;

use super::super::format::BlockHeader;
use super::super::read::{AlignedBuf, Reader, DIRECT_ALIGN, READ_BYTES};
use super::super::{crc_ok, DEFAULT_BLOCK_BYTES, SECTOR_BYTES};
use super::block::{classify_bad, describe_expected, judge, raw, Key, Raw};
use super::sink::{FindingClass, Sink};
use super::{CheckGuard, Expected, FileReport, VerifyConfig};
use crate::error::Result;

/// Most runs of blocks recorded in the first pass (a file more broken up than that is judged
/// block by block in a second pass). Small in unit tests, so the second pass is tested.
#[cfg(not(test))]
pub(super) const MAX_RANGES: usize = 65_536;
#[cfg(test)]
pub(super) const MAX_RANGES: usize = 8;
/// Most distinct valid (run, file, generation, size) keys counted.
const MAX_KEYS: usize = 256;

/// What a run of consecutive blocks is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Valid blocks of the key at this index of [`Survey::keys`].
    Valid(usize),
    /// Valid blocks that belong elsewhere: their key, and the offset the first says.
    Misplaced(Key, u64),
    /// Blocks that are not valid.
    Bad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    first: u64,
    blocks: u64,
    kind: Kind,
}

/// The first pass's record of a file.
#[derive(Debug, PartialEq, Eq)]
struct Survey {
    block_bytes: u64,
    /// Each valid key with its blocks.
    keys: Vec<(Key, u64)>,
    ranges: Vec<Range>,
    /// More runs or keys than recorded: judge in a second pass.
    overflow: bool,
    full_blocks: u64,
    tail_bytes: u64,
    bytes_read: u64,
}

impl Survey {
    fn key_index(&mut self, k: Key) -> Option<usize> {
        if let Some(i) = self.keys.iter().position(|(x, _)| *x == k) {
            self.keys[i].1 += 1;
            return Some(i);
        }
        if self.overflow || self.keys.len() >= MAX_KEYS {
            return None;
        }
        self.keys.push((k, 1));
        Some(self.keys.len() - 1)
    }

    fn push(&mut self, idx: u64, r: Raw) {
        let kind = match r {
            Raw::Valid(k) => match self.key_index(k) {
                Some(i) => Kind::Valid(i),
                None => {
                    self.overflow = true;
                    return;
                }
            },
            Raw::Misplaced(k, at) => Kind::Misplaced(k, at),
            Raw::Bad => Kind::Bad,
        };
        if self.overflow {
            return;
        }
        if let Some(last) = self.ranges.last_mut() {
            let next = match (last.kind, kind) {
                (Kind::Misplaced(a, at), Kind::Misplaced(b, bt)) => {
                    a == b && at.wrapping_add(last.blocks * self.block_bytes) == bt
                }
                (a, b) => a == b,
            };
            if next && last.first + last.blocks == idx {
                last.blocks += 1;
                return;
            }
        }
        if self.ranges.len() >= MAX_RANGES {
            self.overflow = true;
            return;
        }
        self.ranges.push(Range {
            first: idx,
            blocks: 1,
            kind,
        });
    }

    /// Records the blocks of `piece`, read at `offset`.
    fn piece(&mut self, offset: u64, piece: &[u8]) {
        let bs = self.block_bytes as usize;
        for (i, b) in piece.chunks_exact(bs).enumerate() {
            let pos = offset + (i * bs) as u64;
            self.push(pos / self.block_bytes, raw(b, pos));
        }
        self.full_blocks += (piece.len() / bs) as u64;
        self.tail_bytes = (piece.len() % bs) as u64;
    }
}

/// The block size: given, or that of the first valid block in the first piece (`buf` holds
/// the first `n` bytes of the file), or the default.
fn detect_block(given: Option<u32>, buf: &[u8], notes: &mut Vec<String>) -> u32 {
    let found = (0..buf.len()).step_by(SECTOR_BYTES).find_map(|p| {
        let h = BlockHeader::decode(&buf[p..]).ok()?;
        let end = p.checked_add(h.block_bytes as usize)?;
        (h.offset_bytes == p as u64 && end <= buf.len() && crc_ok(&buf[p..end]))
            .then_some(h.block_bytes)
    });
    match (given, found) {
        (Some(g), Some(f)) if g != f => {
            notes.push(format!(
                "checked as {g}-byte blocks; the file's blocks say {f}"
            ));
            g
        }
        (Some(g), _) => g,
        (None, Some(f)) => f,
        (None, None) => {
            notes.push(format!(
                "no valid block in the first {} bytes: checked as {DEFAULT_BLOCK_BYTES}-byte \
                 blocks",
                buf.len()
            ));
            DEFAULT_BLOCK_BYTES
        }
    }
}

/// The read buffer's size for a file of `len_bytes`: [`READ_BYTES`], or the file rounded up
/// to [`DIRECT_ALIGN`] where that is less (so one read takes the whole file).
fn read_bytes(len_bytes: u64) -> usize {
    usize::try_from(len_bytes.max(1).div_ceil(DIRECT_ALIGN as u64))
        .map_or(READ_BYTES, |units| units.saturating_mul(DIRECT_ALIGN))
        .min(READ_BYTES)
}

/// The first pass: every block's header and CRC, from the first piece (already in `buf`, `n`
/// bytes) to the end, the next piece read while this one is checked ([`Reader::pieces`]).
fn survey(reader: &Reader<'_>, buf: &mut AlignedBuf, n: usize, block_bytes: u64) -> Result<Survey> {
    let mut s = Survey {
        block_bytes,
        keys: Vec::new(),
        ranges: Vec::new(),
        overflow: false,
        full_blocks: 0,
        tail_bytes: 0,
        bytes_read: 0,
    };
    reader.pieces(buf, n, &mut |offset, piece| {
        s.piece(offset, piece);
        s.bytes_read += piece.len() as u64;
    })?;
    Ok(s)
}

/// The first of the items with the most blocks.
fn first_max<T: PartialEq + Copy>(items: impl Iterator<Item = (T, u64)>) -> Option<T> {
    let mut totals: Vec<(T, u64)> = Vec::new();
    for (t, n) in items {
        match totals.iter_mut().find(|(x, _)| *x == t) {
            Some((_, total)) => *total += n,
            None => totals.push((t, n)),
        }
    }
    let mut best: Option<(T, u64)> = None;
    for (t, n) in totals {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((t, n));
        }
    }
    best.map(|(t, _)| t)
}

/// Fills what `e` leaves open from the file's valid blocks (of the client, stream and file
/// expected): the run most blocks are of, then that run's file (client, stream, number) most
/// blocks are of, the newest generation of it, and the file size most of those blocks claim.
fn settle(mut e: Expected, keys: &[(Key, u64)], notes: &mut Vec<String>) -> Expected {
    let fits = |k: &Key, e: &Expected| {
        e.client_id.is_none_or(|v| v == k.client_id)
            && e.stream.is_none_or(|v| v == k.stream)
            && e.file_seq.is_none_or(|v| v == k.file_seq)
            && e.run_id.is_none_or(|v| v == k.run_id)
    };
    let Some(run) = first_max(
        keys.iter()
            .filter(|(k, _)| fits(k, &e))
            .map(|(k, n)| (k.run_id, *n)),
    ) else {
        notes.push("no valid block of this file: the run, generation and size are unknown".into());
        return e;
    };
    let given_gen = e.generation.is_some();
    e.run_id.get_or_insert(run);
    let who = keys.iter().filter(|(k, _)| fits(k, &e));
    if let Some((c, st, f)) = first_max(who.map(|(k, n)| ((k.client_id, k.stream, k.file_seq), *n)))
    {
        e.client_id.get_or_insert(c);
        e.stream.get_or_insert(st);
        e.file_seq.get_or_insert(f);
    }
    let newest = keys
        .iter()
        .filter(|(k, _)| fits(k, &e))
        .map(|(k, _)| k.generation)
        .max();
    if let Some(g) = newest {
        e.generation.get_or_insert(g);
    }
    let gen = e.generation;
    let sizes = keys
        .iter()
        .filter(|(k, _)| fits(k, &e) && Some(k.generation) == gen);
    if let Some(fs) = first_max(sizes.map(|(k, n)| (k.file_size_bytes, *n))) {
        e.file_size_bytes.get_or_insert(fs);
    }
    if !given_gen {
        notes.push(
            "run and generation from the file's blocks: the run most blocks are of, its newest \
             generation"
                .into(),
        );
    }
    e
}

/// Judges the bad blocks of `r` again, read anew.
fn reread(reader: &Reader<'_>, r: &Range, cx: &mut Judge<'_>) -> Result<()> {
    let bs = cx.block_bytes;
    let mut pos = r.first * bs;
    let end = (r.first + r.blocks) * bs;
    while pos < end {
        let start = pos - pos % DIRECT_ALIGN as u64;
        let n = cx
            .buf
            .bytes()
            .len()
            .min(usize::try_from(end - start).unwrap_or(usize::MAX));
        let got = reader.read_at(
            start,
            &mut cx.buf.bytes_mut()[..n.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN],
        )?;
        cx.bytes_read += got as u64;
        let skip = (pos - start) as usize;
        if got < skip + bs as usize {
            // Gone since the first pass (the file shrank while it was checked): missing.
            cx.sink.push(
                pos,
                (end - pos) / bs,
                FindingClass::Short,
                &cx.exp_text,
                "nothing: the file shrank while it was checked".into(),
            );
            break;
        }
        let blocks = (got.min(n) - skip) / bs as usize;
        for i in 0..blocks {
            let at = skip + i * bs as usize;
            let b = &cx.buf.bytes()[at..at + bs as usize];
            let (class, found) = classify_bad(b, pos, cx.exp, &mut cx.scratch);
            cx.sink.push(pos, 1, class, &cx.exp_text, found);
            pos += bs;
        }
    }
    Ok(())
}

/// What judging a file's blocks needs.
struct Judge<'a> {
    exp: &'a Expected,
    exp_text: String,
    block_bytes: u64,
    sink: Sink,
    buf: AlignedBuf,
    scratch: Vec<u8>,
    ok: u64,
    bytes_read: u64,
}

impl Judge<'_> {
    fn valid(&mut self, pos: u64, blocks: u64, key: &Key) {
        match judge(key, self.exp) {
            None => self.ok += blocks,
            Some((class, found)) => self.sink.push(pos, blocks, class, &self.exp_text, found),
        }
    }

    fn misplaced(&mut self, pos: u64, blocks: u64, key: &Key, says: u64) {
        let found = format!("the block of offset {says}: {}", key.describe());
        self.sink.push(
            pos,
            blocks,
            FindingClass::Misdirected,
            &self.exp_text,
            found,
        );
    }
}

/// Judges the recorded runs.
fn resolve(reader: &Reader<'_>, s: &Survey, cx: &mut Judge<'_>) -> Result<()> {
    for r in &s.ranges {
        let pos = r.first * s.block_bytes;
        match r.kind {
            Kind::Valid(i) => cx.valid(pos, r.blocks, &s.keys[i].0),
            Kind::Misplaced(k, says) => cx.misplaced(pos, r.blocks, &k, says),
            Kind::Bad => reread(reader, r, cx)?,
        }
    }
    Ok(())
}

/// The second pass, for a file too broken up to record: every block judged as it is read.
fn second_pass(reader: &Reader<'_>, cx: &mut Judge<'_>) -> Result<()> {
    let bs = cx.block_bytes as usize;
    let mut buf = AlignedBuf::new(READ_BYTES)?;
    let mut off = 0u64;
    while off < reader.src.len_bytes {
        let got = reader.read_at(off, buf.bytes_mut())?;
        cx.bytes_read += got as u64;
        for (i, b) in buf.bytes()[..got].chunks_exact(bs).enumerate() {
            let pos = off + (i * bs) as u64;
            match raw(b, pos) {
                Raw::Valid(k) => cx.valid(pos, 1, &k),
                Raw::Misplaced(k, says) => cx.misplaced(pos, 1, &k, says),
                Raw::Bad => {
                    let (class, found) = classify_bad(b, pos, cx.exp, &mut cx.scratch);
                    cx.sink.push(pos, 1, class, &cx.exp_text, found);
                }
            }
        }
        if got < buf.bytes().len() {
            break;
        }
        off += got as u64;
    }
    Ok(())
}

/// The file's end against the size its blocks claim.
fn check_size(len: u64, s: &Survey, e: &Expected, sink: &mut Sink) {
    let bs = s.block_bytes;
    match e.file_size_bytes {
        Some(fs) if len < fs => sink.push(
            len,
            (fs - len).div_ceil(bs),
            FindingClass::Short,
            &format!("{fs} bytes (the size its blocks claim)"),
            format!("{len} bytes"),
        ),
        _ if s.tail_bytes > 0 => sink.push(
            len - s.tail_bytes,
            1,
            FindingClass::Short,
            &format!("a whole {bs}-byte block"),
            format!("a partial last block of {} bytes", s.tail_bytes),
        ),
        _ => {}
    }
}

/// Checks one file (`e` with the caller's and the config's knowledge merged); returns the
/// report and the bytes read.
pub(super) fn check_counting(
    path: &Path,
    e: &Expected,
    config: &VerifyConfig,
    guard: &CheckGuard<'_>,
) -> Result<(FileReport, u64)> {
    let mut e = *e;
    e.block_bytes = config.block_bytes.or(e.block_bytes);
    e.run_id = config.run_id.or(e.run_id);
    e.generation = config.generation.or(e.generation);
    let reader = Reader::open(path, config.direct, guard)?;
    check_reader(&reader, e, config)
}

/// Checks the file `reader` opened (`e` with the config's knowledge merged).
fn check_reader(
    reader: &Reader<'_>,
    mut e: Expected,
    config: &VerifyConfig,
) -> Result<(FileReport, u64)> {
    let path = reader.src.path.as_path();
    // A small file gets a buffer of its size (a check of many small files does not zero a
    // whole read buffer for each): the first read then takes the whole file.
    let mut buf = AlignedBuf::new(read_bytes(reader.src.len_bytes))?;
    let n = reader.read_at(0, buf.bytes_mut())?;
    let mut notes = Vec::new();
    let bs = detect_block(e.block_bytes, &buf.bytes()[..n], &mut notes);
    e.block_bytes = Some(bs);
    let survey = survey(reader, &mut buf, n, u64::from(bs))?;
    let exp = settle(e, &survey.keys, &mut notes);
    let mut cx = Judge {
        exp: &exp,
        exp_text: describe_expected(&exp),
        block_bytes: u64::from(bs),
        sink: Sink::new(path.to_path_buf(), u64::from(bs), config.max_findings),
        buf,
        scratch: vec![0u8; bs as usize],
        ok: 0,
        bytes_read: survey.bytes_read,
    };
    if survey.overflow {
        notes.push(format!(
            "over {MAX_RANGES} runs of differing blocks: judged in a second pass"
        ));
        second_pass(reader, &mut cx)?;
    } else {
        resolve(reader, &survey, &mut cx)?;
    }
    // The file as read: one cut short while it was checked ends where the reads ended, so
    // its missing blocks are found (short) rather than left unread and uncounted.
    let len_bytes = survey.full_blocks * survey.block_bytes + survey.tail_bytes;
    if len_bytes < reader.src.len_bytes {
        notes.push(format!(
            "the file shrank from {} to {len_bytes} bytes while it was checked",
            reader.src.len_bytes
        ));
    }
    check_size(len_bytes, &survey, &exp, &mut cx.sink);
    let report = FileReport {
        path: path.to_path_buf(),
        size_bytes: len_bytes,
        expected: exp,
        blocks_checked: survey.full_blocks,
        blocks_ok: cx.ok,
        errors: cx.sink.counts,
        findings: cx.sink.findings,
        findings_left_off: cx.sink.left_off,
        notes,
    };
    Ok((report, cx.bytes_read))
}

#[cfg(test)]
mod tests {
    use super::super::super::{fill_chunk, BlockContext};
    use super::*;

    /// A small file's check reads it into a buffer of its size, not a whole 4 MiB one (a
    /// check of thousands of small kept files zeroed 4 MiB for each, and took 15 times as
    /// long), and still judges every block: a bad one, a partial last block.
    #[test]
    fn a_small_file_gets_a_buffer_of_its_size() {
        assert_eq!(read_bytes(0), DIRECT_ALIGN);
        assert_eq!(read_bytes(1), DIRECT_ALIGN);
        assert_eq!(read_bytes(256 << 10), 256 << 10);
        assert_eq!(read_bytes((256 << 10) + 1), (256 << 10) + DIRECT_ALIGN);
        assert_eq!(read_bytes(READ_BYTES as u64 + 1), READ_BYTES);
        assert_eq!(read_bytes(u64::MAX), READ_BYTES);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_7_0_2026-12-05_10.11.12");
        let ctx = ctx_7(4096, 12 * 4096);
        let mut data = vec![0u8; 12 * 4096];
        fill_chunk(&mut data, &ctx, 0).unwrap();
        data[5 * 4096 + 9] ^= 1;
        data.truncate(11 * 4096 + 100);
        std::fs::write(&path, &data).unwrap();
        let e = Expected::of(&ctx);
        let (r, read) =
            check_counting(&path, &e, &VerifyConfig::default(), &CheckGuard::default()).unwrap();
        assert_eq!((r.blocks_checked, r.blocks_ok), (11, 10));
        assert_eq!((r.errors.corrupt, r.errors.short), (1, 1), "{r:?}");
        assert_eq!(r.findings[0].offset_bytes, 5 * 4096);
        assert_eq!(read, data.len() as u64 + 4096);
    }

    #[test]
    fn a_file_too_broken_up_to_record_is_judged_in_a_second_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_7_0_2026-12-05_10.11.12");
        let ctx = ctx_7(512, 64 * 512);
        let mut data = vec![0u8; 64 * 512];
        fill_chunk(&mut data, &ctx, 0).unwrap();
        // Every other block zeroed: 64 runs, more than MAX_RANGES.
        for b in data.chunks_mut(1024) {
            b[512..].fill(0);
        }
        std::fs::write(&path, &data).unwrap();
        let e = Expected {
            client_id: Some(7),
            stream: Some(0),
            file_seq: Some(0),
            ..Default::default()
        };
        let config = VerifyConfig {
            max_findings: 10,
            ..Default::default()
        };
        let (r, read) = check_counting(&path, &e, &config, &CheckGuard::default()).unwrap();
        assert!(
            r.notes.iter().any(|n| n.contains("second pass")),
            "{:?}",
            r.notes
        );
        assert_eq!((r.blocks_ok, r.errors.torn, r.errors.total()), (32, 32, 32));
        assert_eq!(r.findings.len(), 10);
        assert_eq!(r.findings_left_off, 22);
        assert_eq!(r.findings[3].offset_bytes, 7 * 512);
        assert_eq!(read, 2 * data.len() as u64);
        assert_eq!(r.expected.run_id, Some(9));
    }

    /// 16 blocks of 4 KiB of client 7's file 0 at `path`, with a zeroed one at 12 (so the
    /// first pass records a run of bad blocks to read again).
    fn sixteen_blocks(path: &Path) -> Vec<u8> {
        let ctx = ctx_7(4096, 16 * 4096);
        let mut data = vec![0u8; 16 * 4096];
        fill_chunk(&mut data, &ctx, 0).unwrap();
        data[12 * 4096..13 * 4096].fill(0);
        std::fs::write(path, &data).unwrap();
        data
    }

    #[test]
    fn a_file_cut_short_while_it_is_checked_is_short_not_silently_smaller() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_7_0_2026-12-05_10.11.12");
        sixteen_blocks(&path);
        let e = Expected {
            client_id: Some(7),
            stream: Some(0),
            file_seq: Some(0),
            ..Default::default()
        };
        let config = VerifyConfig::default();
        // Opened at 16 blocks, cut to 10 before a byte is read.
        let reader = Reader::open(&path, false, &CheckGuard::default()).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10 * 4096)
            .unwrap();
        let (r, _) = check_reader(&reader, e, &config).unwrap();
        assert_eq!((r.blocks_ok, r.errors.short), (10, 6), "{r:?}");
        assert_eq!(r.errors.total(), 6, "{r:?}");
        assert_eq!(r.findings[0].offset_bytes, 10 * 4096);
        assert_eq!(r.size_bytes, 10 * 4096);
        assert!(
            r.notes.iter().any(|n| n.contains("shrank")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn bad_blocks_gone_before_they_are_read_again_are_counted_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_7_0_2026-12-05_10.11.12");
        let data = sixteen_blocks(&path);
        let e = Expected {
            client_id: Some(7),
            stream: Some(0),
            file_seq: Some(0),
            ..Default::default()
        };
        let reader = Reader::open(&path, false, &CheckGuard::default()).unwrap();
        let mut buf = AlignedBuf::new(read_bytes(reader.src.len_bytes)).unwrap();
        let n = reader.read_at(0, buf.bytes_mut()).unwrap();
        let s = survey(&reader, &mut buf, n, 4096).unwrap();
        let exp = settle(e, &s.keys, &mut Vec::new());
        // The file loses its last 4 blocks (the bad one among them) after the first pass.
        std::fs::write(&path, &data[..12 * 4096]).unwrap();
        let mut cx = Judge {
            exp: &exp,
            exp_text: describe_expected(&exp),
            block_bytes: 4096,
            sink: Sink::new(path.clone(), 4096, 10),
            buf,
            scratch: vec![0u8; 4096],
            ok: 0,
            bytes_read: 0,
        };
        resolve(&reader, &s, &mut cx).unwrap();
        assert_eq!(
            (cx.ok, cx.sink.counts.short),
            (15, 1),
            "{:?}",
            cx.sink.findings
        );
        assert_eq!(cx.sink.findings[0].offset_bytes, 12 * 4096);
    }

    /// Client 7's file 0 of `len` bytes in 4 KiB blocks at `path` (its blocks claim `len`
    /// rounded up to a block), with a corrupt block in the first piece and a zeroed run
    /// across the second and third pieces (the runs stay under MAX_RANGES).
    fn pieces_file(path: &Path, len: usize) -> Vec<u8> {
        let ctx = ctx_7(4096, len.next_multiple_of(4096) as u64);
        let mut data = vec![0u8; len.next_multiple_of(4096)];
        fill_chunk(&mut data, &ctx, 0).unwrap();
        data[5 * 4096 + 9] ^= 1;
        data[2 * READ_BYTES - 4096..2 * READ_BYTES + 8192].fill(0);
        data.truncate(len);
        std::fs::write(path, &data).unwrap();
        data
    }

    /// Client 7's file 0 (run 9, generation 1) of `file_size_bytes` in `block_bytes` blocks.
    fn ctx_7(block_bytes: u32, file_size_bytes: u64) -> BlockContext {
        BlockContext {
            block_bytes,
            run_id: 9,
            client_id: 7,
            stream: 0,
            file_seq: 0,
            generation: 1,
            write_time_ns: 0,
            file_size_bytes,
        }
    }

    fn client_7() -> Expected {
        Expected {
            client_id: Some(7),
            stream: Some(0),
            file_seq: Some(0),
            ..Default::default()
        }
    }

    /// The first pass as it was before reading ahead: one buffer, one read after the other.
    fn serial_survey(reader: &Reader<'_>, block_bytes: u64) -> Survey {
        let mut buf = AlignedBuf::new(read_bytes(reader.src.len_bytes)).unwrap();
        let n = reader.read_at(0, buf.bytes_mut()).unwrap();
        let mut s = Survey {
            block_bytes,
            keys: Vec::new(),
            ranges: Vec::new(),
            overflow: false,
            full_blocks: 0,
            tail_bytes: 0,
            bytes_read: n as u64,
        };
        s.piece(0, &buf.bytes()[..n]);
        let (mut off, mut last) = (n as u64, n);
        while last == buf.bytes().len() && off < reader.src.len_bytes {
            last = reader.read_at(off, buf.bytes_mut()).unwrap();
            if last == 0 {
                break;
            }
            s.piece(off, &buf.bytes()[..last]);
            s.bytes_read += last as u64;
            off += last as u64;
        }
        s
    }

    /// A file of several pieces (the next read on a helper thread while one is checked) is
    /// surveyed as it was by one read after the other: the same runs, across pieces too, the
    /// same blocks, partial last block and bytes read; and checked the same.
    #[test]
    fn a_file_of_several_pieces_is_read_ahead_with_the_same_survey() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_7_0_2026-12-05_10.11.12");
        let len = 2 * READ_BYTES + 3 * 4096 + 100;
        pieces_file(&path, len);
        let helpers = std::sync::atomic::AtomicUsize::new(0);
        let read_thread = || {
            helpers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            None
        };
        let guard = CheckGuard {
            read_thread: Some(&read_thread),
            ..Default::default()
        };
        let reader = Reader::open(&path, false, &guard).unwrap();
        let mut buf = AlignedBuf::new(read_bytes(reader.src.len_bytes)).unwrap();
        let n = reader.read_at(0, buf.bytes_mut()).unwrap();
        let s = survey(&reader, &mut buf, n, 4096).unwrap();
        assert_eq!(helpers.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(s, serial_survey(&reader, 4096));
        assert_eq!((s.bytes_read, s.tail_bytes), (len as u64, 100));
        assert_eq!(s.full_blocks, (len / 4096) as u64);
        let bad: Vec<(u64, u64)> = s
            .ranges
            .iter()
            .filter(|r| r.kind == Kind::Bad)
            .map(|r| (r.first, r.blocks))
            .collect();
        assert_eq!(bad, [(5, 1), (2 * READ_BYTES as u64 / 4096 - 1, 3)]);
        let (r, read) =
            check_counting(&path, &client_7(), &VerifyConfig::default(), &guard).unwrap();
        assert_eq!((r.errors.corrupt, r.errors.short), (1, 1), "{r:?}");
        assert_eq!(r.blocks_ok, s.full_blocks - 4);
        assert_eq!(read, len as u64 + 4096 + 3 * 4096);
    }

    /// A stop ends the read-ahead first pass between two reads (asked before each read is
    /// ordered, none asked after it), and a file cut short before it is read ends where the
    /// reads ended.
    #[test]
    fn a_stop_or_a_cut_ends_a_file_of_several_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client_7_0_2026-12-05_10.11.12");
        let len = 3 * READ_BYTES;
        pieces_file(&path, len);
        let asked = std::cell::Cell::new(0u32);
        let stop = || {
            asked.set(asked.get() + 1);
            asked.get() > 2
        };
        let guard = CheckGuard {
            stop: Some(&stop),
            ..Default::default()
        };
        let e = check_counting(&path, &client_7(), &VerifyConfig::default(), &guard).unwrap_err();
        assert!(matches!(e, crate::error::Error::Interrupted(_)), "{e}");
        assert_eq!(asked.get(), 3, "the first read and two more asked for");
        // Opened at 3 pieces, cut to one and a half before the first pass.
        let reader = Reader::open(&path, false, &CheckGuard::default()).unwrap();
        let cut = READ_BYTES + READ_BYTES / 2;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let (r, read) = check_reader(&reader, client_7(), &VerifyConfig::default()).unwrap();
        assert_eq!(r.size_bytes, cut as u64);
        assert_eq!(read, cut as u64 + 4096);
        assert_eq!(
            (r.errors.corrupt, r.errors.total()),
            (1, 1 + (len - cut) as u64 / 4096)
        );
        assert_eq!(r.errors.short, (len - cut) as u64 / 4096, "{r:?}");
        assert!(
            r.notes.iter().any(|n| n.contains("shrank")),
            "{:?}",
            r.notes
        );
    }
}
