//! A protocol load generator: N clients that each heartbeat and report stats every period,
//! then send `done`. Used by `scripts/soak.sh` (1,000 clients for 60 s) and the server-scale
//! and fleet benchmarks.
//!
//! Run: `cargo run --release --example loadgen -- --port 1234 --clients 1000 --duration 60 --period 1`
//! against a running `loadmon server --max-clients 1000`. Pairs with `scripts/soak.sh`.
//! Exits 0 when every client got its id, ran the whole duration and was closed after `done`.
//!
//! `--bare` feeds a server that does not speak the protocol (`examples/bare_lines`) the same
//! lines: each client connects, then sends `hb` and `send_stats` in one write every period,
//! with no handshake, no `file_stats`/`start`/`done`, and without reading anything; it closes
//! at the end. Exits 0 when every client connected and wrote for the whole duration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use loadmon::connection::Connection;
use loadmon::protocol::Message;
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(about = "Hold N protocol clients against a loadmon server")]
struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 1234)]
    port: u16,
    /// Concurrent clients.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Seconds each client runs after all have connected.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds between one client's heartbeats (and stats).
    #[arg(long, default_value_t = 1.0)]
    period: f64,
    /// Connections opened per second while ramping up.
    #[arg(long, default_value_t = 2000.0)]
    ramp_per_s: f64,
    /// No protocol: connect, send the same `hb` + `send_stats` lines every period, read
    /// nothing, close at the end (for `examples/bare_lines`).
    #[arg(long)]
    bare: bool,
}

#[derive(Default)]
struct Counts {
    connected: AtomicU64,
    passed: AtomicU64,
    failed: AtomicU64,
    lines: AtomicU64,
}

async fn one_client(
    addr: String,
    start_at: tokio::time::Instant,
    stop_at: tokio::time::Instant,
    period: Duration,
    counts: Arc<Counts>,
) -> Result<(), String> {
    let stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut conn = Connection::new(stream, 4096);
    conn.feed(&Message::GetCid);
    conn.feed(&Message::Ready);
    conn.flush().await.map_err(|e| e.to_string())?;
    let mut got_id = false;
    loop {
        match conn.read_message().await.map_err(|e| e.to_string())? {
            None => return Err("closed during the handshake".into()),
            Some(Ok(Message::SetCid(_))) => got_id = true,
            Some(Ok(Message::RunTests)) if got_id => break,
            Some(Ok(Message::Refused(r))) => return Err(format!("refused: {r}")),
            Some(_) => {}
        }
    }
    counts.connected.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep_until(start_at).await;
    conn.feed(&Message::FileStats {
        chunk_size_mb: 10,
        file_size_mb: 50,
    });
    conn.send(&Message::Start)
        .await
        .map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(period);
    while tokio::time::Instant::now() < stop_at {
        tick.tick().await;
        conn.feed(&Message::Heartbeat);
        conn.send(&Message::SendStats {
            cpu_pct: 1.5,
            mem_pct: 0.25,
        })
        .await
        .map_err(|e| e.to_string())?;
        counts.lines.fetch_add(2, Ordering::Relaxed);
    }
    conn.send(&Message::Done).await.map_err(|e| e.to_string())?;
    // The server closes after done.
    match tokio::time::timeout(Duration::from_secs(30), conn.read_message()).await {
        Ok(Ok(None)) => Ok(()),
        other => Err(format!("not closed after done: {other:?}")),
    }
}

/// `--bare`: the same lines at the same times as [`one_client`]'s steady phase, and nothing else.
async fn bare_client(
    addr: String,
    start_at: tokio::time::Instant,
    stop_at: tokio::time::Instant,
    period: Duration,
    counts: Arc<Counts>,
) -> Result<(), String> {
    let stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut conn = Connection::new(stream, 4096);
    counts.connected.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep_until(start_at).await;
    let mut tick = tokio::time::interval(period);
    while tokio::time::Instant::now() < stop_at {
        tick.tick().await;
        conn.feed(&Message::Heartbeat);
        conn.send(&Message::SendStats {
            cpu_pct: 1.5,
            mem_pct: 0.25,
        })
        .await
        .map_err(|e| e.to_string())?;
        counts.lines.fetch_add(2, Ordering::Relaxed);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let addr = format!("{}:{}", args.host, args.port);
    let counts = Arc::new(Counts::default());
    let ramp = Duration::from_secs_f64(args.clients as f64 / args.ramp_per_s.max(1.0));
    let start_at = tokio::time::Instant::now() + ramp + Duration::from_secs(1);
    let stop_at = start_at + Duration::from_secs_f64(args.duration);
    let period = Duration::from_secs_f64(args.period.max(0.001));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    // The ramp is paced against the clock, not by sleeping between connections: a timer sleeps
    // at least 1 ms, and longer on a busy machine, so 10,000 clients at 2,000/s would take 10 s
    // or more and the last ones could arrive after the first had finished (and the server,
    // with every connection closed, had stopped).
    let ramp_start = tokio::time::Instant::now();
    let mut spawned = 0usize;
    while spawned < args.clients {
        let due = ((ramp_start.elapsed().as_secs_f64() * args.ramp_per_s.max(1.0)) as usize + 1)
            .min(args.clients);
        while spawned < due {
            let (addr, counts) = (addr.clone(), counts.clone());
            let bare = args.bare;
            tasks.spawn(async move {
                let r = if bare {
                    bare_client(addr, start_at, stop_at, period, counts.clone()).await
                } else {
                    one_client(addr, start_at, stop_at, period, counts.clone()).await
                };
                match &r {
                    Ok(()) => counts.passed.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counts.failed.fetch_add(1, Ordering::Relaxed),
                };
                r
            });
            spawned += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        if let Ok(Err(e)) = r {
            first_error.get_or_insert(e);
        }
    }
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "loadgen: {} clients, {} connected, {} passed, {} failed, {} lines sent in {:.1} s",
        args.clients,
        c(&counts.connected),
        c(&counts.passed),
        c(&counts.failed),
        c(&counts.lines),
        t0.elapsed().as_secs_f64()
    );
    if let Some(e) = first_error {
        eprintln!("loadgen: first error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
