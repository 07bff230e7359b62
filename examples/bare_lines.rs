//! The practical limit for the message-rate benchmark: a bare tokio server that only counts
//! `\n`-terminated lines (LinesCodec, the same framing loadmon uses), with no protocol work.
//!
//! Run: `cargo run --release --example bare_lines -- --port 0` (prints `listening on ADDR`,
//! then `lines <N>` when every connection it served has closed). Pairs with examples/blaster.rs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio_util::codec::{FramedRead, LinesCodec};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .skip_while(|a| a != "--port")
        .nth(1)
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
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
