//! Fuzzes the verify block header decoder and the block checker, as `loadmon verify` meets a
//! hostile file: arbitrary bytes as a header and as a whole file, and (from the first byte)
//! a valid two-block file overwritten by the input from some offset, so that the checker's
//! paths past the magic and the CRC are reached.
//! Invariants: no panic; a decoded header follows every rule (block size a power of two in
//! bounds, the offset a multiple of it, inside the file size it claims) and encodes back to
//! the same bytes; checking the bytes as a file never panics, keeps at most the findings asked
//! for, and counts no more blocks than the file holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadmon::verify::{
    check_block_bytes, check_file, fill_chunk, BlockContext, BlockHeader, Expected,
    VerifyConfig, HEADER_BYTES,
};

/// Two valid 512-byte blocks of client 100's file 3, `rest` written over them from `at`.
fn damaged(at: usize, rest: &[u8]) -> Vec<u8> {
    let ctx = BlockContext {
        block_bytes: 512,
        run_id: 5,
        client_id: 100,
        stream: 0,
        file_seq: 3,
        generation: 2,
        write_time_ns: 0,
        file_size_bytes: 1024,
    };
    let mut f = vec![0u8; 1024];
    fill_chunk(&mut f, &ctx, 0).expect("a valid context");
    for (i, &b) in rest.iter().enumerate() {
        match f.get_mut(at + i) {
            Some(x) => *x = b,
            None => f.push(b),
        }
    }
    f
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let owned;
    let data = if mode % 2 == 0 {
        rest
    } else {
        owned = damaged(usize::from(mode / 2) * 8, rest);
        &owned[..]
    };
    if let Ok(h) = BlockHeader::decode(data) {
        let bs = check_block_bytes(u64::from(h.block_bytes)).expect("decoded block size");
        assert_eq!(h.offset_bytes % bs, 0);
        assert!(h.offset_bytes < h.file_size_bytes);
        let mut again = vec![0u8; HEADER_BYTES];
        h.encode(&mut again);
        // The CRC field (76..80) is not part of the header's encoding.
        assert_eq!(again[..76], data[..76]);
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("client_100_3_2026-12-05_10.11.12");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let config = VerifyConfig { max_findings: 4, ..Default::default() };
    let r = check_file(&path, &Expected::default(), &config).expect("a readable file");
    assert!(r.findings.len() <= 4);
    assert!(r.blocks_checked * 512 <= data.len() as u64);
    assert!(r.blocks_ok <= r.blocks_checked);
});
