//! Protocol micro-benchmarks: parse and encode, per message. `cargo bench --bench protocol`.
//! `cargo test --benches` runs each once (as `make test` does) so they cannot rot.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use loadmon::protocol::Message;

fn lines() -> Vec<(&'static str, &'static str)> {
    vec![
        ("hb", "hb"),
        ("send_stats", "send_stats:12.34:0.05"),
        ("file_stats", "file_stats:10:50"),
        ("write_stats", "write_stats:52428800:812:2400"),
        ("set_cid", "set_cid:100"),
        (
            "error",
            "error:write /data/client_100_3: No space left on device (os error 28)",
        ),
    ]
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, line) in lines() {
        g.bench_function(name, |b| b.iter(|| Message::parse(black_box(line))));
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (name, line) in lines() {
        let m = Message::parse(line).expect("valid line");
        g.bench_function(name, |b| b.iter(|| black_box(&m).encode()));
    }
    g.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
