//! The block header: its layout (docs/VERIFY.md), encode and a decoder that never trusts its
//! input, and the block's CRC-32C.

use std::fmt;

use super::{check_block_bytes, HEADER_BYTES};

/// The first 8 bytes of every block.
pub const MAGIC: [u8; 8] = *b"loadmonB";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Where the header's CRC-32C field is: the CRC covers the block without these 4 bytes.
pub(crate) const CRC_AT: usize = 76;
/// Where the write time is (the one header field the payload seed leaves out).
pub(crate) const WRITE_TIME_AT: usize = 56;

/// What one block's header says: where it belongs and when it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct BlockHeader {
    /// Size of the block, bytes (a power of two, [`MIN_BLOCK_BYTES`](super::MIN_BLOCK_BYTES) to
    /// [`MAX_BLOCK_BYTES`](super::MAX_BLOCK_BYTES)).
    pub block_bytes: u32,
    /// The run that wrote it (random per run).
    pub run_id: u64,
    /// The client id of the writer.
    pub client_id: u32,
    /// The writer's stream within the client (0 for a single-stream client).
    pub stream: u32,
    /// The file's sequence number `n` in its stream (from 0).
    pub file_seq: u64,
    /// Offset of the block in its file, bytes (a multiple of `block_bytes`).
    pub offset_bytes: u64,
    /// Write generation of this place: 1 for the first write of the file, one more for each
    /// rewrite of it.
    pub generation: u64,
    /// When the chunk holding the block was filled, Unix nanoseconds.
    pub write_time_ns: u64,
    /// Size the file was meant to have, bytes (a multiple of `block_bytes`).
    pub file_size_bytes: u64,
}

/// Why bytes are not a block header of this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    TooShort(usize),
    /// The magic is not [`MAGIC`].
    Magic,
    /// Another format version.
    Version(u16),
    /// Another header size than [`HEADER_BYTES`].
    HeaderSize(u16),
    /// A block size out of bounds or not a power of two.
    BlockSize(u32),
    /// The reserved field is not 0.
    Reserved(u32),
    /// The offset is not a multiple of the block size.
    Unaligned(u64),
    /// The file size is not a multiple of the block size, or the block lies past it.
    FileSize(u64),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderError::TooShort(n) => {
                write!(f, "{n} bytes, fewer than a {HEADER_BYTES}-byte header")
            }
            HeaderError::Magic => write!(f, "no block magic"),
            HeaderError::Version(v) => {
                write!(f, "format version {v} (this reads {FORMAT_VERSION})")
            }
            HeaderError::HeaderSize(n) => write!(f, "header size {n} (expected {HEADER_BYTES})"),
            HeaderError::BlockSize(n) => write!(f, "block size {n} out of bounds"),
            HeaderError::Reserved(v) => write!(f, "reserved field {v:#x} is not 0"),
            HeaderError::Unaligned(o) => {
                write!(f, "offset {o} is not a multiple of the block size")
            }
            HeaderError::FileSize(s) => write!(f, "file size {s} does not hold the block"),
        }
    }
}

