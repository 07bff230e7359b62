//! Writes data files as the file writer will with `--verify`: every 16 MiB piece filled by
//! `loadmon::verify::fill_chunk` just before it is written (or, with `--plain`, one buffer of
//! `0x5a` written again and again, as the writer does today). States MiB/s and CPU per GiB, so
//! the cost of the headers can be measured apart from the writer, on any disk, and makes files
//! for `loadmon verify` (and the read-back figures of docs/VERIFY.md).
//!
//! Run: `cargo run --release --example verify_fill -- --dir /data --files 2 --size-mb 1024
//! [--direct] [--plain] [--overlap] [--client 100] [--block 4096]`. Nothing is fsynced: with
//! `--direct` the data is on the device when a write returns; without, the rate is that of
//! copying into the page cache (keep the files within the dirty limit to measure the CPU).

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
    /// Fill the next piece on a second thread while this one is written (two buffers).
    #[arg(long)]
    overlap: bool,
    /// Bytes written at once, KiB (a divisor of 16 MiB; with a piece that stays in the CPU's
    /// cache, the fill's bytes do not go to memory and back before the kernel copies them).
    #[arg(long, default_value_t = 16384)]
    piece_kb: usize,
}

/// An aligned 16 MiB buffer (its own allocation, moved between threads).
struct Piece {
    raw: Vec<u8>,
    start: usize,
}

impl Piece {
    fn new() -> Piece {
        let raw = vec![0x5au8; PIECE + 4096];
        let start = raw.as_ptr().align_offset(4096).min(4096);
        Piece { raw, start }
    }
    fn bytes(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + PIECE]
    }
}

/// Writes one file with a filler thread: it fills piece k+1 while piece k is written.
fn write_overlapped(
    f: &mut std::fs::File,
    ctx: BlockContext,
    size: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::mpsc::sync_channel;
    let (to_fill, fill_rx) = sync_channel::<(Piece, u64)>(2);
    let (filled_tx, filled) = sync_channel::<Piece>(2);
    let filler = std::thread::spawn(move || {
        let mut ctx = ctx;
        for (mut p, off) in fill_rx {
            ctx.write_time_ns = now_ns();
            fill_chunk(p.bytes(), &ctx, off).expect("fill");
            if filled_tx.send(p).is_err() {
                break;
            }
        }
    });
    let pieces = size / PIECE as u64;
    let mut next = 0u64;
    for _ in 0..2.min(pieces) {
        to_fill.send((Piece::new(), next * PIECE as u64))?;
        next += 1;
    }
    for _ in 0..pieces {
        let mut p = filled.recv()?;
        f.write_all(p.bytes())?;
        if next < pieces {
            to_fill.send((p, next * PIECE as u64))?;
            next += 1;
        }
    }
    drop(to_fill);
    filler.join().map_err(|_| "the filler panicked")?;
    Ok(())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let size = a.size_mb << 20;
    if size == 0 || !size.is_multiple_of(PIECE as u64) {
        return Err("--size-mb must be a positive multiple of 16".into());
    }
    if a.piece_kb == 0 || !PIECE.is_multiple_of(a.piece_kb << 10) {
        return Err("--piece-kb must divide 16384".into());
    }
    let mut raw = vec![0x5au8; PIECE + 4096];
    let start = raw.as_ptr().align_offset(4096).min(4096);
    let buf = &mut raw[start..start + PIECE];
    let run_id = new_run_id()?;
    let cpu0 = loadmon::stats::process_cpu_ns();
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
        if a.overlap && !a.plain {
            write_overlapped(&mut f, ctx, size)?;
            continue;
        }
        let piece = (a.piece_kb << 10).clamp(4096, PIECE);
        let buf = &mut buf[..piece];
        let mut off = 0;
        while off < size {
            if !a.plain {
                ctx.write_time_ns = now_ns();
                fill_chunk(buf, &ctx, off)?;
            }
            f.write_all(buf)?;
            off += piece as u64;
        }
    }
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu0
        .zip(loadmon::stats::process_cpu_ns())
        .map(|(a, b)| (b - a) as f64 / 1e9);
    let gib = (a.files * size) as f64 / (1u64 << 30) as f64;
    println!(
        "{}{} {} file(s) of {} MiB: {:.1} MiB/s, CPU {} s per GiB",
        if a.plain { "plain" } else { "verified" },
        if a.overlap && !a.plain {
            " (overlapped)"
        } else {
            ""
        },
        a.files,
        a.size_mb,
        gib * 1024.0 / s,
        cpu.map_or("-".into(), |c| format!("{:.3}", c / gib))
    );
    Ok(())
}
