//! A block's CRC-32C without a pass over its payload: the CRC is affine in the bytes, so the
//! CRC of `header ‖ (base ⊕ mask repeated)` follows from the header's CRC, the base's CRC
//! (once per chunk) and the mask through tables made once per block size.
//!
//! With `crc` CRC-32C (initial value and final xor all ones) and `n` the payload's length:
//! - `crc(A ‖ B) = Z(crc(A)) ⊕ crc(B)` where `Z` (feed `n` zero bytes to the register) is linear
//!   on 32 bits: four byte tables;
//! - for equal lengths, `crc(a ⊕ b) = crc(a) ⊕ crc(b) ⊕ crc(0ⁿ)`, and `crc(rep(x)) = crc(0ⁿ) ⊕
//!   L(x)` with `L` linear in the 128-bit mask `x`: sixteen byte tables. So
//!   `crc(base ⊕ rep(x)) = crc(base) ⊕ L(x)`.

use std::sync::OnceLock;

use super::super::{HEADER_BYTES, MAX_BLOCK_BYTES, MIN_BLOCK_BYTES};

/// The tables of one block size.
pub(super) struct Tables {
    /// `Z` by byte: `zero[k][v] = Z(v << 8k)`.
    zero: [[u32; 256]; 4],
    /// `L` by byte: `mask[k][v] = L(v << 8k)`.
    mask: [[u32; 256]; 16],
}

/// One table set per allowed block size (2⁹ … 2²⁰), made on first use.
static TABLES: [OnceLock<Box<Tables>>; 12] = [const { OnceLock::new() }; 12];

/// Byte tables of a linear map from its values on single bits.
fn by_byte<const K: usize>(bits: &[u32]) -> Box<[[u32; 256]; K]> {
    let mut t = Box::new([[0u32; 256]; K]);
    for (k, table) in t.iter_mut().enumerate() {
        for (v, out) in table.iter_mut().enumerate() {
            *out = (0..8)
                .filter(|b| v >> b & 1 == 1)
                .fold(0, |acc, b| acc ^ bits[8 * k + b]);
        }
    }
    t
}

impl Tables {
    fn new(block_bytes: u32) -> Tables {
        let n = block_bytes as usize - HEADER_BYTES;
        let zeros = vec![0u8; n];
        let cz = crc32c::crc32c(&zeros);
        let zero_bits: Vec<u32> = (0..32)
            .map(|i| crc32c::crc32c_append(1u32 << i, &zeros) ^ cz)
            .collect();
        let mut rep = vec![0u8; n];
        let mask_bits: Vec<u32> = (0..128)
            .map(|i| {
                let w = (1u128 << i).to_le_bytes();
                for c in rep.chunks_exact_mut(16) {
                    c.copy_from_slice(&w);
                }
                crc32c::crc32c(&rep) ^ cz
            })
            .collect();
        Tables {
            zero: *by_byte::<4>(&zero_bits),
            mask: *by_byte::<16>(&mask_bits),
        }
    }

    /// `Z(v)`: the CRC of `A ‖ B` is `shift(crc(A)) ⊕ crc(B)` for a payload-long `B`.
    #[inline]
    pub(super) fn shift(&self, v: u32) -> u32 {
        let b = v.to_le_bytes();
        self.zero[0][b[0] as usize]
            ^ self.zero[1][b[1] as usize]
            ^ self.zero[2][b[2] as usize]
            ^ self.zero[3][b[3] as usize]
    }

    /// `L(x)`: the CRC of `base ⊕ rep(x)` is `crc(base) ⊕ mask_crc(x)`.
    #[inline]
    pub(super) fn mask_crc(&self, x: u128) -> u32 {
        x.to_le_bytes()
            .iter()
            .zip(&self.mask)
            .fold(0, |acc, (&b, t)| acc ^ t[b as usize])
    }
}

/// The tables of a block size (one of the allowed ones: the caller checked it).
pub(super) fn tables(block_bytes: u32) -> &'static Tables {
    let i = block_bytes
        .clamp(MIN_BLOCK_BYTES, MAX_BLOCK_BYTES)
        .trailing_zeros()
        .saturating_sub(MIN_BLOCK_BYTES.trailing_zeros()) as usize;
    TABLES[i.min(TABLES.len() - 1)].get_or_init(|| Box::new(Tables::new(block_bytes)))
}
