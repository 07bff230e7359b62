//! loadmon: coordinated file-write load tests.
//!
//! A server hands out client ids, tells each test client to start, and watches every client
//! while it writes files: heartbeats, CPU and memory of its writer, files rolled over,
//! throughput. When all clients are gone it writes a report. The wire protocol is the one of the
//! original ServerClientModel, byte for byte, plus new commands an old peer ignores.
//!
//! # Layout
//! - [`protocol`]: the [`Message`](protocol::Message) enum, parse and encode; no I/O.
//! - [`auth`]: the token's challenge–response (nonces, HMAC proofs); no I/O.
//! - [`connection`]: framed, length-bounded line I/O over a TCP stream.
//! - [`server`]: listener, per-client handlers, liveness, stop conditions, report building.
//! - [`workload`]: the [`Workload`](workload::Workload) trait every workload implements and
//!   the [`Context`](workload::Context) it runs with; below the client that runs it.
//!   - [`workload::file_writer`]: the test client's workload: its settings and their rules
//!     (`settings`), its files (`files`: created new, rollover, sync, direct I/O,
//!     keep_files), the timed probe.
//! - [`client`]: the generic client: connect, the one handshake (also the worker's), the run
//!   of any [`Workload`](workload::Workload) with its heartbeat and stats tasks. It knows no
//!   concrete workload.
//! - [`plan`]: the test a fleet server hands to its workers (the file writer's parameters).
//! - [`worker`]: the fleet worker (takes the plan, waits for the fleet's start, runs it; with
//!   `stay`, again for the next run).
//! - [`stats`]: a client's CPU from its own threads (per-thread kernel counters), its process's
//!   memory (sysinfo), and the count of clients running in this process.
//! - [`report`]: report types (serde), the seed's text report, JSON, CSV, HTML; the report
//!   files of a run.
//! - [`out_file`]: files written at the end of a run (reports, result JSON), resolved at its
//!   start and written atomically relative to the directory opened then.
//! - [`series`]: bounded per-client time series (throughput, CPU, memory) for charts.
//! - [`events`]: the live event stream (client connected, status change, stats sample, …).
//! - `http` (private): the optional HTTP listener (JSON API, Prometheus `/metrics`, dashboard).
//! - [`console`]: the live console table and the plain status lines of the CLI.
//! - [`logging`]: session log files and the log sink a face installs ([`logging::set_log_sink`]),
//!   fed from a bounded queue on a thread of its own if the face wants ([`logging::LogDelivery`]).
//! - [`text`]: peer text escaped for terminals, logs and the text report.
//! - [`units`]: units and the bounds every layer shares (a leaf).
//! - [`blocking`]: runtime-owning handles; the only API the C and Python faces call.
//! - [`demo`]: the seed's demo schedule, each client in its own `loadmon client` process (or
//!   on threads of this process).
//! - [`config`]: the bounds and conversions every face applies to user numbers, and the rule
//!   (range, zero or not) of each setting that has one.
//! - [`error`]: the one error enum.
//!
//! # Example
//! ```
//! use loadmon::blocking::{run_client, ServerHandle};
//! use loadmon::client::ClientConfig;
//! use loadmon::workload::file_writer::{FileWriter, FileWriterConfig};
//! use loadmon::server::ServerConfig;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let server = ServerHandle::start(ServerConfig { port: 0, ..Default::default() }).unwrap();
//! let writer = FileWriter::new(FileWriterConfig {
//!     run_time_s: 1.0,
//!     chunk_size_mb: 1,
//!     file_size_mb: 2,
//!     min_chunk_size_mb: 1,
//!     out_dir: dir.path().to_path_buf(),
//!     ..Default::default()
//! })
//! .unwrap();
//! let result = run_client(ClientConfig { port: server.port(), ..Default::default() }, writer).unwrap();
//! assert_eq!(result.client_id, 100);
//! let report = server.wait(None).unwrap();
//! assert_eq!(report.clients[0].status, loadmon::Status::Pass);
//! assert_eq!(report.clients[0].files_written, result.files_written);
//! ```
//!
//! # Features
//! - `cli` (default): the `loadmon` command, the live [`console`] and the [`demo`]
//!   (clap, indicatif, tracing-subscriber); implies `http` and `reports`.
//! - `http` (default): the HTTP listener ([`ServerConfig::http`](server::ServerConfig::http)).
//! - `reports` (default): CSV and HTML reports.
//!
//! With `default-features = false` the crate is the engine alone: server, client, file writer,
//! JSON and text reports, events, blocking handles. A setting that needs a missing feature is
//! a configuration error, never silently ignored.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Doc examples are code users copy: they compile without a warning (an unused `Result`, say).
#![doc(test(attr(deny(warnings))))]

pub mod auth;
pub mod blocking;
pub mod client;
pub mod config;
pub mod connection;
#[cfg(feature = "cli")]
pub mod console;
#[cfg(feature = "cli")]
pub mod demo;
pub mod error;
pub mod events;
pub mod logging;
pub mod out_file;
pub mod plan;
pub mod protocol;
pub mod report;
pub mod series;
pub mod server;
pub mod stats;
pub mod text;
pub mod units;
pub mod worker;
pub mod workload;

pub use error::{Error, Result};
pub use report::{ClientReport, Report, Status};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The README's Rust example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
