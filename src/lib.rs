//! loadmon: coordinated file-write load tests.
//!
//! A server hands out client ids, tells each test client to start, and watches every client
//! while it writes files: heartbeats, CPU and memory of its writer, files rolled over,
//! throughput. When all clients are gone it writes a report. The wire protocol is the one of the
//! original ServerClientModel, byte for byte, plus new commands an old peer ignores.
//!
//! # Layout
//! From the bottom up (docs/ARCHITECTURE.md draws the layers; `tests/architecture.rs` checks
//! that no module uses a higher one and that none go round in a cycle):
//! - leaves: [`units`] (unit constants and shared bounds), [`text`] (peer text escaped for
//!   terminals, logs and the text report), [`error`] (the one error enum, and the wire's leaf
//!   errors), [`stats`] (a client's CPU from its own threads, its process's memory, the clients
//!   running in this process), [`hostio`] (the host's I/O view: the block device under a
//!   directory, I/O pressure, dirty and writeback memory).
//! - [`config`]: the rule (range, zero or not) of each setting that has one, which every face
//!   applies to user numbers; [`auth`]: the token's challenge–response (no I/O); [`series`]:
//!   bounded time series for charts; [`latency`]: chunk write latency histograms that merge
//!   exactly (the `lat` line's encoding and bounds, the fleet's intervals, the interval log);
//!   [`logging`]: session log files and the log sink a face
//!   installs ([`logging::set_log_sink`], [`logging::LogDelivery`]); [`out_file`]: files
//!   written at the end of a run, resolved at its start, written atomically.
//! - the wire: [`protocol`] (the [`Message`](protocol::Message) enum, parse and encode, a
//!   generic [`WirePlan`](protocol::WirePlan); no I/O, no workload) and [`connection`]
//!   (framed, length-bounded line I/O).
//! - [`report`] (types, the seed's text, JSON, CSV, HTML, the report files), [`events`] (the
//!   live event stream), [`workload`] (the [`Workload`](workload::Workload) trait and its
//!   [`Context`](workload::Context); [`workload::file_writer`] is the test client's workload,
//!   with its settings and their rules).
//! - [`plan`]: the fleet's plan, the file writer's settings on a
//!   [`WirePlan`](protocol::WirePlan); [`client`]: connect, the one handshake, the run of any
//!   workload with its heartbeat and stats tasks (it knows no concrete workload).
//! - [`worker`]: the fleet worker (takes the plan, waits for the fleet's start, runs it; with
//!   `stay`, again); [`server`]: settings, client records, sessions, connections, admission,
//!   the report, and its optional HTTP listener (JSON API, `/metrics`, dashboard).
//! - [`blocking`]: runtime-owning handles; the only API the C and Python faces call.
//! - [`console`] and [`demo`] (feature `cli`): the CLI's live table and the seed's demo.
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
//!     chunk_size_bytes: 1 << 20,
//!     file_size_bytes: 2 << 20,
//!     min_chunk_size_bytes: 1 << 20,
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
// `deny`, not `forbid`: the io_uring engine (workload/file_writer/engine/uring.rs) is the one
// module allowed `unsafe` (handing the kernel pointers into its buffers), each use with its
// SAFETY comment; anywhere else `unsafe` does not compile.
#![deny(unsafe_code)]
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
pub mod hostio;
pub mod latency;
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
pub mod verdict;
pub mod verify;
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
