//! [`ServerControl`]: the handle a face, the HTTP listener and the console hold on a running
//! server (snapshots, the report so far, the event stream, stop).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use super::config::ServerConfig;
use super::shared::{lock_cell, FleetStatus, Shared};
use crate::events::{EventKind, EventStream};
use crate::protocol::COMMANDS;
use crate::report::{ClientReport, Report};
use crate::series::ClientSeries;

/// A cheap, cloneable handle to a server: live snapshot, report so far, stop.
#[derive(Debug, Clone)]
pub struct ServerControl {
    shared: Arc<Shared>,
}

impl ServerControl {
    /// A handle to the server whose state is `shared`.
    pub(super) fn new(shared: Arc<Shared>) -> ServerControl {
        ServerControl { shared }
    }
}

impl ServerControl {
    /// Every client so far, with live figures for the running ones.
    pub fn snapshot(&self) -> Vec<ClientReport> {
        let now = Instant::now();
        self.shared
            .cells()
            .iter()
            .map(|c| lock_cell(c).to_report(now))
            .collect()
    }

    /// The report as it would be if the server stopped now; the final report once it stopped.
    pub fn report(&self) -> Report {
        self.shared.current_report()
    }

    /// The thresholds' verdict: final once the run is over, so far while it runs; `None`
    /// for a server without threshold rules.
    pub fn verdict(&self) -> Option<crate::report::Verdict> {
        self.shared.verdict()
    }

    /// Each client's time series so far (see [`crate::series`]).
    pub fn series(&self) -> Vec<ClientSeries> {
        self.shared
            .cells()
            .iter()
            .filter_map(|cell| lock_cell(cell).series_report())
            .collect()
    }

    /// Each client's host I/O view so far (`io` lines; see [`crate::hostio`]), on the
    /// server's timeline.
    pub fn io_series(&self) -> Vec<crate::series::ClientIoSeries> {
        self.shared
            .cells()
            .iter()
            .filter_map(|cell| lock_cell(cell).io_series_report())
            .collect()
    }

    /// The fleet's chunk write latencies so far (`lat` lines) as a Prometheus histogram
    /// (buckets of [`crate::latency::BUCKET_BOUNDS_S`]); `None` before any.
    pub fn latency_buckets(&self) -> Option<crate::latency::PrometheusHistogram> {
        let fleet = self.shared.fleet_latency();
        (!fleet.run().is_empty()).then(|| crate::latency::prometheus_buckets(fleet.run()))
    }

    /// The paced clients' chunk start lags so far (`pace` lines) and their chunk response
    /// times (`rlat` lines) as Prometheus histograms, as [`ServerControl::latency_buckets`].
    pub fn pace_buckets(
        &self,
    ) -> (
        Option<crate::latency::PrometheusHistogram>,
        Option<crate::latency::PrometheusHistogram>,
    ) {
        let fleet = self.shared.fleet_pace();
        let of = |h: &hdrhistogram::Histogram<u64>| {
            (!h.is_empty()).then(|| crate::latency::prometheus_buckets(h))
        };
        (of(fleet.lag.run()), of(fleet.response.run()))
    }

    /// Lines received so far per command, in [`COMMANDS`] order, then `("invalid", n)` for
    /// lines that did not parse.
    pub fn message_counts(&self) -> Vec<(&'static str, u64)> {
        COMMANDS
            .iter()
            .copied()
            .chain(["invalid"])
            .zip(&self.shared.messages.0)
            .map(|(name, n)| (name, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Connections accepted so far, and connections refused (server full, wrong token, …).
    pub fn connection_counts(&self) -> (u64, u64) {
        (
            self.shared.connections.load(Ordering::Relaxed),
            self.shared.refused.load(Ordering::Relaxed),
        )
    }

    /// Seconds since the server started.
    pub fn uptime_s(&self) -> f64 {
        self.shared.started.elapsed().as_secs_f64()
    }

    /// Subscribes to the live event stream. Subscribe before clients connect to see every
    /// event; a subscription made after the server stopped yields the final report only.
    pub fn subscribe(&self) -> EventStream {
        let fin = self.shared.final_report();
        match fin.as_ref() {
            Some(r) => EventStream::finished(self.shared.events.event(EventKind::Report {
                report: Box::new(r.clone()),
            })),
            None => EventStream::live(self.shared.events.subscribe()),
        }
    }

    /// Whether the run is over and the final report is ready.
    pub fn is_finished(&self) -> bool {
        self.shared.final_report().is_some()
    }

    /// The HTTP listener's address, if the server has one ([`ServerConfig::http`]).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.shared.http_addr.get().copied()
    }

    /// Closes the HTTP listener now: ends its linger after the run
    /// ([`ServerConfig::http_linger`]), or, during the run, stops serving HTTP for the rest of it.
    pub fn close_http(&self) {
        self.shared.http_stop.cancel();
    }

    /// Completes once the run is over and the HTTP listener, if any, has closed (after its
    /// linger, or [`ServerControl::close_http`]). Needs no runtime of its own.
    pub async fn http_closed(&self) {
        self.shared.finished.cancelled().await;
        self.shared.http_done.cancelled().await;
    }

    /// Whether the run is over and the HTTP listener, if any, has closed.
    pub fn is_http_closed(&self) -> bool {
        self.shared.finished.is_cancelled() && self.shared.http_done.is_cancelled()
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// Asks the server to stop: running clients become ABORTED ("server stopped"). Returns at
    /// once; [`Server::run`](super::Server::run) returns the report.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }

    /// Whether a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.shared.stop.is_cancelled()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Fleet mode: the start barrier's state now; `None` outside fleet mode.
    pub fn fleet(&self) -> Option<FleetStatus> {
        self.shared.fleet_status()
    }
}
