//! Writes data files as the file writer will with `--verify`: every 16 MiB piece filled by
//! `loadmon::verify::fill_chunk` just before it is written (or, with `--plain`, one buffer of
//! `0x5a` written again and again, as the writer does today). States MiB/s and CPU per GiB, so
//! the cost of the headers can be measured apart from the writer, on any disk, and makes files
//! for `loadmon verify` (and the read-back figures of docs/VERIFY.md).
//!
//! Two modes take the O_DIRECT cost apart (docs/VERIFY.md, Figures): `--overlap
//! --write-constant` runs the fill on its helper thread as `--overlap` does but writes the
//! `0x5a` buffer (the fill's cost to the write path, without the data's); `--prefilled` fills
//! every file's bytes before the clock starts and then only writes them (the data's cost at the
//! device, without a fill). `--ahead N` keeps N buffers in rotation with `--overlap`. With
//! `--overlap`, the time the writing thread waited for a filled piece is stated too.
//!
//! Run: `cargo run --release --example verify_fill -- --dir /data --files 2 --size-mb 1024
//! [--direct] [--plain] [--overlap [--ahead 2] [--write-constant]] [--prefilled] [--client 100]
//! [--block 4096]`. Nothing is fsynced: with
//! `--direct` the data is on the device when a write returns; without, the rate is that of
//! copying into the page cache (keep the files within the dirty limit to measure the CPU).

use std::error::Error;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// With `--overlap`: buffers in rotation (filled ahead of the one written).
    #[arg(long, default_value_t = 2)]
    ahead: u64,
    /// With `--overlap`: fill as usual, but write the `0x5a` buffer (the fill's cost alone).
    #[arg(long)]
    write_constant: bool,
    /// Fill every file's bytes before the clock starts, then only write them (needs memory
    /// for all of them).
    #[arg(long)]
    prefilled: bool,
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

/// How `--overlap` writes: its buffers (kept from file to file) and what it writes.
struct Overlap<'a> {
    /// The buffers in rotation (`--ahead`).
    pieces: Vec<Piece>,
    /// `--write-constant`: the bytes written instead of the filled ones.
    constant: Option<&'a [u8]>,
    /// Time the writing thread waited for a filled piece, over all files.
    waited: Duration,
}

/// Writes one file with a filler thread: it fills the next pieces (as many as there are
/// buffers, less the one written) while piece k is written.
fn write_overlapped(
    f: &mut std::fs::File,
    ctx: BlockContext,
    size: u64,
    o: &mut Overlap<'_>,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::mpsc::sync_channel;
    let depth = o.pieces.len();
    let (to_fill, fill_rx) = sync_channel::<(Piece, u64)>(depth);
    let (filled_tx, filled) = sync_channel::<Piece>(depth);
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
    while next < pieces {
        let Some(p) = o.pieces.pop() else { break };
        to_fill.send((p, next * PIECE as u64))?;
        next += 1;
    }
    for _ in 0..pieces {
        let t = Instant::now();
        let mut p = filled.recv()?;
        o.waited += t.elapsed();
        match o.constant {
            Some(c) => f.write_all(c)?,
            None => f.write_all(p.bytes())?,
        }
        if next < pieces {
            to_fill.send((p, next * PIECE as u64))?;
            next += 1;
        } else {
            o.pieces.push(p);
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

/// File `n` of the run, opened for writing (O_DIRECT with `--direct`).
fn open(a: &Args, n: u64) -> std::io::Result<std::fs::File> {
    let path = a
        .dir
        .join(format!("client_{}_{n}_2026-12-05_00.00.00", a.client));
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if a.direct {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_DIRECT);
    }
    opts.open(&path)
}

/// A file's bytes filled ahead: the allocation, and where its aligned start is.
type Prefilled = (Vec<u8>, usize);

/// `--prefilled`: every file's bytes, filled now (one allocation per file).
fn prefill(a: &Args, ctx: &BlockContext, size: u64) -> Result<Vec<Prefilled>, Box<dyn Error>> {
    let len = usize::try_from(size)?;
    (0..a.files)
        .map(|n| {
            let mut raw = vec![0u8; len + 4096];
            let start = raw.as_ptr().align_offset(4096).min(4096);
            let c = BlockContext {
                file_seq: n,
                write_time_ns: now_ns(),
                ..*ctx
            };
            fill_chunk(&mut raw[start..start + len], &c, 0)?;
            Ok((raw, start))
        })
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = Args::parse();
    let size = a.size_mb << 20;
    if size == 0 || !size.is_multiple_of(PIECE as u64) {
        return Err("--size-mb must be a positive multiple of 16".into());
    }
    if a.piece_kb == 0 || !PIECE.is_multiple_of(a.piece_kb << 10) {
        return Err("--piece-kb must divide 16384".into());
    }
    if a.ahead < 2 || a.ahead > 64 {
        return Err("--ahead must be 2 to 64".into());
    }
    if a.plain && a.prefilled {
        return Err("--plain and --prefilled: one or the other".into());
    }
    if (a.write_constant || a.ahead != 2) && (!a.overlap || a.plain || a.prefilled) {
        return Err("--write-constant and --ahead go with --overlap alone".into());
    }
    let mut raw = vec![0x5au8; PIECE + 4096];
    let start = raw.as_ptr().align_offset(4096).min(4096);
    let buf = &mut raw[start..start + PIECE];
    let base = BlockContext {
        block_bytes: a.block,
        run_id: new_run_id()?,
        client_id: a.client,
        stream: 0,
        file_seq: 0,
        generation: 1,
        write_time_ns: 0,
        file_size_bytes: size,
    };
    let constant = vec![0x5au8; PIECE + 4096];
    let at = constant.as_ptr().align_offset(4096).min(4096);
    let mut overlap = Overlap {
        pieces: (0..a.ahead).map(|_| Piece::new()).collect(),
        constant: a.write_constant.then(|| &constant[at..at + PIECE]),
        waited: Duration::ZERO,
    };
    let ready = if a.prefilled {
        prefill(&a, &base, size)?
    } else {
        Vec::new()
    };
    let cpu0 = loadmon::stats::process_cpu_ns();
    let t = Instant::now();
    for n in 0..a.files {
        let mut f = open(&a, n)?;
        let mut ctx = BlockContext {
            file_seq: n,
            ..base
        };
        if a.prefilled {
            // Written as the other modes write: 16 MiB at a time.
            let (bytes, start) = &ready[usize::try_from(n)?];
            for piece in bytes[*start..*start + usize::try_from(size)?].chunks(PIECE) {
                f.write_all(piece)?;
            }
            continue;
        }
        if a.overlap && !a.plain {
            write_overlapped(&mut f, ctx, size, &mut overlap)?;
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
    let mode = match (a.plain, a.prefilled, a.overlap, a.write_constant) {
        (true, ..) => "plain",
        (_, true, ..) => "verified (prefilled)",
        (_, _, true, true) => "verified (overlapped, writing 0x5a)",
        (_, _, true, false) => "verified (overlapped)",
        _ => "verified",
    };
    println!(
        "{mode} {} file(s) of {} MiB: {:.1} MiB/s, CPU {} s per GiB{}",
        a.files,
        a.size_mb,
        gib * 1024.0 / s,
        cpu.map_or("-".into(), |c| format!("{:.3}", c / gib)),
        if a.overlap && !a.plain && !a.prefilled {
            format!(
                ", waited {:.3} s for filled pieces",
                overlap.waited.as_secs_f64()
            )
        } else {
            String::new()
        }
    );
    Ok(())
}
