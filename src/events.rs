//! The server's live event stream: one [`Event`] for every client connected, id assigned,
//! status change, stats sample, file rollover, heartbeat missed, refusal, paced client's
//! schedule lag (every second), bad block a client's data check found, and the final report.
//!
//! Subscribe with [`ServerControl::subscribe`](crate::server::ServerControl::subscribe) (async,
//! [`EventStream::next`]) or [`ServerHandle::events`](crate::blocking::ServerHandle::events)
//! (blocking, with a timeout). The CLI's `--json-stream` writes each event as one JSON line
//! ([`Event::to_json_line`]). Events cost nothing while nobody listens: they are built only when
//! a subscriber exists. A subscriber that falls more than [`EVENT_BUFFER`] events behind gets one
//! [`EventKind::Lagged`] event saying how many it missed, never a silent gap.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::report::{Report, Status};

/// Events a subscriber may fall behind by before it misses some.
pub const EVENT_BUFFER: usize = 16_384;

/// One event: when it happened, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time (RFC 3339, local time).
    pub time: String,
    /// Seconds since the server started.
    pub elapsed_s: f64,
    /// What happened (the JSON key `event` names the kind).
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A TCP connection was accepted (it has no id yet).
    ClientConnected {
        /// The peer's address.
        peer: String,
    },
    /// A connection was refused (server full, wrong token, protocol version mismatch).
    Refused {
        /// The peer's address.
        peer: String,
        /// The refusal line's reason.
        reason: String,
    },
    /// A connection sent `get_cid` and got an id.
    IdAssigned {
        /// The new id.
        client_id: u32,
        /// The peer's address.
        peer: String,
    },
    /// A client's status changed (RUNNING on `start`, then PASS, ABORTED, TIMED OUT, FAILED).
    StatusChanged {
        /// The client.
        client_id: u32,
        /// The status before.
        previous: Status,
        /// The status now.
        status: Status,
        /// Why (for ABORTED, TIMED OUT, FAILED).
        reason: Option<String>,
    },
    /// A client's periodic stats arrived (`send_stats`).
    StatsSample {
        /// The client.
        client_id: u32,
        /// %CPU of the client's writer (100 = one core).
        cpu_pct: f64,
        /// %MEM of the client's writer.
        mem_pct: f64,
        /// Resident memory from the latest `proc_stats`, bytes (loadmon clients only).
        rss_bytes: Option<u64>,
        /// Bytes written so far.
        bytes_written: u64,
        /// MiB/s since the previous sample (since `start` for the first).
        throughput_mb_s: f64,
    },
    /// A client finished a file (`file_roll`).
    FileRollover {
        /// The client.
        client_id: u32,
        /// Files written so far.
        files_written: u64,
    },
    /// A running client has sent no heartbeat for a while (two thirds of the heartbeat
    /// timeout); it is TIMED OUT if none comes before the timeout.
    HeartbeatMissed {
        /// The client.
        client_id: u32,
        /// Seconds since its last heartbeat.
        age_s: f64,
    },
    /// Fleet mode: the start barrier released; every client counted gets `run_tests` now.
    FleetStarted {
        /// Clients the fleet waited for.
        expected: usize,
        /// Clients started together (0: the start timeout found nobody ready; the run gives
        /// up).
        started: usize,
        /// Whether the start timeout released it (rather than the last expected client).
        timed_out: bool,
    },
    /// A paced client's schedule lag, with each `pace` line (every second of its run).
    ScheduleLag {
        /// The client.
        client_id: u32,
        /// Its target, MiB/s.
        target_mb_s: f64,
        /// How far behind its schedule it is now, ms.
        lag_ms: f64,
        /// 99th percentile of its chunks' start lags so far, ms (`None` before any chunk).
        p99_ms: Option<f64>,
        /// Its largest schedule lag so far, ms.
        max_ms: f64,
        /// Whether its schedule lag has stayed within the bound
        /// ([`PACE_LAG_BOUND_MS`](crate::latency::PACE_LAG_BOUND_MS), 1 s) so far.
        kept_pace: bool,
    },
    /// A client's check of its written data found bad blocks (a `vfind` line; the first
    /// [`MAX_FINDINGS_SENT`](crate::protocol::MAX_FINDINGS_SENT) of each client).
    VerifyFinding {
        /// The client.
        client_id: u32,
        /// The finding: its class, offset, blocks, file, what was expected and found.
        finding: Box<crate::protocol::VerifyFinding>,
        /// The client's bad blocks so far, all classes.
        errors_total: u64,
    },
    /// The server stopped; this is its final report. The stream ends after it.
    Report {
        /// The final report.
        report: Box<Report>,
    },
    /// This subscriber fell behind and missed `missed` events.
    Lagged {
        /// Events missed.
        missed: u64,
    },
}

