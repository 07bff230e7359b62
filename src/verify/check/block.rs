//! One block: what its header and CRC say (the first pass), how it stands against what was
//! expected, and what a bad one holds (the bytes compared sector by sector with what was
//! written there).

use super::super::fill::fill_block;
use super::super::format::{block_crc, crc_ok, stored_crc, BlockHeader, CRC_AT, WRITE_TIME_AT};
use super::super::{HEADER_BYTES, SECTOR_BYTES};
use super::sink::FindingClass;
use super::Expected;

/// Where a valid block says it belongs and how old it is: all of its header but the offset
/// and the write time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) run_id: u64,
    pub(super) client_id: u32,
    pub(super) stream: u32,
    pub(super) file_seq: u64,
    pub(super) generation: u64,
    pub(super) file_size_bytes: u64,
}

impl Key {
    pub(super) fn of(h: &BlockHeader) -> Key {
        Key {
            run_id: h.run_id,
            client_id: h.client_id,
            stream: h.stream,
            file_seq: h.file_seq,
            generation: h.generation,
            file_size_bytes: h.file_size_bytes,
        }
    }

    /// "client 100 stream 0 file 3 run 0x… generation 1".
    pub(super) fn describe(&self) -> String {
        format!(
            "client {} stream {} file {} run {:#018x} generation {}",
            self.client_id, self.stream, self.file_seq, self.run_id, self.generation
        )
    }
}

/// What the first pass sees in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Raw {
    /// A valid block (its CRC matches) of this block size at its own offset.
    Valid(Key),
    /// A valid block that says it belongs at another offset.
    Misplaced(Key, u64),
    /// Anything else: a CRC mismatch, no header, another block size.
    Bad,
}

/// The first look at the block at `pos`: header and CRC only.
pub(super) fn raw(block: &[u8], pos: u64) -> Raw {
    match BlockHeader::decode(block) {
        Ok(h) if h.block_bytes as usize == block.len() && crc_ok(block) => {
            if h.offset_bytes == pos {
                Raw::Valid(Key::of(&h))
            } else {
                Raw::Misplaced(Key::of(&h), h.offset_bytes)
            }
        }
        _ => Raw::Bad,
    }
}

/// "client 100 stream 0 file 3 run 0x… generation 2" with `?` for what is not known.
pub(super) fn describe_expected(e: &Expected) -> String {
    fn or_q<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or("?".into(), |v| v.to_string())
    }
    format!(
        "client {} stream {} file {} run {} generation {}",
        or_q(e.client_id),
        or_q(e.stream),
        or_q(e.file_seq),
        e.run_id.map_or("?".into(), |r| format!("{r:#018x}")),
        or_q(e.generation)
    )
}

/// How a valid block's key stands against the expectation: `None` if it is the one expected.
pub(super) fn judge(key: &Key, e: &Expected) -> Option<(FindingClass, String)> {
    let other = |v: u64, want: Option<u64>| want.is_some_and(|w| w != v);
    if other(key.client_id.into(), e.client_id.map(u64::from))
        || other(key.stream.into(), e.stream.map(u64::from))
        || other(key.file_seq, e.file_seq)
    {
        return Some((
            FindingClass::Misdirected,
            format!("a block of {}", key.describe()),
        ));
    }
    if other(key.run_id, e.run_id) {
        return Some((
            FindingClass::Misdirected,
            format!("a block of another run: {}", key.describe()),
        ));
    }
    match e.generation {
        Some(g) if key.generation < g => {
            return Some((
                FindingClass::Stale,
                format!("generation {} (an older write)", key.generation),
            ))
        }
        Some(g) if key.generation > g => {
            return Some((
                FindingClass::Misdirected,
                format!("generation {}, newer than expected", key.generation),
            ))
        }
        _ => {}
    }
    if other(key.file_size_bytes, e.file_size_bytes) {
        return Some((
            FindingClass::Misdirected,
            format!("a block of a file of {} bytes", key.file_size_bytes),
        ));
    }
    None
}

