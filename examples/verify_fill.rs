//! Writes data files as the file writer will with `--verify`: every 16 MiB piece filled by
//! `loadmon::verify::fill_chunk` just before it is written (or, with `--plain`, one buffer of
//! `0x5a` written again and again, as the writer does today). States MiB/s and CPU per GiB, so
//! the cost of the headers can be measured apart from the writer, on any disk, and makes files
//! for `loadmon verify` (and the read-back figures of docs/VERIFY.md).
//!
//! Run: `cargo run --release --example verify_fill -- --dir /data --files 2 --size-mb 1024
//! [--direct] [--plain] [--client 100] [--block 4096]`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use loadmon::verify::{fill_chunk, new_run_id, BlockContext};

/// Bytes written at once.
const PIECE: usize = 16 << 20;

#[derive(Parser, Debug)]
#[command(about = "Write verified data files and state the fill's cost")]
struct Args {
    /// Directory to write in.
    #[arg(long)]
    dir: PathBuf,
    /// Files to write.
    #[arg(long, default_value_t = 1)]
    files: u64,
    /// Size of each file, MiB (a multiple of 16).
    #[arg(long, default_value_t = 1024)]
    size_mb: u64,
    /// Open with O_DIRECT.
    #[arg(long)]
    direct: bool,
    /// Write 0x5a bytes without headers (the writer without --verify).
    #[arg(long)]
    plain: bool,
    /// The client id in names and headers.
    #[arg(long, default_value_t = 100)]
    client: u32,
    /// Verify block size, bytes.
    #[arg(long, default_value_t = 4096)]
    block: u32,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let size = a.size_mb << 20;
    if size == 0 || size % PIECE as u64 != 0 {
        return Err("--size-mb must be a positive multiple of 16".into());
    }
    let mut raw = vec![0x5au8; PIECE + 4096];
    let start = raw.as_ptr().align_offset(4096).min(4096);
    let buf = &mut raw[start..start + PIECE];
    let run_id = new_run_id()?;
    let cpu0 = loadmon::stats::thread_cpu_ns(None);
    let t = Instant::now();
    for n in 0..a.files {
        let path = a
            .dir
            .join(format!("client_{}_{n}_2026-12-05_00.00.00", a.client));
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        if a.direct {
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_DIRECT);
        }
        let mut f = opts.open(&path)?;
        let mut ctx = BlockContext {
            block_bytes: a.block,
            run_id,
            client_id: a.client,
            stream: 0,
            file_seq: n,
            generation: 1,
            write_time_ns: 0,
            file_size_bytes: size,
        };
        let mut off = 0;
        while off < size {
            if !a.plain {
                ctx.write_time_ns = now_ns();
                fill_chunk(buf, &ctx, off)?;
            }
            f.write_all(buf)?;
            off += PIECE as u64;
        }
        f.sync_all()?;
    }
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu0
        .zip(loadmon::stats::thread_cpu_ns(None))
        .map(|(a, b)| (b - a) as f64 / 1e9);
    let gib = (a.files * size) as f64 / (1u64 << 30) as f64;
    println!(
        "{} {} file(s) of {} MiB: {:.1} MiB/s, CPU {} s per GiB",
        if a.plain { "plain" } else { "verified" },
        a.files,
        a.size_mb,
        gib * 1024.0 / s,
        cpu.map_or("-".into(), |c| format!("{:.3}", c / gib))
    );
    Ok(())
}
