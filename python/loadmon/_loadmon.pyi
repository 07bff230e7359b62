"""Type stubs for the native module ``loadmon._loadmon``."""

import os
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, final

from typing_extensions import disjoint_base

from loadmon._results import ClientInfo, ClientResult, Plan, Report, WorkerSummary

__all__ = [
    "__version__",
    "PROTOCOL_VERSION",
    "Server",
    "TestClient",
    "Client",
    "Context",
    "Events",
    "Worker",
    "report_failure",
    "verify",
    "defaults",
    "_core_defaults",
    "_render_report",
    "_log_next",
    "_log_wake",
    "_log_discard",
    "_fork_prepare",
    "_fork_parent",
    "_fork_child",
    "_log_wait",
    "_log_level",
    "_shutdown",
    "_test_panic",
    "_check_plan",
    "_RunEnd",
]

__version__: str
PROTOCOL_VERSION: str

_Path = str | os.PathLike[str]

class _Defaults(TypedDict):
    server: dict[str, Any]
    client: dict[str, Any]
    test_client: dict[str, Any]
    plan: dict[str, Any]
    worker: dict[str, Any]
    verify: dict[str, Any]

def defaults() -> _Defaults:
    """The core's defaults, as the signatures show them."""

def _core_defaults() -> dict[str, dict[str, Any]]:
    """The core's defaults as the core serializes them (its names)."""

@final
class Events:
    """Iterator over a server's live events (dicts; ``event`` names the kind). It ends after
    the ``report`` event; each wait releases the GIL and Ctrl-C interrupts it. Also an async
    iterator (``async for``) that never blocks the event loop. A context manager;
    ``close()`` ends it early."""

    def __iter__(self) -> "Events": ...
    def __next__(self) -> dict[str, Any]: ...
    def __aiter__(self) -> "Events": ...
    def __anext__(self) -> Coroutine[Any, Any, dict[str, Any]]: ...
    def _next(self, timeout: float | None) -> dict[str, Any] | None: ...
    def close(self) -> None:
        """End the iteration and drop the subscription."""
    def __enter__(self) -> "Events": ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool: ...

