//! `loadmon.TestClient`: the file-writing test client (its settings: a `ClientConfig` and a
//! `FileWriterConfig`, with the core's defaults and rules).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use loadmon::blocking::{ClientHandle, WriterCheck};
use loadmon::client::ClientConfig;
use loadmon::workload::file_writer::{FileWriter, FileWriterConfig, SyncMode, VerifyMode};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::args::{
    block_arg, float_arg, keep_files_arg, keep_files_to_py, opt_count_arg, opt_size_arg, path_arg,
    py_bool, py_repr, rate_arg, size_to_py, timeout_arg, Arg, ClientArgs,
};
use crate::errors::{core, guard};
use crate::run::{exit_client, join_handle, RunSlot};
use crate::wait::{lock, wait_interruptibly, CANCEL_GRACE};
use loadmon::config::{CHUNK_SIZE_BYTES, FILE_SIZE_BYTES, IODEPTH, JOBS, MIN_CHUNK_SIZE_BYTES};

/// The file-writing test client (the seed's ``client.py``): connects to a server, writes
/// files of ``file_size`` in chunks of ``chunk_size`` for ``run_time`` seconds (sizes: an int
/// of MB, or a text with a unit, "4k", "256k", "1m", "1g"), keeps the last ``keep_files`` (an
/// int, or "all") of each of its ``jobs`` streams, and sends heartbeats and stats meanwhile.
/// ``iodepth``: writes in flight per stream (through io_uring where the kernel allows it;
/// else one at a time, and the report's ``engine`` says why); ``rate``: the client's pace in MB/s, shared by its streams (None:
/// as fast as possible).
///
/// ``verify``: check the written data: "none", "rollover" (each file is read back just before
/// ``keep_files`` deletes it, or ``overwrite`` rewrites it) or "end" (the kept files, when the
/// run ends); every block then carries a header and a CRC-32C, of ``verify_block`` bytes (an
/// int, or a text such as "64k"). A bad block ends the client FAILED with the finding, unless
/// ``verify_continue``. ``verify_peer`` (with "end"): check another client's kept files in the
/// same shared ``out_dir``. ``overwrite``: once a stream holds ``keep_files`` files, rewrite
/// the oldest in place.
///
/// The constructor applies the seed's validation (chunk >= min_chunk_size, chunk <= file, a
/// timed probe showing at least 2 files fit in the run time) and raises ConfigError (a
/// ValueError) for any invalid or out-of-range argument. ``run()`` blocks (GIL released) and
/// returns a ClientResult; ``start()`` runs it in the background, ``join()`` waits for it,
/// ``cancel()`` stops it. A running client that is dropped is cancelled and joined (within a
/// second). A context manager: ``with TestClient(...) as client:`` starts the run, and the
/// block's end waits for it (cancelled first if the block raised; ``join()`` then gives the
/// result). ``None`` for any argument means the core's default, which the signature shows.
#[pyclass(name = "TestClient", module = "loadmon._loadmon", frozen)]
pub(crate) struct PyTestClient {
    client: ClientConfig,
    writer: FileWriterConfig,
    validated: Mutex<Option<FileWriter>>,
    run: RunSlot<ClientHandle>,
}

impl PyTestClient {
    fn spawn(&self, py: Python<'_>) -> PyResult<Arc<ClientHandle>> {
        let validated = lock(&self.validated).take();
        let (client, writer) = (self.client.clone(), self.writer.clone());
        self.run.start(py, move || {
            let w = match validated {
                Some(w) => w,
                None => FileWriter::new(writer)?,
            };
            ClientHandle::spawn(client, w)
        })
    }
}

impl Drop for PyTestClient {
    fn drop(&mut self) {
        self.run.drop_run();
    }
}

/// A size as its repr shows it: `10` (MB) or `'256k'`.
fn py_size(py: Python<'_>, bytes: u64) -> String {
    let mib = loadmon::units::BYTES_PER_MB_U64;
    if bytes.is_multiple_of(mib) {
        (bytes / mib).to_string()
    } else {
        py_repr(py, &loadmon::units::format_size(bytes))
    }
}