/// The header of the block expected at `pos`, if everything it needs is known.
fn expected_header(e: &Expected, pos: u64, write_time_ns: u64) -> Option<BlockHeader> {
    Some(BlockHeader {
        block_bytes: e.block_bytes?,
        run_id: e.run_id?,
        client_id: e.client_id?,
        stream: e.stream?,
        file_seq: e.file_seq?,
        offset_bytes: pos,
        generation: e.generation?,
        write_time_ns,
        file_size_bytes: e.file_size_bytes?,
    })
}

/// Sectors of a damaged block by how they compare with what was written.
#[derive(Default)]
struct Sectors {
    as_written: usize,
    zero: usize,
    other: usize,
    damaged: usize,
    bytes_differ: usize,
    first_diff: Option<(usize, u8, u8)>,
}

fn compare(found: &[u8], want: &[u8]) -> Sectors {
    let mut s = Sectors::default();
    for (i, (f, w)) in found
        .chunks(SECTOR_BYTES)
        .zip(want.chunks(SECTOR_BYTES))
        .enumerate()
    {
        let differ = f.iter().zip(w).filter(|(a, b)| a != b).count();
        if differ == 0 {
            s.as_written += 1;
        } else if f.iter().all(|&b| b == 0) {
            s.zero += 1;
        } else if differ * 2 > f.len() {
            s.other += 1;
        } else {
            s.damaged += 1;
            s.bytes_differ += differ;
            if s.first_diff.is_none() {
                if let Some(j) = f.iter().zip(w).position(|(a, b)| a != b) {
                    s.first_diff = Some((i * SECTOR_BYTES + j, f[j], w[j]));
                }
            }
        }
    }
    s
}

/// What a block that is not valid holds: zeroes, a torn write, or corrupt bytes. `scratch` is
/// a block-sized buffer for the bytes that should be there.
pub(super) fn classify_bad(
    block: &[u8],
    pos: u64,
    e: &Expected,
    scratch: &mut [u8],
) -> (FindingClass, String) {
    if block.iter().all(|&b| b == 0) {
        return (FindingClass::Torn, "zeroes".into());
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&block[WRITE_TIME_AT..WRITE_TIME_AT + 8]);
    let expect = expected_header(e, pos, u64::from_le_bytes(t))
        .filter(|h| h.block_bytes as usize == block.len() && scratch.len() == block.len());
    if let Some(h) = expect {
        fill_block(scratch, &h);
        // The stored CRC is compared through the CRC itself, not byte by byte.
        scratch[CRC_AT..HEADER_BYTES].copy_from_slice(&block[CRC_AT..HEADER_BYTES]);
        let s = compare(block, scratch);
        let n = s.as_written + s.zero + s.other + s.damaged;
        if let Some((at, got, want)) = s.first_diff {
            return (
                FindingClass::Corrupt,
                format!(
                    "{} byte(s) differ from what was written, the first at +{at} \
                     ({got:#04x}, written {want:#04x})",
                    s.bytes_differ
                ),
            );
        }
        if s.as_written == n {
            return (FindingClass::Corrupt, crc_text(block));
        }
        if s.as_written > 0 {
            return (
                FindingClass::Torn,
                format!(
                    "{} of {n} sectors as written, {} zero, {} of another write",
                    s.as_written, s.zero, s.other
                ),
            );
        }
    }
    match BlockHeader::decode(block) {
        Ok(h) => (
            FindingClass::Corrupt,
            format!(
                "{} (its header says {} offset {})",
                crc_text(block),
                Key::of(&h).describe(),
                h.offset_bytes
            ),
        ),
        Err(err) => (FindingClass::Corrupt, format!("not a verify block ({err})")),
    }
}

fn crc_text(block: &[u8]) -> String {
    format!(
        "CRC-32C {:#010x} stored, {:#010x} computed",
        stored_crc(block),
        block_crc(block)
    )
}