@final
class Server:
    """The server: hands out ids from ``first_client_id``, watches clients, writes the report.

    ``start()`` binds and returns at once (``port=0`` picks a free port, then readable as
    ``port``). The server stops by itself once at least one client got an id and every
    connection closed. Used as a context manager (``with`` or ``async with``) it starts on
    enter and stops on exit. A
    server runs once; a dropped running server stops within a second and writes its reports.

    Fleet mode: ``expect_clients=N`` hands every Worker ``plan`` and starts no client until N
    are ready (``start_timeout``: start whoever is ready after that many seconds).

    ``http_allow_hosts``: host names the HTTP listener answers to besides IP addresses and
    ``localhost`` (``"*"``: any); a request for another name gets 421 (DNS rebinding).

    Bounds on peers: ``max_pending`` connections in the handshake at once (more wait in the
    listen queue), ``max_ids`` ids in one run, ``write_timeout`` seconds a peer may leave
    replies unread, ``max_line_bytes`` per line; the HTTP listener's
    ``http_header_read_timeout``, ``http_idle_timeout``, ``http_write_timeout`` (seconds) and
    ``http_max_connections``.

    Thresholds for CI: ``thresholds=["fleet.p99_ms < 50", "client.mb_s >= 80 over 10s"]``
    are checked while the run goes on; the report's ``verdict`` says which held
    (``abort_on_fail=True`` stops the run at the first that fails). ``baseline``: an earlier
    JSON report for ``baseline`` bounds; ``report_junit``: the JUnit XML's path.
    """

    def __new__(
        cls,
        host: str | None = "127.0.0.1",
        port: int | None = 1234,
        max_clients: int | None = 5,
        first_client_id: int | None = 100,
        heartbeat_timeout: float | None = 15.0,
        report_json: _Path | None = None,
        log_dir: _Path | None = None,
        handshake_timeout: float | None = 10.0,
        token: str | None = None,
        http: str | None = None,
        http_linger: float | None = 0.0,
        report_csv: _Path | None = None,
        report_html: _Path | None = None,
        expect_clients: int | None = None,
        plan: Plan | None = None,
        start_timeout: float | None = None,
        http_allow_hosts: Sequence[str] | None = (),
        allow_clear_token: bool | None = False,
        max_pending: int | None = 256,
        max_ids: int | None = 100000,
        write_timeout: float | None = 10.0,
        max_line_bytes: int | None = 4096,
        http_header_read_timeout: float | None = 10.0,
        http_idle_timeout: float | None = 30.0,
        http_max_connections: int | None = 128,
        http_write_timeout: float | None = 30.0,
        latency_log: _Path | None = None,
        thresholds: Sequence[str] | None = (),
        abort_on_fail: bool | None = False,
        baseline: _Path | None = None,
        report_junit: _Path | None = None,
    ) -> "Server": ...
    def start(self) -> None:
        """Bind and serve in the background (StateError if started before)."""
    @property
    def http_port(self) -> int | None:
        """The HTTP port once started (``None`` without ``http=``)."""
    @property
    def http_url(self) -> str | None:
        """The dashboard's URL once started (``None`` without ``http=``)."""
    def events(self, timeout: float | None = None) -> Events:
        """Live events as dicts; ``timeout`` bounds each wait (LoadmonTimeoutError)."""
    @property
    def port(self) -> int:
        """The bound port (the real one once started)."""
    @property
    def host(self) -> str:
        """The host the server binds."""
    @property
    def running(self) -> bool:
        """Started and not stopped yet."""
    @property
    def clients(self) -> tuple[ClientInfo, ...]:
        """A live snapshot of every client so far."""
    def report(self) -> Report:
        """The report so far (the final one after the server stopped)."""
    def wait(self, timeout: float | None = None) -> Report:
        """Block (GIL released) until the server stops by itself; LoadmonTimeoutError on
        timeout (0: only check; None: as long as it takes)."""
    def wait_async(self, timeout: float | None = None) -> Coroutine[Any, Any, Report]:
        """``await server.wait_async()``: as wait(), without blocking the event loop."""
    def stop(self) -> Report:
        """Stop (running clients become ABORTED) and return the report; idempotent."""
    def __enter__(self) -> "Server": ...
    def __exit__(self, *exc: object) -> bool: ...
    def __aenter__(self) -> Coroutine[Any, Any, "Server"]:
        """``async with Server(...) as server:`` starts it."""
    def __aexit__(self, *exc: object) -> Coroutine[Any, Any, bool]:
        """Stops the server and waits for its report without blocking the event loop."""
    def _request_stop(self) -> bool: ...

@final
class TestClient:
    """The file-writing test client. Sizes are an int of MB or a text with a unit ("4k",
    "256k", "1m", "1g"); ``jobs`` streams each write their own files; ``iodepth`` writes in
    flight per stream; ``rate`` the pace in MB/s (None: as fast as possible). ``verify``
    ("none", "rollover", "end") checks the written data, in blocks of ``verify_block`` bytes
    (an int, or a text such as "64k"); ``verify_continue``: a bad block does not stop the writing (the client still ends FAILED);
    ``verify_peer`` (with "end"): check another client's files in a shared ``out_dir``;
    ``overwrite``: rewrite the oldest kept file in place. The constructor
    applies the seed's validation (chunk >= min_chunk_size, chunk <= file, a timed probe
    showing >= 2 files per stream fit) and raises ConfigError.
    A context manager: started on enter; on exit the run is waited for (cancelled first if the
    block raised)."""

    def __new__(
        cls,
        host: str | None = "127.0.0.1",
        port: int | None = 1234,
        run_time: float | None = 15.0,
        chunk_size: int | str | None = 10,
        file_size: int | str | None = 50,
        out_dir: _Path | None = "client_files",
        sync: Literal["none", "file", "direct"] | None = "none",
        keep_files: int | Literal["all"] | None = 2,
        min_chunk_size: int | str | None = 10,
        heartbeat_period: float | None = 5.0,
        stats_period: float | None = 10.0,
        connect_timeout: float | None = 5.0,
        token: str | None = None,
        log_dir: _Path | None = None,
        allow_clear_token: bool | None = False,
        handshake_timeout: float | None = 10.0,
        max_line_bytes: int | None = 4096,
        jobs: int | None = 1,
        iodepth: int | None = 1,
        rate: float | None = None,
        verify: Literal["none", "rollover", "end"] | None = "none",
        verify_block: int | str | None = 4096,
        verify_continue: bool | None = False,
        verify_peer: bool | None = False,
        overwrite: bool | None = False,
    ) -> "TestClient": ...
    def run(self) -> ClientResult:
        """Connect, write for the run time, return the result (GIL released)."""
    def run_async(self) -> Coroutine[Any, Any, ClientResult]:
        """``await client.run_async()``: as run(), without blocking the event loop."""
    def start(self) -> None:
        """Run in the background; join() waits for the result."""
    def join(self, timeout: float | None = None) -> ClientResult:
        """The result of start(); LoadmonTimeoutError on timeout."""
    def cancel(self) -> None:
        """Ask a running client to stop."""
    @property
    def running(self) -> bool:
        """Whether a run is going on."""
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def run_time(self) -> float: ...
    @property
    def chunk_size(self) -> int | str: ...
    @property
    def file_size(self) -> int | str: ...
    @property
    def min_chunk_size(self) -> int | str: ...
    @property
    def jobs(self) -> int: ...
    @property
    def iodepth(self) -> int: ...
    @property
    def rate(self) -> float | None: ...
    @property
    def verify(self) -> str: ...
    @property
    def verify_block(self) -> int: ...
    @property
    def verify_continue(self) -> bool: ...
    @property
    def verify_peer(self) -> bool: ...
    @property
    def overwrite(self) -> bool: ...
    @property
    def out_dir(self) -> Path: ...
    @property
    def sync(self) -> str: ...
    @property
    def keep_files(self) -> int | Literal["all"]: ...
    def __enter__(self) -> "TestClient":
        """Starts the run."""
    def __exit__(self, *exc: object) -> bool:
        """Waits for the run (cancelled first if the block raised); join() gives its result."""

