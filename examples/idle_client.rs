//! Monitoring overhead: a generic client whose workload only sleeps, so the process's CPU time
//! is what the heartbeat and stats tasks (sysinfo refreshing this process only) cost.
//!
//! Run: `cargo run --release --example idle_client -- --port P --duration 10 --hb 5 --stats 10`
//! against a running server. Prints `cpu_pct_of_one_core <x>` measured with getrusage (all threads, µs resolution).

use std::time::Duration;

use loadmon::blocking::run_client;
use loadmon::client::ClientConfig;
use loadmon::workload::{Context, Workload};

struct Idle(Duration);

impl Workload for Idle {
    fn run_time(&self) -> Option<Duration> {
        Some(self.0)
    }
    fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
        while !ctx.time_is_up() {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

fn arg(name: &str) -> Option<f64> {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
}

/// User + system CPU time of this process (all threads), microsecond resolution.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let port = arg("--port").unwrap_or(1234.0) as u16;
    let duration = Duration::from_secs_f64(arg("--duration").unwrap_or(10.0));
    let config = ClientConfig {
        port,
        heartbeat_period: Duration::from_secs_f64(arg("--hb").unwrap_or(5.0)),
        stats_period: Duration::from_secs_f64(arg("--stats").unwrap_or(10.0)),
        ..Default::default()
    };
    let c0 = cpu_seconds();
    let t0 = std::time::Instant::now();
    match run_client(config, Idle(duration)) {
        Ok(r) => {
            let cpu = cpu_seconds() - c0;
            let wall = t0.elapsed().as_secs_f64();
            println!(
                "cpu_pct_of_one_core {:.4} heartbeats {} stats {} wall_s {:.2}",
                100.0 * cpu / wall,
                r.heartbeats_sent,
                r.stats_sent,
                wall
            );
        }
        Err(e) => {
            eprintln!("idle_client: {e}");
            std::process::exit(1);
        }
    }
}
