//! Property tests of the verify checker against hostile and damaged files: arbitrary bytes,
//! and valid files with arbitrary damage. Never a panic; counts that add up; the findings kept
//! within the bound; damage that changes a block's bytes never passes as written.

use std::collections::BTreeSet;

use loadmon::verify::{check_file, fill_chunk, BlockContext, BlockHeader, Expected, VerifyConfig};
use proptest::prelude::*;

const BS: usize = 512;
const BLOCKS: usize = 16;

fn ctx() -> BlockContext {
    BlockContext {
        block_bytes: BS as u32,
        run_id: 3,
        client_id: 100,
        stream: 0,
        file_seq: 0,
        generation: 1,
        write_time_ns: 9,
        file_size_bytes: (BS * BLOCKS) as u64,
    }
}

fn valid_file() -> Vec<u8> {
    let mut data = vec![0u8; BS * BLOCKS];
    fill_chunk(&mut data, &ctx(), 0).unwrap();
    data
}

/// Checks `data` as a file, the way the writer's own check would (all known) and the way
/// `loadmon verify` would (nothing known but the name).
fn check_both(data: &[u8]) -> Vec<loadmon::verify::FileReport> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client_100_0_2026-12-05_10.11.12");
    std::fs::write(&path, data).unwrap();
    let config = VerifyConfig {
        max_findings: 3,
        ..Default::default()
    };
    [Expected::of(&ctx()), Expected::default()]
        .iter()
        .map(|e| {
            let r = check_file(&path, e, &config).unwrap();
            assert!(r.findings.len() <= 3);
            assert!(r.blocks_ok <= r.blocks_checked);
            assert_eq!(
                r.blocks_checked,
                (data.len() / r.expected.block_bytes.unwrap() as usize) as u64
            );
            let bad_read = r.blocks_checked - r.blocks_ok;
            let bad = r.errors.total() - r.errors.short;
            assert_eq!(bad, bad_read, "{r:#?}");
            r
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3 * BS)) {
        let _ = BlockHeader::decode(&data);
        check_both(&data);
    }

    #[test]
    fn damage_is_found_in_the_blocks_it_touches(
        edits in proptest::collection::vec((0..BS * BLOCKS, any::<u8>()), 1..8),
        cut in proptest::option::of(0..BS * BLOCKS),
    ) {
        let good = valid_file();
        let mut data = good.clone();
        for &(at, v) in &edits {
            data[at] = v;
        }
        if let Some(c) = cut {
            data.truncate(c);
        }
        let touched: BTreeSet<u64> = (0..data.len() / BS)
            .filter(|&b| data[b * BS..(b + 1) * BS] != good[b * BS..(b + 1) * BS])
            .map(|b| (b * BS) as u64)
            .collect();
        let full = &check_both(&data)[0];
        // Known everything: exactly the changed blocks are bad, the others as written.
        prop_assert_eq!(full.blocks_ok, (data.len() / BS - touched.len()) as u64);
        for f in full.findings.iter().filter(|f| f.class != loadmon::verify::FindingClass::Short) {
            for b in 0..f.blocks {
                prop_assert!(touched.contains(&(f.offset_bytes + b * BS as u64)), "{:?}", f);
            }
        }
        prop_assert_eq!(full.errors.short > 0, data.len() < good.len());
    }
}