/// The file writer's arguments of `TestClient(...)`, as Python gave them.
struct WriterArgs<'a, 'py> {
    run_time: Arg<'a, 'py>,
    chunk_size: Arg<'a, 'py>,
    file_size: Arg<'a, 'py>,
    out_dir: Arg<'a, 'py>,
    sync: Option<String>,
    keep_files: Arg<'a, 'py>,
    min_chunk_size: Arg<'a, 'py>,
    jobs: Arg<'a, 'py>,
    iodepth: Arg<'a, 'py>,
    rate: Arg<'a, 'py>,
    verify: Option<String>,
    verify_block: Arg<'a, 'py>,
    verify_continue: Option<bool>,
    verify_peer: Option<bool>,
    overwrite: Option<bool>,
}

impl WriterArgs<'_, '_> {
    /// The FileWriterConfig, with the core's defaults (its rules are checked by the probe).
    fn config(self, py: Python<'_>) -> PyResult<FileWriterConfig> {
        let d = FileWriterConfig::default();
        Ok(FileWriterConfig {
            run_time_s: self
                .run_time
                .map(|v| float_arg("run_time", v))
                .transpose()?
                .unwrap_or(d.run_time_s),
            chunk_size_bytes: opt_size_arg(py, "chunk_size", self.chunk_size, CHUNK_SIZE_BYTES)?
                .unwrap_or(d.chunk_size_bytes),
            file_size_bytes: opt_size_arg(py, "file_size", self.file_size, FILE_SIZE_BYTES)?
                .unwrap_or(d.file_size_bytes),
            min_chunk_size_bytes: opt_size_arg(
                py,
                "min_chunk_size",
                self.min_chunk_size,
                MIN_CHUNK_SIZE_BYTES,
            )?
            .unwrap_or(d.min_chunk_size_bytes),
            jobs: opt_count_arg(py, "jobs", self.jobs, JOBS)?.unwrap_or(d.jobs),
            iodepth: opt_count_arg(py, "iodepth", self.iodepth, IODEPTH)?.unwrap_or(d.iodepth),
            rate_mb_s: rate_arg(py, self.rate)?.or(d.rate_mb_s),
            out_dir: path_arg(self.out_dir)?.unwrap_or(d.out_dir),
            sync: match self.sync {
                Some(s) => core(py, s.parse::<SyncMode>())?,
                None => d.sync,
            },
            keep_files: match self.keep_files {
                Some(v) => keep_files_arg(py, v)?,
                None => d.keep_files,
            },
            verify: match self.verify {
                Some(s) => core(py, s.parse::<VerifyMode>())?,
                None => d.verify,
            },
            verify_block_bytes: self
                .verify_block
                .map(|v| block_arg(py, "verify_block", v))
                .transpose()?
                .unwrap_or(d.verify_block_bytes),
            verify_continue: self.verify_continue.unwrap_or(d.verify_continue),
            verify_peer: self.verify_peer.unwrap_or(d.verify_peer),
            overwrite: self.overwrite.unwrap_or(d.overwrite),
        })
    }
}

/// Validates `writer` with the core's rules and its timed probe. The probe runs on a thread of
/// its own, waited for in slices (GIL released): Ctrl-C stops it and raises KeyboardInterrupt
/// at once.
fn probe(py: Python<'_>, writer: &FileWriterConfig) -> PyResult<FileWriter> {
    let check = core(py, WriterCheck::spawn(writer.clone()))?;
    let validated = wait_interruptibly(
        py,
        None,
        "the probe is still running",
        |slice| check.try_join(Some(slice)),
        |py| {
            check.cancel();
            // A probe that stops in time removes its file before the interrupt.
            let _ = py.detach(|| check.try_join(Some(CANCEL_GRACE)));
        },
    )?;
    core(py, validated)
}

