//! What a client runs once the server says `run_tests`: the [`Workload`] trait, and the
//! [`Context`] through which a running workload reports what it did and sees whether it must
//! stop.
//!
//! A workload is the seed's "extend the generic client": implement [`Workload::run`], which the
//! client (`loadmon::client`, the layer above) calls on a blocking thread (never on the async runtime's workers).
//! Every workload lives in a module of its own below this one and owns its settings and their
//! rules; the client runs any of them and knows none. The one built in is the
//! [`file_writer`].

use std::path::Path;
use std::time::Duration;

use crate::error::Result;

mod context;
pub mod file_writer;

pub use context::Context;
pub(crate) use context::{Counters, RunControl};

/// How long a stopped run (cancelled, its server gone) waits for its workload to return once
/// [`Context::is_stopped`] is true: a workload checks its context at least this often (the
/// [`FileWriter`](file_writer::FileWriter) between writes of at most
/// [`PIECE_MB`](file_writer::PIECE_MB)). Past it the run ends without the workload, whose
/// thread is left behind (stuck in a call that does not return: a file system call on a hung
/// NFS mount); no stop waits without a bound.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a client's workload does once the server says `run_tests`.
///
/// # Examples
/// ```
/// use loadmon::blocking::{run_client, ServerHandle};
/// use loadmon::client::ClientConfig;
/// use loadmon::server::ServerConfig;
/// use loadmon::workload::{Context, Workload};
///
/// struct Sleeper;
/// impl Workload for Sleeper {
///     fn run_time(&self) -> Option<std::time::Duration> {
///         Some(std::time::Duration::from_millis(50))
///     }
///     fn run(&mut self, ctx: &Context) -> loadmon::Result<()> {
///         while !ctx.time_is_up() {
///             std::thread::sleep(std::time::Duration::from_millis(5));
///         }
///         ctx.file_rollover()?;
///         Ok(())
///     }
/// }
///
/// let server = ServerHandle::start(ServerConfig { port: 0, ..Default::default() }).unwrap();
/// let result = run_client(ClientConfig { port: server.port(), ..Default::default() }, Sleeper).unwrap();
/// assert_eq!(result.files_written, 1);
/// ```
pub trait Workload: Send + 'static {
    /// Chunk and file size (MiB) announced in `file_stats` before `start`, if any.
    fn file_stats(&self) -> Option<(u64, u64)> {
        None
    }

    /// How long the test is meant to run, if it has a set run time: [`Context::remaining`] and
    /// [`Context::time_is_up`] count down from it.
    fn run_time(&self) -> Option<Duration> {
        None
    }

    /// The directory the workload writes to, if any: the client watches the block device
    /// under it (the host's I/O view, [`crate::hostio`]) and sends it to a loadmon server.
    /// Without one the client sends the host-wide figures only.
    fn data_dir(&self) -> Option<&Path> {
        None
    }

    /// Runs the test on a blocking thread. Return `Ok` to send `done`; an error is sent to the
    /// server as `error:<message>` (status FAILED) and returned by the client's `run`.
    ///
    /// # Errors
    /// Whatever went wrong in the workload.
    fn run(&mut self, ctx: &Context) -> Result<()>;
}