@final
class Context:
    """Handed to ``Client.run_tests``; dead once the run is over (reports raise StateError)."""

    @property
    def client_id(self) -> int:
        """The id the server assigned."""
    @property
    def stopped(self) -> bool:
        """True once the run should end (run time over, server gone, cancelled, run over)."""
    @property
    def finished(self) -> bool:
        """True once the run is over."""
    @property
    def remaining(self) -> float | None:
        """Seconds left of the run time; None without a run time."""
    @property
    def elapsed(self) -> float:
        """Seconds since run_tests was called."""
    @property
    def files_written(self) -> int: ...
    @property
    def bytes_written(self) -> int: ...
    def file_rollover(self) -> None:
        """Report one completed file (``file_roll``)."""
    def record_write(self, n_bytes: int, seconds: float) -> None:
        """Record one write of n_bytes that took seconds."""
    def send_stats(self, cpu_pct: float, mem_pct: float) -> None:
        """Send ``send_stats:<cpu_pct>:<mem_pct>``."""

@disjoint_base
class Client:
    """The generic client. Subclass it and implement ``run_tests(self, ctx)`` (plain or
    ``async def``); ``run()`` connects, calls it after the server's ``run_tests``, sends
    heartbeats and stats from Rust meanwhile, and sends ``done`` when it returns (an error
    report and FAILED if it raises). A subclass's ``__init__`` must call ``super().__init__()``
    (StateError at ``run()`` otherwise). A context manager: started on enter; on exit the run
    is waited for (cancelled first if the block raised)."""

    def __init__(
        self,
        host: str | None = "127.0.0.1",
        port: int | None = 1234,
        heartbeat_period: float | None = 5.0,
        stats_period: float | None = 10.0,
        run_time: float | None = None,
        chunk_size: int | None = None,
        file_size: int | None = None,
        connect_timeout: float | None = 5.0,
        token: str | None = None,
        log_dir: _Path | None = None,
        allow_clear_token: bool | None = False,
        handshake_timeout: float | None = 10.0,
        max_line_bytes: int | None = 4096,
    ) -> None: ...
    def run_tests(self, ctx: Context) -> Any:
        """Override: the test to run (may be ``async def``)."""
    def run(self) -> ClientResult:
        """Connect, run, return when done (GIL released while waiting)."""
    def run_async(self) -> Coroutine[Any, Any, ClientResult]:
        """``await client.run_async()``: as run(), without blocking the event loop."""
    def start(self) -> None:
        """Run in the background; join() waits for the result."""
    def join(self, timeout: float | None = None) -> ClientResult:
        """The result of start(); LoadmonTimeoutError on timeout."""
    def cancel(self) -> None:
        """Ask a running client to stop."""
    @property
    def running(self) -> bool:
        """Whether a run is going on."""
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    def __enter__(self) -> Self:
        """Starts the run."""
    def __exit__(self, *exc: object) -> bool:
        """Waits for the run (cancelled first if the block raised); join() gives its result."""