#[pymethods]
impl PyTestClient {
    #[new]
    #[pyo3(signature = (host=None, port=None, run_time=None, chunk_size=None, file_size=None,
        out_dir=None, sync=None, keep_files=None, min_chunk_size=None, heartbeat_period=None,
        stats_period=None, connect_timeout=None, token=None, log_dir=None,
        allow_clear_token=None, handshake_timeout=None, max_line_bytes=None, jobs=None,
        iodepth=None, rate=None, verify=None, verify_block=None, verify_continue=None,
        verify_peer=None, overwrite=None),
        text_signature = "(host='127.0.0.1', port=1234, run_time=15.0, chunk_size=10, \
            file_size=50, out_dir='client_files', sync='none', keep_files=2, min_chunk_size=10, \
            heartbeat_period=5.0, stats_period=10.0, connect_timeout=5.0, token=None, \
            log_dir=None, allow_clear_token=False, handshake_timeout=10.0, max_line_bytes=4096, \
            jobs=1, iodepth=1, rate=None, verify='none', verify_block=4096, \
            verify_continue=False, verify_peer=False, overwrite=False)")]
    #[allow(clippy::too_many_arguments)]
    fn new<'a, 'py>(
        py: Python<'py>,
        host: Option<String>,
        port: Arg<'a, 'py>,
        run_time: Arg<'a, 'py>,
        chunk_size: Arg<'a, 'py>,
        file_size: Arg<'a, 'py>,
        out_dir: Arg<'a, 'py>,
        sync: Option<String>,
        keep_files: Arg<'a, 'py>,
        min_chunk_size: Arg<'a, 'py>,
        heartbeat_period: Arg<'a, 'py>,
        stats_period: Arg<'a, 'py>,
        connect_timeout: Arg<'a, 'py>,
        token: Option<String>,
        log_dir: Arg<'a, 'py>,
        allow_clear_token: Option<bool>,
        handshake_timeout: Arg<'a, 'py>,
        max_line_bytes: Arg<'a, 'py>,
        jobs: Arg<'a, 'py>,
        iodepth: Arg<'a, 'py>,
        rate: Arg<'a, 'py>,
        verify: Option<String>,
        verify_block: Arg<'a, 'py>,
        verify_continue: Option<bool>,
        verify_peer: Option<bool>,
        overwrite: Option<bool>,
    ) -> PyResult<Self> {
        guard(py, "TestClient()", || {
            let client = ClientArgs {
                host,
                port,
                heartbeat_period,
                stats_period,
                connect_timeout,
                handshake_timeout,
                max_line_bytes,
                token,
                log_dir,
                allow_clear_token,
            }
            .config(py)?;
            let writer = WriterArgs {
                run_time,
                chunk_size,
                file_size,
                out_dir,
                sync,
                keep_files,
                min_chunk_size,
                jobs,
                iodepth,
                rate,
                verify,
                verify_block,
                verify_continue,
                verify_peer,
                overwrite,
            }
            .config(py)?;
            let validated = probe(py, &writer)?;
            Ok(PyTestClient {
                client,
                writer,
                validated: Mutex::new(Some(validated)),
                run: RunSlot::new(),
            })
        })
    }

    /// Connects, writes files for the run time, returns the ClientResult (GIL released;
    /// Ctrl-C cancels the run and raises KeyboardInterrupt).
    fn run<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "TestClient.run", || {
            let h = self.spawn(py)?;
            join_handle(py, h, None, None)
        })
    }

    /// ``await client.run_async()``: as run(), without blocking the event loop (cancelling
    /// the task cancels the run).
    fn run_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        guard(py, "TestClient.run_async", || {
            py.import("loadmon._aio")?.call_method1("run", (slf,))
        })
    }

    /// Starts the run in the background; ``join()`` waits for its result. StateError if it
    /// is already running.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        guard(py, "TestClient.start", || self.spawn(py).map(|_| ()))
    }

    /// Waits (GIL released) for the result of ``start()``. ``timeout``: None waits as long as
    /// it takes, 0 only checks, else seconds (LoadmonTimeoutError). StateError before start().
    #[pyo3(signature = (timeout=None))]
    fn join<'py>(&self, py: Python<'py>, timeout: Arg<'_, '_>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, "TestClient.join", || {
            let timeout = timeout_arg(py, timeout)?;
            let h = self.run.handle(py)?;
            join_handle(py, h, timeout, None)
        })
    }

    /// Asks a running client to stop (its ``join()`` then raises LoadmonInterruptedError);
    /// returns at once. Nothing happens if it is not running.
    fn cancel(&self) {
        self.run.cancel();
    }

    /// Whether a run is going on (started and not finished).
    #[getter]
    fn running(&self) -> bool {
        self.run.running()
    }

    /// The server's host.
    #[getter]
    fn host(&self) -> &str {
        &self.client.host
    }

    /// The server's port.
    #[getter]
    fn port(&self) -> u16 {
        self.client.port
    }

    /// Run time, seconds.
    #[getter]
    fn run_time(&self) -> f64 {
        self.writer.run_time_s
    }

    /// Chunk size: an int of MB, or a size text ("256k") when it is not whole MB.
    #[getter]
    fn chunk_size<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        size_to_py(py, self.writer.chunk_size_bytes)
    }

    /// File size: an int of MB, or a size text when it is not whole MB.
    #[getter]
    fn file_size<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        size_to_py(py, self.writer.file_size_bytes)
    }

    /// The smallest chunk size accepted: an int of MB, or a size text.
    #[getter]
    fn min_chunk_size<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        size_to_py(py, self.writer.min_chunk_size_bytes)
    }

    /// Writer streams, each with its own files; the client's figures are their sums.
    #[getter]
    fn jobs(&self) -> u32 {
        self.writer.jobs
    }

    /// Writes in flight per stream.
    #[getter]
    fn iodepth(&self) -> u32 {
        self.writer.iodepth
    }

    /// The pace, MB/s; None: as fast as possible.
    #[getter]
    fn rate(&self) -> Option<f64> {
        self.writer.rate_mb_s
    }

    /// When the written data is checked: "none", "rollover" or "end".
    #[getter]
    fn verify(&self) -> String {
        self.writer.verify.to_string()
    }

    /// Verify block size, bytes.
    #[getter]
    fn verify_block(&self) -> u64 {
        self.writer.verify_block_bytes
    }

    /// Whether a bad block lets the run go on.
    #[getter]
    fn verify_continue(&self) -> bool {
        self.writer.verify_continue
    }

    /// Whether the end check reads another client's files.
    #[getter]
    fn verify_peer(&self) -> bool {
        self.writer.verify_peer
    }

    /// Whether the oldest kept file is rewritten in place.
    #[getter]
    fn overwrite(&self) -> bool {
        self.writer.overwrite
    }

    /// Directory of the data files.
    #[getter]
    fn out_dir(&self) -> PathBuf {
        self.writer.out_dir.clone()
    }

    /// Durability mode: "none", "file" or "direct".
    #[getter]
    fn sync(&self) -> String {
        self.writer.sync.to_string()
    }

    /// Finished files kept: an int, or "all".
    #[getter]
    fn keep_files<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        keep_files_to_py(py, self.writer.keep_files)
    }

    /// Starts the run (``with TestClient(...) as client:``).
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    /// Waits for the run to end; if the block raised, cancels it first. The result is kept:
    /// ``join()`` after the block returns it (or raises the run's error).
    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        guard(py, "TestClient.__exit__", || {
            exit_client(py, &self.run, exc)
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "TestClient(host={}, port={}, run_time={:?}, chunk_size={}, file_size={}, jobs={}, \
             running={})",
            py_repr(py, &self.client.host),
            self.client.port,
            self.writer.run_time_s,
            py_size(py, self.writer.chunk_size_bytes),
            py_size(py, self.writer.file_size_bytes),
            self.writer.jobs,
            py_bool(self.run.running())
        )
    }
}
