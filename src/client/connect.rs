//! Reaching the server: connection attempts bounded in time, retried with backoff.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::Client;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::logging::EventLog;

/// One connection attempt to `addr`, given up at `give_up`: a host that drops SYNs (down,
/// firewalled, a full accept queue) would otherwise hold one attempt for the kernel's SYN
/// retries (about 2 minutes on Linux), whatever `connect_timeout` says. With no time left
/// (`connect_timeout` 0: one attempt), the attempt takes as long as the system's connect.
async fn connect_by(addr: &str, give_up: Instant) -> std::io::Result<TcpStream> {
    let left = give_up.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return TcpStream::connect(addr).await;
    }
    tokio::time::timeout(left, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer to the connection attempt",
            ))
        })
}

impl Client {
    /// Connects to the server, retrying with backoff for `connect_timeout`.
    pub(crate) async fn connect(&self, log: &EventLog) -> Result<Connection> {
        let addr = format!("{}:{}", self.config.host, self.config.port);
        let give_up = Instant::now() + self.config.connect_timeout;
        let mut backoff = Duration::from_millis(50);
        loop {
            let attempt = tokio::select! {
                _ = self.cancel.cancelled() => {
                    return Err(Error::Interrupted(format!("while connecting to {addr}")));
                }
                r = connect_by(&addr, give_up) => r,
            };
            match attempt {
                Ok(stream) => {
                    log.info(format!("Connected to server {addr}"));
                    return Ok(Connection::new(stream, self.config.max_line_bytes));
                }
                Err(e) if Instant::now() + backoff < give_up => {
                    log.debug(|| format!("connect {addr}: {e}; retrying in {backoff:?}"));
                    tokio::select! {
                        _ = self.cancel.cancelled() => {
                            return Err(Error::Interrupted(format!("while connecting to {addr}")));
                        }
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(Error::net(
                        format!(
                            "connect {addr} (retried for {:.1} s)",
                            self.config.connect_timeout.as_secs_f64()
                        ),
                        e,
                    ))
                }
            }
        }
    }
}