@final
class Worker:
    """A fleet worker: takes the plan of a fleet server, waits for the fleet's start and writes
    files as planned. ``stay=True`` comes back for the next run until cancelled. A plan beyond
    this host's limits (``max_chunk_mb``, ``max_run_time`` s, ``max_disk_mb`` on disk at once)
    is refused; the server lists the worker FAILED with the reason. A context manager (started
    on enter, cancelled and joined on exit)."""

    def __new__(
        cls,
        host: str | None = "127.0.0.1",
        port: int | None = 1234,
        out_dir: _Path | None = "client_files",
        token: str | None = None,
        stay: bool | None = False,
        retry_max: float | None = 5.0,
        heartbeat_period: float | None = 5.0,
        stats_period: float | None = 10.0,
        connect_timeout: float | None = 5.0,
        log_dir: _Path | None = None,
        max_chunk_mb: int | None = 256,
        max_run_time: float | None = 86400.0,
        max_disk_mb: int | None = 10240,
        allow_clear_token: bool | None = False,
        handshake_timeout: float | None = 10.0,
        max_line_bytes: int | None = 4096,
    ) -> "Worker": ...
    def run(self) -> WorkerSummary:
        """Run to the end (with ``stay``: until cancelled); GIL released."""
    def run_async(self) -> Coroutine[Any, Any, WorkerSummary]:
        """``await worker.run_async()``: as run(), without blocking the event loop (cancelling
        the task cancels the worker)."""
    def start(self) -> None:
        """Run in the background; join() waits for the summary."""
    def join(self, timeout: float | None = None) -> WorkerSummary:
        """The summary of start(); LoadmonTimeoutError on timeout."""
    def cancel(self) -> None:
        """Ask the worker to stop."""
    @property
    def running(self) -> bool:
        """Whether the worker is running."""
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def out_dir(self) -> Path: ...
    @property
    def stay(self) -> bool: ...
    def __enter__(self) -> "Worker": ...
    def __exit__(self, *exc: object) -> bool: ...

def report_failure(
    reason: str,
    host: str | None = "127.0.0.1",
    port: int | None = 1234,
    chunk_size: int | None = None,
    file_size: int | None = None,
    connect_timeout: float | None = 5.0,
    token: str | None = None,
) -> int:
    """Tell the server that a client cannot run (it failed validation, say): the report lists
    it as FAILED with the reason. Returns the id the server gave it."""

_VerifyPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]

def verify(
    paths: _VerifyPath | Iterable[_VerifyPath],
    *,
    direct: bool | None = False,
    max_findings: int | None = 100,
    block_size: int | str | None = None,
    run_id: int | None = None,
    generation: int | None = None,
) -> dict[str, Any]:
    """Check files written with verified data, offline (``loadmon verify --json``): a file or
    a directory (its data files) as str, bytes or os.PathLike, or any iterable of them. Returns the report as a dict
    (``files``, ``skipped``, ``blocks_checked``, ``blocks_ok``, ``errors`` by class,
    ``bytes_read``, ...); a directory's entries named like data files that are not regular
    files are left out, listed in ``skipped``; bad blocks are findings, not exceptions. GIL
    released; Ctrl-C stops the check within one read. ConfigError for a bad option, a missing
    path or a path given that is not a regular file, FileError when a file cannot be read."""

def _render_report(json: str, format: str) -> str: ...
def _log_next(timeout: float) -> list[tuple[int, str, str]]: ...
def _log_wake() -> None: ...
def _log_discard() -> int: ...
def _fork_prepare() -> None: ...
def _fork_parent() -> None: ...
def _fork_child() -> None: ...
def _log_wait(timeout: float) -> bool: ...
def _log_level(level: int | None) -> None: ...
def _shutdown(timeout: float) -> None: ...
def _test_panic(message: str) -> None: ...
def _check_plan(plan: Plan) -> None: ...
@final
class _RunEnd:
    def finish(self, exc: BaseException | None = None, text: str | None = None) -> None: ...
