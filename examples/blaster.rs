//! Message-rate load: C connections that each send `hb` lines as fast as the socket takes them
//! for a duration, then `done`. Against a loadmon server (`--protocol`, which does the
//! handshake first) the server's report counts the heartbeats it accepted; against
//! examples/bare_lines.rs the bare server prints its line count.
//!
//! Run: `cargo run --release --example blaster -- --port P --connections 5 --duration 3 --protocol`
//! Prints `sent <lines> in <seconds>`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(1234);
    let conns: usize = arg("--connections")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let secs: f64 = arg("--duration")
        .and_then(|p| p.parse().ok())
        .unwrap_or(3.0);
    let protocol = std::env::args().any(|a| a == "--protocol");
    let batch = "hb\n".repeat(1024).into_bytes();
    let mut streams = Vec::new();
    for _ in 0..conns {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        if protocol {
            w.write_all(b"get_cid\nready\n").await?;
            let mut line = String::new();
            for _ in 0..2 {
                line.clear();
                r.read_line(&mut line).await?;
            }
            w.write_all(b"start\n").await?;
        }
        streams.push((r, w));
    }
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (mut r, mut w) in streams {
        let batch = batch.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline {
                w.write_all(&batch).await?;
                sent += 1024;
            }
            if protocol {
                w.write_all(b"done\n").await?;
            }
            w.shutdown().await?;
            // Wait for the server to read everything and close.
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut r, &mut sink).await;
            Ok::<u64, std::io::Error>(sent)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(std::io::Error::other)??;
    }
    println!("sent {total} in {:.3}", t0.elapsed().as_secs_f64());
    Ok(())
}
