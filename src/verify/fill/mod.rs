//! Filling blocks: the payload generator (a file's base from wyrand's products, each block's
//! mask from its place) and [`fill_chunk`], which the writer calls to fill a chunk buffer in
//! place, computing each block's CRC-32C from precomputed parts ([`fast`]) rather than over
//! its bytes.

use super::format::{seal, BlockHeader, CRC_AT};
use super::{check_block_bytes, HEADER_BYTES};
use crate::error::{Error, Result};

/// wyrand's increment (and the seed's first constant).
const P0: u64 = 0xa076_1d64_78bd_642f;
/// wyrand's xor constant.
const P1: u64 = 0xe703_7ed1_a0b4_28db;
/// The seed's third constant (wyhash's secret).
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
/// The seed's fourth constant (wyhash's secret).
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// The 128-bit product of `a` and `b`, its halves xored (wyhash's `mum`).
#[inline(always)]
fn mum(a: u64, b: u64) -> u64 {
    let t = u128::from(a) * u128::from(b);
    (t as u64) ^ ((t >> 64) as u64)
}

mod fast;

/// The file's part of the seeds: run, client, stream, file, generation.
fn file_part(h: &BlockHeader) -> u64 {
    let who = (u64::from(h.client_id) << 32) | u64::from(h.stream);
    let a = mum(h.run_id ^ P0, who ^ P1);
    mum(a ^ h.file_seq ^ P2, h.generation ^ P3)
}

/// The seed of a file's base payload: its run, client, stream, file and generation (not the
/// write time, nor the sizes), so that a checker that knows where a block belongs can make the
/// bytes that belong there.
pub fn file_seed(h: &BlockHeader) -> u64 {
    mum(file_part(h) ^ P2, P3)
}

/// The seed of a block's mask: the file's part and the block's offset.
pub fn block_seed(h: &BlockHeader) -> u64 {
    mum(file_part(h) ^ h.offset_bytes ^ P0, P1)
}

/// A block's mask: the 16-byte word xored into every 16-byte word of its file's base payload.
#[inline]
pub fn block_mask(h: &BlockHeader) -> u128 {
    word(block_seed(h))
}

/// Fills `payload` (a multiple of 16 bytes; a remainder is left as it is) with a base payload
/// from `seed` ([`file_seed`]): its 16-byte word `j` (from 0) is the 128-bit product
/// `s * (s ^ P1)`, little-endian, with `s = seed + (j + 1) * P0` (wrapping): wyrand's step,
/// its product kept whole (16 bytes per multiply).
#[inline]
pub fn fill_payload(payload: &mut [u8], seed: u64) {
    let mut s = seed;
    // Four products per step: independent multiplies the CPU overlaps.
    let mut quads = payload.chunks_exact_mut(64);
    for q in &mut quads {
        let s1 = s.wrapping_add(P0);
        let s2 = s.wrapping_add(P0.wrapping_mul(2));
        let s3 = s.wrapping_add(P0.wrapping_mul(3));
        let s4 = s.wrapping_add(P0.wrapping_mul(4));
        q[0..16].copy_from_slice(&word(s1).to_le_bytes());
        q[16..32].copy_from_slice(&word(s2).to_le_bytes());
        q[32..48].copy_from_slice(&word(s3).to_le_bytes());
        q[48..64].copy_from_slice(&word(s4).to_le_bytes());
        s = s4;
    }
    for w in quads.into_remainder().chunks_exact_mut(16) {
        s = s.wrapping_add(P0);
        w.copy_from_slice(&word(s).to_le_bytes());
    }
}

/// One 16-byte word of the payload from its state.
#[inline(always)]
fn word(s: u64) -> u128 {
    u128::from(s) * u128::from(s ^ P1)
}

/// What a writer stamps on every block of a file: all of a [`BlockHeader`] but the offset,
/// which [`fill_chunk`] derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BlockContext {
    /// Block size, bytes ([`check_block_bytes`]).
    pub block_bytes: u32,
    /// The run (random per run: [`new_run_id`](super::new_run_id)).
    pub run_id: u64,
    /// The writer's client id.
    pub client_id: u32,
    /// The writer's stream (0 for a single-stream client, whose names carry none).
    pub stream: u32,
    /// The file's sequence number in its stream.
    pub file_seq: u64,
    /// Write generation (1 for a file's first write).
    pub generation: u64,
    /// When the chunk is filled, Unix nanoseconds (set it per chunk).
    pub write_time_ns: u64,
    /// The size the file will have, bytes (a multiple of `block_bytes`).
    pub file_size_bytes: u64,
}

impl BlockContext {
    /// Checks the sizes: the block size's bounds, a file size that is a whole number of
    /// blocks.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bound.
    pub fn validate(&self) -> Result<()> {
        let bs = check_block_bytes(u64::from(self.block_bytes))?;
        if self.file_size_bytes == 0 || !self.file_size_bytes.is_multiple_of(bs) {
            return Err(Error::Config(format!(
                "verify: a file of {} bytes is not a whole number of {bs}-byte verify blocks \
                 (the file and chunk sizes must be multiples of --verify-block)",
                self.file_size_bytes
            )));
        }
        Ok(())
    }

