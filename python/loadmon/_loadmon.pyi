"""Type stubs for the native module ``loadmon._loadmon``."""

import os
from pathlib import Path
from typing import Any, Literal, final

__version__: str
PROTOCOL_VERSION: str

_Path = str | os.PathLike[str]

@final
class ClientInfo:
    """One client as the report or a live snapshot shows it (the JSON report's fields)."""

    id: int
    status: str
    time_ran_s: float
    cpu_avg_pct: float
    mem_avg_pct: float
    files_written: int
    file_size_mb: int
    chunk_size_mb: int
    heartbeats: int
    stats_reports: int
    bytes_written: int
    throughput_mb_s: float
    reason: str | None
    peer: str | None
    protocol_version: str | None
    start_time: str | None
    end_time: str | None
    cpu_core_avg_pct: float | None
    rss_avg_bytes: int | None
    rss_peak_bytes: int | None
    chunk_p50_ms: float | None
    chunk_p99_ms: float | None
    last_heartbeat_age_s: float | None
    cpu_last_pct: float | None
    mem_last_pct: float | None
    rss_last_bytes: int | None
    process_clients: int | None
    """Loadmon clients that shared this client's process: its MEM and RSS are that process's."""
    json: str
    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (the JSON report's keys)."""

@final
class Report:
    """The server's report; ``str(report)`` is the seed's text report."""

    @property
    def clients(self) -> list[ClientInfo]:
        """Every client, in id order."""
    @property
    def start_time(self) -> str:
        """When the server started (RFC 3339)."""
    @property
    def end_time(self) -> str:
        """When the server stopped (RFC 3339)."""
    @property
    def total(self) -> dict[str, Any]:
        """All clients together: clients, passed, files_written, bytes_written,
        throughput_mb_s, first_done, last_done."""
    def to_dict(self) -> dict[str, Any]:
        """The report as a dict (the JSON report's structure)."""
    def to_json(self) -> str:
        """The JSON report."""
    def to_csv(self) -> str:
        """The clients as CSV: a header row with the JSON field names, one row per client."""
    def to_html(self) -> str:
        """A self-contained HTML page: the report table and inline SVG charts of each
        client's throughput and CPU over time."""
    @property
    def series(self) -> list[dict[str, Any]]:
        """Each client's time series: ``{"id": int, "samples": [{"t_s", "bytes_written",
        "throughput_mb_s", "cpu_pct", "mem_pct", "rss_bytes"}, ...]}``."""

@final
class Events:
    """Iterator over a server's live events (dicts; ``event`` names the kind). It ends after
    the ``report`` event; each wait releases the GIL and Ctrl-C interrupts it."""

    def __iter__(self) -> "Events": ...
    def __next__(self) -> dict[str, Any]: ...

@final
class ClientResult:
    """What a finished client run produced."""

    client_id: int
    files_written: int
    bytes_written: int
    run_time_s: float
    throughput_mb_s: float
    chunk_p50_ms: float | None
    chunk_p99_ms: float | None
    heartbeats_sent: int
    stats_sent: int
    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""

@final
class Server:
    """The server: hands out ids from ``first_client_id``, watches clients, writes the report.

    ``start()`` binds and returns at once (``port=0`` picks a free port, then readable as
    ``port``). The server stops by itself once at least one client got an id and every
    connection closed. Used as a context manager it starts on enter and stops on exit.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1234,
        max_clients: int = 5,
        first_client_id: int = 100,
        heartbeat_timeout: float | None = None,
        report_json: _Path | None = None,
        log_dir: _Path | None = None,
        handshake_timeout: float | None = None,
        token: str | None = None,
        http: str | None = None,
        http_linger: float = 0.0,
        report_csv: _Path | None = None,
        report_html: _Path | None = None,
    ) -> None: ...
    def start(self) -> None:
        """Bind and serve in the background."""
    @property
    def http_port(self) -> int | None:
        """The HTTP port once started (``None`` without ``http=``)."""
    @property
    def http_url(self) -> str | None:
        """The dashboard's URL once started (``None`` without ``http=``)."""
    def events(self, timeout: float | None = None) -> Events:
        """Live events as dicts: client_connected, id_assigned, status_changed, stats_sample,
        file_rollover, heartbeat_missed, refused, lagged, and report (the last one).
        ``timeout`` bounds each wait (TimeoutError)."""
    @property
    def port(self) -> int:
        """The bound port (the real one once started)."""
    @property
    def host(self) -> str:
        """The host the server binds."""
    @property
    def running(self) -> bool:
        """Started and not stopped yet."""
    def clients(self) -> list[ClientInfo]:
        """A live snapshot of every client so far."""
    def report(self) -> Report:
        """The report so far (the final one after the server stopped)."""
    def wait(self, timeout: float | None = None) -> Report:
        """Block (GIL released) until the server stops by itself; TimeoutError on timeout."""
    def stop(self) -> Report:
        """Stop (running clients become ABORTED) and return the report; idempotent."""
    def __enter__(self) -> "Server": ...
    def __exit__(self, *exc: object) -> Literal[False]: ...

@final
class TestClient:
    """The file-writing test client. The constructor applies the seed's validation (chunk >=
    min_chunk_size, chunk <= file, a timed probe showing >= 2 files fit) and raises ConfigError."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1234,
        run_time: float = 15,
        chunk_size: int = 10,
        file_size: int = 50,
        out_dir: _Path = "client_files",
        sync: Literal["none", "file", "direct"] = "none",
        keep_files: int | Literal["all"] | None = None,
        min_chunk_size: int = 10,
        heartbeat_period: float = 5.0,
        stats_period: float = 10.0,
        connect_timeout: float = 5.0,
        token: str | None = None,
        log_dir: _Path | None = None,
    ) -> None: ...
    def run(self) -> ClientResult:
        """Connect, write for the run time, return the result (GIL released)."""
    def start(self) -> None:
        """Run in the background; join() waits for the result."""
    def join(self, timeout: float | None = None) -> ClientResult:
        """The result of start(); TimeoutError on timeout."""
    def cancel(self) -> None:
        """Ask a running client to stop."""
    @property
    def run_time(self) -> float: ...
    @property
    def chunk_size(self) -> int: ...
    @property
    def file_size(self) -> int: ...
    @property
    def out_dir(self) -> Path: ...
    @property
    def sync(self) -> str: ...
    @property
    def keep_files(self) -> str: ...

@final
class Context:
    """Handed to ``Client.run_tests``."""

    @property
    def client_id(self) -> int:
        """The id the server assigned."""
    @property
    def stopped(self) -> bool:
        """True once the run should end (run time over, server gone, cancelled)."""
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

class Client:
    """The generic client. Subclass it and implement ``run_tests(self, ctx)``; ``run()``
    connects, calls it after the server's ``run_tests``, sends heartbeats and stats from Rust
    meanwhile, and sends ``done`` when it returns (an error report and FAILED if it raises)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1234,
        heartbeat_period: float = 5.0,
        stats_period: float = 10.0,
        run_time: float | None = None,
        chunk_size: int | None = None,
        file_size: int | None = None,
        connect_timeout: float = 5.0,
        token: str | None = None,
        log_dir: _Path | None = None,
    ) -> None: ...
    def run_tests(self, ctx: Context) -> None:
        """Override: the test to run."""
    def run(self) -> ClientResult:
        """Connect, run, return when done (GIL released while waiting)."""
    def cancel(self) -> None:
        """Ask a running client to stop."""
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...

def report_failure(
    reason: str,
    host: str = "127.0.0.1",
    port: int = 1234,
    chunk_size: int | None = None,
    file_size: int | None = None,
    connect_timeout: float = 5.0,
    token: str | None = None,
) -> int:
    """Tell the server that a client cannot run (it failed validation, say): the report lists
    it as FAILED with the reason. Returns the id the server gave it."""
