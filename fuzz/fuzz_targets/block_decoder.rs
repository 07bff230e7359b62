//! Fuzzes the verify block header decoder and the block checker, as `loadmon verify` meets a
//! hostile file: arbitrary bytes as a header, and as a whole file.
//! Invariants: no panic; a decoded header follows every rule (block size a power of two in
//! bounds, the offset a multiple of it, inside the file size it claims) and encodes back to
//! the same bytes; checking the bytes as a file never panics, keeps at most the findings asked
//! for, and counts no more blocks than the file holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadmon::verify::{
    check_block_bytes, check_file, BlockHeader, Expected, VerifyConfig, HEADER_BYTES,
};

fuzz_target!(|data: &[u8]| {
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