    /// The header of the block at `offset_bytes`.
    pub fn header(&self, offset_bytes: u64) -> BlockHeader {
        BlockHeader {
            block_bytes: self.block_bytes,
            run_id: self.run_id,
            client_id: self.client_id,
            stream: self.stream,
            file_seq: self.file_seq,
            offset_bytes,
            generation: self.generation,
            write_time_ns: self.write_time_ns,
            file_size_bytes: self.file_size_bytes,
        }
    }
}

/// Writes `base` with `mask` xored into every 16-byte word (little-endian) to `payload`.
#[inline]
fn xor_mask(payload: &mut [u8], base: &[u8], mask: u128) {
    let (words, _) = payload.as_chunks_mut::<16>();
    let (base, _) = base.as_chunks::<16>();
    for (d, s) in words.iter_mut().zip(base) {
        // Fixed 16-byte arrays: no bounds checks, one xor per word.
        *d = (u128::from_le_bytes(*s) ^ mask).to_le_bytes();
    }
}

/// Fills one whole block (`block.len() == h.block_bytes`) the plain way, as docs/VERIFY.md
/// defines it: header, base payload, mask, CRC over the bytes. The reference [`fill_chunk`]'s
/// fast path is tested against, and what the checker compares a damaged block with.
pub(crate) fn fill_block(block: &mut [u8], h: &BlockHeader) {
    h.encode(block);
    let payload = &mut block[HEADER_BYTES..];
    fill_payload(payload, file_seed(h));
    let mask = block_mask(h);
    for w in payload.chunks_exact_mut(16) {
        let mut b = [0u8; 16];
        b.copy_from_slice(w);
        w.copy_from_slice(&(u128::from_le_bytes(b) ^ mask).to_le_bytes());
    }
    seal(block);
}