impl std::error::Error for HeaderError {}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut w = [0u8; 2];
    w.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl BlockHeader {
    /// Writes the header into `out[..HEADER_BYTES]`, its CRC field 0 (the CRC is stored once
    /// the payload is in place).
    ///
    /// # Panics
    /// If `out` is shorter than [`HEADER_BYTES`] (callers hold whole blocks).
    pub fn encode(&self, out: &mut [u8]) {
        let h = &mut out[..HEADER_BYTES];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&(HEADER_BYTES as u16).to_le_bytes());
        h[12..16].copy_from_slice(&self.block_bytes.to_le_bytes());
        h[16..24].copy_from_slice(&self.run_id.to_le_bytes());
        h[24..28].copy_from_slice(&self.client_id.to_le_bytes());
        h[28..32].copy_from_slice(&self.stream.to_le_bytes());
        h[32..40].copy_from_slice(&self.file_seq.to_le_bytes());
        h[40..48].copy_from_slice(&self.offset_bytes.to_le_bytes());
        h[48..56].copy_from_slice(&self.generation.to_le_bytes());
        h[56..64].copy_from_slice(&self.write_time_ns.to_le_bytes());
        h[64..72].copy_from_slice(&self.file_size_bytes.to_le_bytes());
        h[72..80].fill(0);
    }

    /// Reads a header from the start of `b`, checking every field that has a rule (not the
    /// CRC: see [`crc_ok`]). Never panics, allocates nothing.
    ///
    /// # Errors
    /// [`HeaderError`] for bytes that are not a header of this format.
    pub fn decode(b: &[u8]) -> Result<BlockHeader, HeaderError> {
        if b.len() < HEADER_BYTES {
            return Err(HeaderError::TooShort(b.len()));
        }
        if b[0..8] != MAGIC {
            return Err(HeaderError::Magic);
        }
        let version = u16_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        let header = u16_at(b, 10);
        if usize::from(header) != HEADER_BYTES {
            return Err(HeaderError::HeaderSize(header));
        }
        let block_bytes = u32_at(b, 12);
        if check_block_bytes(u64::from(block_bytes)).is_err() {
            return Err(HeaderError::BlockSize(block_bytes));
        }
        let reserved = u32_at(b, 72);
        if reserved != 0 {
            return Err(HeaderError::Reserved(reserved));
        }
        let h = BlockHeader {
            block_bytes,
            run_id: u64_at(b, 16),
            client_id: u32_at(b, 24),
            stream: u32_at(b, 28),
            file_seq: u64_at(b, 32),
            offset_bytes: u64_at(b, 40),
            generation: u64_at(b, 48),
            write_time_ns: u64_at(b, WRITE_TIME_AT),
            file_size_bytes: u64_at(b, 64),
        };
        let bs = u64::from(block_bytes);
        if !h.offset_bytes.is_multiple_of(bs) {
            return Err(HeaderError::Unaligned(h.offset_bytes));
        }
        if !h.file_size_bytes.is_multiple_of(bs) || h.offset_bytes >= h.file_size_bytes {
            return Err(HeaderError::FileSize(h.file_size_bytes));
        }
        Ok(h)
    }
}

/// The CRC-32C of a block: over all its bytes but the CRC field.
pub(crate) fn block_crc(block: &[u8]) -> u32 {
    let head = crc32c::crc32c(&block[..CRC_AT]);
    crc32c::crc32c_append(head, &block[HEADER_BYTES..])
}

/// The CRC stored in a block's header.
pub(crate) fn stored_crc(block: &[u8]) -> u32 {
    u32_at(block, CRC_AT)
}

/// Stores the block's CRC-32C in its header: the last step of filling a block.
pub(crate) fn seal(block: &mut [u8]) {
    let crc = block_crc(block);
    block[CRC_AT..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
}

/// Whether `block` (whole) carries a CRC-32C that matches its bytes.
pub fn crc_ok(block: &[u8]) -> bool {
    block.len() >= HEADER_BYTES && stored_crc(block) == block_crc(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            block_bytes: 4096,
            run_id: 0x0123_4567_89ab_cdef,
            client_id: 100,
            stream: 2,
            file_seq: 7,
            offset_bytes: 8192,
            generation: 1,
            write_time_ns: 1_700_000_000_000_000_000,
            file_size_bytes: 1 << 20,
        }
    }

    #[test]
    fn encode_decode_round_trip_and_layout() {
        let mut b = vec![0u8; 4096];
        header().encode(&mut b);
        assert_eq!(&b[0..8], b"loadmonB");
        assert_eq!(b[8], 1);
        assert_eq!(b[10], HEADER_BYTES as u8);
        assert_eq!(&b[24..28], &100u32.to_le_bytes());
        assert_eq!(BlockHeader::decode(&b), Ok(header()));
        seal(&mut b);
        assert!(crc_ok(&b));
        b[100] ^= 1;
        assert!(!crc_ok(&b));
    }

    #[test]
    fn decoder_refuses_what_breaks_a_rule() {
        let mut b = vec![0u8; 4096];
        header().encode(&mut b);
        let cases: Vec<(usize, u8, HeaderError)> = vec![
            (0, b'X', HeaderError::Magic),
            (8, 2, HeaderError::Version(2)),
            (10, 81, HeaderError::HeaderSize(81)),
            (12, 1, HeaderError::BlockSize(4097)),
            (72, 1, HeaderError::Reserved(1)),
            (40, 1, HeaderError::Unaligned(8193)),
            (64, 1, HeaderError::FileSize((1 << 20) + 1)),
        ];
        for (at, v, want) in cases {
            let mut c = b.clone();
            c[at] = v;
            assert_eq!(BlockHeader::decode(&c), Err(want), "byte {at}");
            assert!(!want.to_string().is_empty());
        }
        let mut past = header();
        past.offset_bytes = past.file_size_bytes;
        past.encode(&mut b);
        assert!(matches!(
            BlockHeader::decode(&b),
            Err(HeaderError::FileSize(_))
        ));
        assert_eq!(
            BlockHeader::decode(&b[..79]),
            Err(HeaderError::TooShort(79))
        );
    }
}
