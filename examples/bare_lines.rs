//! The practical limit for the message-rate benchmark: a bare tokio server that only counts
//! `\n`-terminated lines (LinesCodec, the same framing loadmon uses), with no protocol work.
//!
//! Run: `cargo run --release --example bare_lines -- --port 0` (prints `listening on ADDR`,
//! then `lines <N>` when every connection it served has closed). Pairs with examples/blaster.rs
//! (message rate) and `examples/loadgen --bare` (the fleet benchmark).
//!
//! `--threads 1` serves from a current-thread runtime, as `loadmon server` does by default;
//! `--threads N` from N worker threads; without it, tokio's default multi-threaded runtime (one
//! worker per core).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio_util::codec::{FramedRead, LinesCodec};

fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse::<T>().ok())
}

fn main() -> std::io::Result<()> {
    let rt = match arg::<usize>("--threads") {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build()?,
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    rt.block_on(serve(arg::<u16>("--port").unwrap_or(0)))
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let total = total.clone();
                tasks.spawn(async move {
                    let mut lines = FramedRead::new(stream, LinesCodec::new_with_max_length(4096));
                    let mut n = 0u64;
                    while let Some(Ok(_)) = lines.next().await {
                        n += 1;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                if tasks.is_empty() {
                    break;
                }
            }
        }
    }
    println!("lines {}", total.load(Ordering::Relaxed));
    Ok(())
}