/// Fills `buf`, the bytes of a file from `file_offset_bytes` on, with self-describing blocks:
/// each block gets its header (the place in the file from `file_offset_bytes`), the payload
/// its header seeds, and its CRC-32C. The writer calls it for each chunk (or each piece of a
/// chunk) before writing `buf` at `file_offset_bytes`.
///
/// # Examples
/// ```
/// use loadmon::verify::{fill_chunk, BlockContext};
///
/// let ctx = BlockContext {
///     block_bytes: 4096, run_id: 7, client_id: 100, stream: 0, file_seq: 0,
///     generation: 1, write_time_ns: 0, file_size_bytes: 1 << 20,
/// };
/// let mut chunk = vec![0u8; 64 * 1024];
/// fill_chunk(&mut chunk, &ctx, 128 * 1024).unwrap();
/// assert_eq!(&chunk[..8], b"loadmonB");
/// ```
///
/// # Errors
/// [`Error::Config`] for sizes that break a rule: the context's ([`BlockContext::validate`]),
/// `buf` or the offset not a whole number of blocks, or `buf` reaching past the file's size.
pub fn fill_chunk(buf: &mut [u8], ctx: &BlockContext, file_offset_bytes: u64) -> Result<()> {
    ctx.validate()?;
    let bs = u64::from(ctx.block_bytes);
    let len = buf.len() as u64;
    if !len.is_multiple_of(bs) || !file_offset_bytes.is_multiple_of(bs) {
        return Err(Error::Config(format!(
            "verify: a chunk of {len} bytes at offset {file_offset_bytes} is not a whole \
             number of {bs}-byte verify blocks"
        )));
    }
    if file_offset_bytes.saturating_add(len) > ctx.file_size_bytes {
        return Err(Error::Config(format!(
            "verify: a chunk of {len} bytes at offset {file_offset_bytes} reaches past the \
             file's {} bytes",
            ctx.file_size_bytes
        )));
    }
    let mut h = ctx.header(file_offset_bytes);
    let n = bs as usize - HEADER_BYTES;
    let t = fast::tables(ctx.block_bytes);
    // The file's base payload and its CRC, once per call; each block is the base with its
    // mask, and its CRC follows from the parts' (fast.rs).
    let mut base = vec![0u8; n];
    fill_payload(&mut base, file_seed(&h));
    let base_crc = crc32c::crc32c(&base);
    for block in buf.chunks_exact_mut(bs as usize) {
        h.encode(block);
        let mask = block_mask(&h);
        xor_mask(&mut block[HEADER_BYTES..], &base, mask);
        let head = crc32c::crc32c(&block[..CRC_AT]);
        let crc = t.shift(head) ^ base_crc ^ t.mask_crc(mask);
        block[CRC_AT..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
        h.offset_bytes += bs;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::format::crc_ok;
    use super::*;

    fn ctx() -> BlockContext {
        BlockContext {
            block_bytes: 4096,
            run_id: 42,
            client_id: 100,
            stream: 0,
            file_seq: 3,
            generation: 1,
            write_time_ns: 5,
            file_size_bytes: 1 << 20,
        }
    }

    #[test]
    fn the_generator_is_the_documented_product_word_by_word() {
        // The 4-word loop and the remainder give what the one-word definition gives.
        for len in [0usize, 16, 48, 64, 80, 4016] {
            let mut fast = vec![0u8; len];
            fill_payload(&mut fast, 99);
            let mut s = 99u64;
            for (i, w) in fast.chunks_exact(16).enumerate() {
                s = s.wrapping_add(P0);
                let t = u128::from(s) * u128::from(s ^ P1);
                assert_eq!(w, t.to_le_bytes(), "word {i} of {len}");
            }
        }
    }

    #[test]
    fn the_fast_fill_is_the_plain_definition_for_every_block_size() {
        for shift in 9..=20u32 {
            let bs = 1u32 << shift;
            for (i, gen) in [(0u64, 1u64), (3, 7), (1, u64::MAX)] {
                let c = BlockContext {
                    block_bytes: bs,
                    run_id: 0x1234_5678_9abc_def0 ^ i,
                    client_id: 100 + i as u32,
                    stream: i as u32,
                    file_seq: i * 11,
                    generation: gen,
                    write_time_ns: 77,
                    file_size_bytes: 4 * u64::from(bs),
                };
                let mut fast = vec![0u8; 2 * bs as usize];
                fill_chunk(&mut fast, &c, u64::from(bs)).unwrap();
                for (k, b) in fast.chunks_exact(bs as usize).enumerate() {
                    let mut plain = vec![0u8; bs as usize];
                    fill_block(&mut plain, &c.header(u64::from(bs) * (1 + k as u64)));
                    assert!(b == plain.as_slice(), "block size {bs}, block {k}");
                    assert!(crc_ok(b));
                }
            }
        }
    }

    #[test]
    fn blocks_carry_their_place_and_a_good_crc() {
        let mut buf = vec![0u8; 16 * 4096];
        fill_chunk(&mut buf, &ctx(), 8 * 4096).unwrap();
        for (i, b) in buf.chunks_exact(4096).enumerate() {
            let h = BlockHeader::decode(b).unwrap();
            assert_eq!(h, ctx().header((8 + i as u64) * 4096));
            assert!(crc_ok(b));
        }
        // Another offset, generation or run: other bytes.
        let mut other = vec![0u8; 4096];
        fill_chunk(&mut other, &ctx(), 9 * 4096).unwrap();
        assert_ne!(other[HEADER_BYTES..], buf[HEADER_BYTES..4096]);
        let mut c = ctx();
        c.generation = 2;
        fill_chunk(&mut other, &c, 8 * 4096).unwrap();
        assert_ne!(other[HEADER_BYTES..], buf[HEADER_BYTES..4096]);
    }

    #[test]
    fn sizes_that_break_a_rule_are_clear_errors() {
        let mut buf = vec![0u8; 4096];
        let e = fill_chunk(&mut buf[..100], &ctx(), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole number of 4096-byte"), "{e}");
        let e = fill_chunk(&mut buf, &ctx(), 1).unwrap_err().to_string();
        assert!(e.contains("offset 1"), "{e}");
        let e = fill_chunk(&mut buf, &ctx(), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("past the file"), "{e}");
        let mut c = ctx();
        c.block_bytes = 1000;
        let e = fill_chunk(&mut buf, &c, 0).unwrap_err().to_string();
        assert!(e.contains("power of two"), "{e}");
        let mut c = ctx();
        c.file_size_bytes = 5000;
        assert!(fill_chunk(&mut buf, &c, 0).unwrap_err().is_config());
    }
}

#[cfg(test)]
mod vector {
    use super::super::format::stored_crc;
    use super::*;

    /// docs/VERIFY.md's test vector, for another implementation to check itself against.
    #[test]
    fn the_documented_test_vector() {
        let ctx = BlockContext {
            block_bytes: 512,
            run_id: 1,
            client_id: 100,
            stream: 0,
            file_seq: 0,
            generation: 1,
            write_time_ns: 0,
            file_size_bytes: 1024,
        };
        let mut b = vec![0u8; 512];
        fill_chunk(&mut b, &ctx, 512).unwrap();
        let seed = block_seed(&ctx.header(512));
        let fseed = file_seed(&ctx.header(512));
        let word: String = b[80..96].iter().map(|x| format!("{x:02x}")).collect();
        let text = format!(
            "file {fseed:#018x} block {seed:#018x} word0 {word} crc {:#010x}",
            stored_crc(&b)
        );
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            text,
            "file 0xb6c308a83a229e0c block 0x7408569e1b86ed20 \
             word0 c0bfbfa7a9b3632b6a420da23ff3ae7e crc 0x66313f5d"
        );
    }
}
