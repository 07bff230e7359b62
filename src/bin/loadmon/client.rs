//! `loadmon client`, and what every process that writes test files needs (`loadmon worker`
//! too): the checks of `--out-dir` and `--result-json` before the run, its runtime and how it
//! is shut down.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use loadmon::client::Client;
use loadmon::console::LiveView;
use loadmon::out_file::OutFile;
use loadmon::text::escape_control;
use loadmon::workload::file_writer::FileWriter;
use loadmon::Error;

use crate::args::ClientArgs;
use crate::output::{fmt_ms, say, Console};
use crate::signals;

pub(crate) fn run(a: ClientArgs) -> Result<ExitCode, Error> {
    let client = Client::new(a.connect.client_config()?)?;
    let rt = runtime()?;
    #[cfg(unix)]
    let sigxfsz = signals::catch_file_size_limit(&rt);
    let writer_config = a.writer.plan().writer_config(a.files.out_dir);
    writer_config.validate()?;
    check_out_dir(&writer_config.out_dir)?;
    let result_file = result_file(a.files.result_json.as_deref())?;
    let out_dir = writer_config.out_dir.clone();
    let writer = FileWriter::new(writer_config)?;
    let cancel = client.cancel_token();
    signals::stop_on_signal(&rt, move |_| cancel.cancel());
    let bar = LiveView::client(client.progress());
    let result = rt.block_on(client.run(writer));
    drop(bar);
    #[cfg(unix)]
    drop(sigxfsz);
    shut_down_runtime(rt, &out_dir);
    let result = result?;
    say(Console::Out, &format!(
        "client {}: {} file(s), {} bytes in {:.2} s, {:.2} MB/s, chunk latency p50 {} ms, p99 {} ms\n",
        result.client_id,
        result.files_written,
        result.bytes_written,
        result.run_time_s,
        result.throughput_mb_s,
        fmt_ms(result.chunk_p50_ms),
        fmt_ms(result.chunk_p99_ms),
    ));
    if let Some(file) = &result_file {
        file.write(result.to_json().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The multi-threaded runtime a client or worker runs in.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))
}

/// How long a stopped client or worker waits for its file I/O (a write already in the kernel)
/// to finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Shuts a client's or worker's runtime down. File I/O left running (a probe or a chunk write
/// stuck in a hung file system) gets a bounded time to finish: dropping the runtime would wait
/// for it for ever, and a stopped process must exit.
pub(crate) fn shut_down_runtime(rt: tokio::runtime::Runtime, out_dir: &Path) {
    let t = std::time::Instant::now();
    rt.shutdown_timeout(STOP_GRACE);
    if t.elapsed() >= STOP_GRACE {
        say(
            Console::Err,
            &format!(
                "loadmon: file I/O did not finish within {} s of the stop; a file in {} \
                 (.loadmon_probe_* or client_*) may be left behind\n",
                STOP_GRACE.as_secs(),
                escape_control(&out_dir.display().to_string())
            ),
        );
    }
}

/// `--result-json`, resolved before the run (see [`OutFile::open`]): a path that cannot be
/// written is a configuration error (exit 2) before anything runs, and the file lands where
/// the path pointed then.
pub(crate) fn result_file(path: Option<&Path>) -> Result<Option<OutFile>, Error> {
    path.map(|p| {
        OutFile::open(p).map_err(|e| match e {
            Error::Config(why) => Error::Config(format!("--result-json {why}")),
            e => e,
        })
    })
    .transpose()
}

/// `--out-dir` is usable: it exists or can be created, and a file can be created and removed
/// in it. Checked before connecting, so that a bad directory is a configuration error
/// (exit 2), not a failure in the middle of a run.
///
/// # Errors
/// [`Error::Config`] naming the directory and the reason.
pub(crate) fn check_out_dir(dir: &Path) -> Result<(), Error> {
    let bad = |what: &str, e: std::io::Error| {
        Error::Config(format!("--out-dir {}: cannot {what}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| bad("create the directory", e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let probe = dir.join(format!(
        ".loadmon_write_check_{}_{nanos}",
        std::process::id()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| bad("create a file in it", e))?;
    std::fs::remove_file(&probe).map_err(|e| bad("remove a file from it", e))
}
