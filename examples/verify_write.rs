//! The file writer's cost of verified data, through the real writer: a server and a client
//! in-process, `verify = end` against `verify = none`, interleaved, the same sizes; states the
//! write throughput of each run (bytes written over the run time: the end check, after it, is
//! not counted) and the ratio of the medians.
//!
//! Run: `cargo run --release --example verify_write -- --dir /data [--direct] [--seconds 5]
//! [--chunk-mb 16] [--file-mb 256] [--repeat 3] [--iodepth 1]`. Files are kept 2 at a time
//! (per run), so a buffered run measures copying into the page cache, not the disk.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use loadmon::blocking::{run_client, ServerHandle};
use loadmon::client::ClientConfig;
use loadmon::server::ServerConfig;
use loadmon::workload::file_writer::{
    FileWriter, FileWriterConfig, KeepFiles, SyncMode, VerifyMode,
};

#[derive(Parser, Debug)]
#[command(about = "The file writer's write throughput with and without verified data")]
struct Args {
    /// Directory to write in (a directory of its own per run is made there).
    #[arg(long)]
    dir: PathBuf,
    /// Open with O_DIRECT.
    #[arg(long)]
    direct: bool,
    /// Run time of each run, seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Chunk size, MiB.
    #[arg(long, default_value_t = 16)]
    chunk_mb: u64,
    /// File size, MiB.
    #[arg(long, default_value_t = 256)]
    file_mb: u64,
    /// Runs of each kind, interleaved.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Writes in flight per stream.
    #[arg(long, default_value_t = 1)]
    iodepth: u32,
}

fn one(args: &Args, verify: VerifyMode, n: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = args.dir.join(format!("run_{n}_{verify}"));
    let config = FileWriterConfig {
        run_time_s: args.seconds,
        chunk_size_bytes: args.chunk_mb << 20,
        file_size_bytes: args.file_mb << 20,
        min_chunk_size_bytes: 1 << 20,
        out_dir: dir.clone(),
        keep_files: KeepFiles::Last(2),
        sync: if args.direct {
            SyncMode::Direct
        } else {
            SyncMode::None
        },
        iodepth: args.iodepth,
        verify,
        ..Default::default()
    };
    let w = FileWriter::new(config)?;
    let server = ServerHandle::start(ServerConfig {
        port: 0,
        ..Default::default()
    })?;
    let r = run_client(
        ClientConfig {
            port: server.port(),
            ..Default::default()
        },
        w,
    )?;
    let _ = server.wait(Some(Duration::from_secs(30)));
    if let Some(v) = r.verify {
        if v.errors_total > 0 {
            return Err(format!("{} bad blocks", v.errors_total).into());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(r.bytes_written as f64 / f64::from(1u32 << 20) / args.seconds)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (mut plain, mut verified) = (Vec::new(), Vec::new());
    for n in 0..args.repeat {
        let p = one(&args, VerifyMode::None, n)?;
        let v = one(&args, VerifyMode::End, n)?;
        println!(
            "run {n}: plain {p:.0} MiB/s, verified {v:.0} MiB/s ({:.3}x)",
            v / p
        );
        plain.push(p);
        verified.push(v);
    }
    let (p, v) = (median(&mut plain), median(&mut verified));
    println!(
        "median: plain {p:.0} MiB/s, verified {v:.0} MiB/s: {:.3}x ({}, {} MiB chunks)",
        v / p,
        if args.direct { "O_DIRECT" } else { "buffered" },
        args.chunk_mb
    );
    Ok(())
}
