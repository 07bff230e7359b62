//! Verified data: how fast a chunk is filled (header, generator, CRC-32C) and checked (CRC
//! and header), per core. `cargo bench --bench verify`; `cargo test --benches` runs each once.
//!
//! The parts are measured apart so a profile can say what limits a fill: the generator alone,
//! the CRC-32C alone, the whole fill, and for scale a plain `fill` of the buffer (what writing
//! without verification costs the CPU per chunk: nothing, the buffer is filled once).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loadmon::verify::{check_file, fill_chunk, fill_payload, BlockContext, Expected, VerifyConfig};

/// One piece as the writer writes it (16 MiB).
const PIECE: usize = 16 << 20;

fn ctx(block_bytes: u32) -> BlockContext {
    BlockContext {
        block_bytes,
        run_id: 1,
        client_id: 100,
        stream: 0,
        file_seq: 0,
        generation: 1,
        write_time_ns: 0,
        file_size_bytes: 1 << 30,
    }
}

fn fill(c: &mut Criterion) {
    let mut g = c.benchmark_group("fill");
    g.throughput(Throughput::Bytes(PIECE as u64));
    g.measurement_time(Duration::from_secs(3));
    let mut buf = vec![0u8; PIECE];
    for bs in [4096u32, 65536] {
        g.bench_function(format!("fill_chunk_{bs}"), |b| {
            let mut off = 0u64;
            b.iter(|| {
                fill_chunk(black_box(&mut buf), &ctx(bs), off).unwrap();
                off = (off + PIECE as u64) % (1 << 30);
            })
        });
    }
    g.bench_function("generator_only", |b| {
        b.iter(|| fill_payload(black_box(&mut buf), 7))
    });
    g.bench_function("crc32c_only", |b| {
        b.iter(|| black_box(crc32c::crc32c(black_box(&buf))))
    });
    g.bench_function("memset", |b| b.iter(|| black_box(&mut buf).fill(0x5a)));
    g.finish();
}

fn check(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client_100_0_2026-12-05_10.11.12");
    let size = 64usize << 20;
    let mut data = vec![0u8; size];
    let mut cx = ctx(4096);
    cx.file_size_bytes = size as u64;
    fill_chunk(&mut data, &cx, 0).unwrap();
    std::fs::write(&path, &data).unwrap();
    let mut g = c.benchmark_group("check");
    g.throughput(Throughput::Bytes(size as u64));
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(10);
    // From the page cache: the checker's CPU per byte, not the disk's speed.
    g.bench_function("check_file_cached_4096", |b| {
        b.iter(|| {
            let r = check_file(&path, &Expected::default(), &VerifyConfig::default()).unwrap();
            assert_eq!(r.errors.total(), 0);
        })
    });
    g.finish();
}

criterion_group!(benches, fill, check);
criterion_main!(benches);