impl EventKind {
    /// The [`EventKind::ScheduleLag`] of client `client_id` with the paced figures `f`.
    pub fn schedule_lag(client_id: u32, f: &crate::latency::PaceFigures) -> EventKind {
        EventKind::ScheduleLag {
            client_id,
            target_mb_s: f.rate_mb_s.unwrap_or(0.0),
            lag_ms: f.lag_now_ms.unwrap_or(0.0),
            p99_ms: f.lag.map(|l| l.p99_ms),
            max_ms: f.lag_max_ms,
            kept_pace: f.kept_pace,
        }
    }
}

impl Event {
    /// The event as one line of JSON (no newline inside; `\n` at the end).
    pub fn to_json_line(&self) -> String {
        // Plain types with finite floats: serialising cannot fail.
        let mut s =
            serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        s.push('\n');
        s
    }

    /// Whether this is the final event of a stream (the report).
    pub fn is_final(&self) -> bool {
        matches!(self.kind, EventKind::Report { .. })
    }
}

/// The sending side, owned by the server.
#[derive(Debug)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    started: tokio::time::Instant,
}

impl EventBus {
    pub(crate) fn new() -> Self {
        EventBus {
            tx: broadcast::Sender::new(EVENT_BUFFER),
            started: tokio::time::Instant::now(),
        }
    }

    /// Whether anyone listens (events are built only then).
    pub(crate) fn active(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Sends the event `kind()` builds, if anyone listens.
    pub(crate) fn emit(&self, kind: impl FnOnce() -> EventKind) {
        if self.active() {
            let _ = self.tx.send(Arc::new(self.event(kind())));
        }
    }

    pub(crate) fn event(&self, kind: EventKind) -> Event {
        Event {
            time: chrono::Local::now().to_rfc3339(),
            elapsed_s: self.started.elapsed().as_secs_f64(),
            kind,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

/// A subscription to a server's events (async). Ends (returns `None`) after the final report.
#[derive(Debug)]
pub struct EventStream {
    rx: Option<broadcast::Receiver<Arc<Event>>>,
    /// The final report, for a subscription made after the server stopped.
    pending: Option<Event>,
}

impl EventStream {
    pub(crate) fn live(rx: broadcast::Receiver<Arc<Event>>) -> Self {
        EventStream {
            rx: Some(rx),
            pending: None,
        }
    }

    pub(crate) fn finished(last: Event) -> Self {
        EventStream {
            rx: None,
            pending: Some(last),
        }
    }

    /// The next event; `None` once the final report has been returned.
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.pending.take() {
            return Some(e);
        }
        let rx = self.rx.as_mut()?;
        let event = match rx.recv().await {
            Ok(e) => Event::clone(&e),
            Err(broadcast::error::RecvError::Lagged(missed)) => Event {
                time: chrono::Local::now().to_rfc3339(),
                elapsed_s: 0.0,
                kind: EventKind::Lagged { missed },
            },
            Err(broadcast::error::RecvError::Closed) => {
                self.rx = None;
                return None;
            }
        };
        if event.is_final() {
            self.rx = None;
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_names_the_event_and_round_trips() {
        let bus = EventBus::new();
        let e = bus.event(EventKind::StatusChanged {
            client_id: 100,
            previous: Status::Running,
            status: Status::Pass,
            reason: None,
        });
        let line = e.to_json_line();
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "status_changed");
        assert_eq!(v["status"], "PASS");
        assert_eq!(v["client_id"], 100);
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }

    #[tokio::test]
    async fn nothing_is_built_without_a_subscriber_and_a_slow_one_is_told_it_lagged() {
        let bus = EventBus::new();
        bus.emit(|| unreachable!("no subscriber: the event must not be built"));
        let mut s = EventStream::live(bus.subscribe());
        for i in 0..(EVENT_BUFFER as u64 + 5) {
            bus.emit(|| EventKind::FileRollover {
                client_id: 1,
                files_written: i,
            });
        }
        match s.next().await.map(|e| e.kind) {
            Some(EventKind::Lagged { missed }) => assert_eq!(missed, 5),
            other => panic!("expected Lagged, got {other:?}"),
        }
        match s.next().await.map(|e| e.kind) {
            Some(EventKind::FileRollover { files_written, .. }) => assert_eq!(files_written, 5),
            other => panic!("expected the oldest kept event, got {other:?}"),
        }
    }
}
