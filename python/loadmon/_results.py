"""Result objects: plain, frozen, comparable (``==``) and picklable values.

The engine hands them over as its JSON; these classes only convert types (statuses to
:class:`Status`, RFC 3339 times to :class:`~datetime.datetime`). ``to_dict()`` gives back the
engine's JSON structure unchanged.
"""

from __future__ import annotations

import dataclasses
import enum
import json as _json
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Mapping
from typing import Any, Literal

from loadmon import _loadmon

__all__ = [
    "Status",
    "ClientInfo",
    "ClientResult",
    "Report",
    "TotalSample",
    "Plan",
    "WorkerRun",
    "WorkerSummary",
]

_PLAN_DEFAULTS: dict[str, Any] = _loadmon.defaults()["plan"]

_MIB = 1 << 20


def _size(n_bytes: int) -> int | str:
    """A size in bytes as Plan and TestClient show it: an int of MB when whole, else a text
    with a unit (``"256k"``, ``"1000b"``)."""
    if n_bytes % _MIB == 0:
        return n_bytes // _MIB
    if n_bytes % 1024 == 0:
        return f"{n_bytes // 1024}k"
    return f"{n_bytes}b"


class Status(enum.StrEnum):
    """A client's test status. A ``str``: ``status == "PASS"`` holds for ``Status.PASS``."""

    NOT_STARTED = "NOT STARTED"
    """Connected, has not sent ``start``."""
    RUNNING = "RUNNING"
    """Sent ``start``, not yet ``done``."""
    PASS = "PASS"
    """Sent ``done``."""
    ABORTED = "ABORTED"
    """The connection closed (or the server stopped) before ``done``."""
    TIMED_OUT = "TIMED OUT"
    """No heartbeat within the heartbeat timeout."""
    FAILED = "FAILED"
    """The client reported an error."""

    @property
    def is_final(self) -> bool:
        """Whether the client's run is over (PASS, ABORTED, TIMED OUT, FAILED)."""
        return self not in (Status.NOT_STARTED, Status.RUNNING)


def _time(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


_READ_ONLY = "a Report is frozen: its dicts and lists are read-only (to_dict() gives a copy)"


class _FrozenDict(dict[str, Any]):
    """A read-only dict (a Report's nested values): hashable, picklable, still a dict."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenDict, (dict(self),))


class _FrozenList(list[Any]):
    """A read-only list (a Report's nested values): hashable, picklable, still a list."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = clear = extend = insert = pop = remove = reverse = sort = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenList, (list(self),))


def _freeze(v: Any) -> Any:
    """``v`` with every dict and list in it made read-only."""
    if isinstance(v, dict):
        return _FrozenDict((k, _freeze(x)) for k, x in v.items())
    if isinstance(v, list):
        return _FrozenList(_freeze(x) for x in v)
    return v


@dataclass(frozen=True)
class ClientInfo:
    """One client as the report or a live snapshot shows it (the JSON report's fields)."""

    id: int
    status: Status
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
    reason: str | None = None
    peer: str | None = None
    protocol_version: str | None = None
    start_time: datetime | None = None
    """When it sent ``start`` (local time, with its UTC offset)."""
    end_time: datetime | None = None
    """When its run ended (local time, with its UTC offset)."""
    cpu_core_avg_pct: float | None = None
    rss_avg_bytes: int | None = None
    rss_peak_bytes: int | None = None
    chunk_p50_ms: float | None = None
    chunk_p99_ms: float | None = None
    last_heartbeat_age_s: float | None = None
    cpu_last_pct: float | None = None
    mem_last_pct: float | None = None
    rss_last_bytes: int | None = None
    process_clients: int | None = None
    """The most loadmon clients that shared this client's process at once during its run (itself
    included): its MEM and RSS are that process's."""
    device_util_pct: float | None = None
    """Latest utilisation % of the block device under the client's data directory (None: unknown,
    as on a file system without a block device)."""
    device_write_await_ms: float | None = None
    """Latest average wait of a write at that device, ms."""
    device_queue_depth: float | None = None
    """Latest average queue depth of that device."""
    device_write_mb_s: float | None = None
    """Latest MiB/s written at that device (by every writer on it)."""
    io_pressure_some_pct: float | None = None
    """Latest ``some avg10`` of the client host's I/O pressure, % (None without PSI)."""
    io_pressure_full_pct: float | None = None
    """Latest ``full avg10`` of the client host's I/O pressure, %."""
    dirty_bytes: int | None = None
    """Latest dirty memory of the client's host, bytes."""
    writeback_bytes: int | None = None
    """Latest memory under writeback on the client's host, bytes."""
    clock_offset_ms: float | None = None
    """How far the client's clock is behind the server's, in ms (negative: ahead), from the
    clock exchange's quickest round trip; None for a client that did not take part (a seed
    client)."""
    clock_rtt_ms: float | None = None
    """The round trip behind ``clock_offset_ms``, in ms: the offset is right to half of it."""
    chunk_p90_ms: float | None = None
    """90th percentile chunk write latency over the run, from the client's merged interval
    histograms (loadmon clients only; with them ``chunk_p50_ms``/``chunk_p99_ms`` come from the
    same histogram)."""
    chunk_p999_ms: float | None = None
    """99.9th percentile chunk write latency over the run (as ``chunk_p90_ms``)."""
    chunk_max_ms: float | None = None
    """Longest chunk write over the run (as ``chunk_p90_ms``)."""
    chunk_writes: int | None = None
    """Chunk writes in the client's merged histograms (as ``chunk_p90_ms``)."""
    engine: str | None = None
    """How the client's writer wrote, for a client asked for more than one write in flight
    (``iodepth``): ``"io_uring, iodepth 4, registered buffers"``, or ``"sync, one write at a
    time (...)"`` saying why io_uring could not be used there (a seccomp profile, an old
    kernel). None for one write at a time (the seed's)."""
    streams: tuple[Mapping[str, Any], ...] | None = None
    """Each writer stream's own figures, for a client that wrote from several (``jobs``), in
    stream order: ``stream``, ``bytes_written``, ``files_written``, ``throughput_mb_s``,
    ``chunk_p50_ms``, ``chunk_p99_ms``, ``chunk_max_ms``; the client's figures are their sums.
    None for a client with one stream."""
    pace_target_mb_s: float | None = None
    """The rate a paced client wrote at, its target, in MiB/s (None without a rate;
    ``throughput_mb_s`` is what it reached)."""
    schedule_lag_ms: float | None = None
    """How far behind its schedule a paced client is, in ms (the latest it reported)."""
    schedule_lag_p50_ms: float | None = None
    """Median start lag of a paced client's chunks (how late each began, 0 on time), in ms."""
    schedule_lag_p99_ms: float | None = None
    """99th percentile start lag of a paced client's chunks, in ms."""
    schedule_lag_max_ms: float | None = None
    """The largest schedule lag of a paced client over the run, in ms."""
    response_p50_ms: float | None = None
    """Median chunk response time of a paced client, in ms: from when the schedule had the
    chunk start to the end of its write (coordinated omission corrected)."""
    response_p90_ms: float | None = None
    """90th percentile chunk response time (as ``response_p50_ms``)."""
    response_p99_ms: float | None = None
    """99th percentile chunk response time (as ``response_p50_ms``)."""
    response_p999_ms: float | None = None
    """99.9th percentile chunk response time (as ``response_p50_ms``)."""
    response_max_ms: float | None = None
    """Longest chunk response time (as ``response_p50_ms``)."""
    kept_pace: bool | None = None
    """False when a paced client's schedule lag went past the bound (1 s): it could not keep
    pace; None without a rate."""
    verify: Mapping[str, Any] | None = None
    """What a verifying client's checks of its written data found (``verify``): ``files_checked``,
    ``blocks_checked``, ``errors`` (bad blocks by class: ``corrupt``, ``stale``, ``misdirected``,
    ``torn``, ``short``), ``errors_total``, ``findings`` (its first 20: ``class``,
    ``offset_bytes``, ``blocks``, ``path``, ``expected``, ``found``) and ``findings_left_off``
    (findings counted but not kept: past its first 20, or past the server's budget of finding
    text for the whole fleet). None for a client that did not verify."""
    json: str = field(default="{}", repr=False, compare=False)
    """The engine's JSON for this client."""

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> ClientInfo:
        names = {f.name for f in dataclasses.fields(cls)} - {"json"}
        kw = {k: v for k, v in d.items() if k in names}
        kw["status"] = Status(d["status"])
        kw["start_time"] = _time(d.get("start_time"))
        kw["end_time"] = _time(d.get("end_time"))
        if "streams" in d:
            kw["streams"] = tuple(_freeze(x) for x in d["streams"])
        if d.get("verify") is not None:
            kw["verify"] = _freeze(d["verify"])
        return cls(**kw, json=_json.dumps(d))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (the JSON report's keys and values)."""
        d: dict[str, Any] = _json.loads(self.json)
        return d


@dataclass(frozen=True)
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
    verify: Mapping[str, Any] | None = None
    """What the client's check of its data found (``verify`` "rollover" or "end"): files and
    blocks checked and the bad blocks by class (``corrupt``, ``stale``, ``misdirected``,
    ``torn``, ``short``), as the engine's result JSON has them; None without a check (or from
    an engine that does not report it)."""

    @classmethod
    def _from_json(cls, text: str) -> ClientResult:
        return cls._from_dict(_json.loads(text))

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> ClientResult:
        # Keys this version does not know (a newer engine's) are ignored, as ClientInfo does.
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        # Frozen (and hashable) through and through, as a Report's nested values.
        if kw.get("verify") is not None:
            kw["verify"] = _freeze(kw["verify"])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TotalSample:
    """One bucket of the all-clients series (the report's ``total.series``)."""

    t_s: float
    """Seconds from the common start to the end of the bucket."""
    bytes_written: int
    """Bytes written by all clients by then."""
    throughput_mb_s: float
    """MiB/s of all clients together over the bucket."""


@dataclass(frozen=True)
class Report:
    """The server's report; ``str(report)`` is the seed's text report."""

    start_time: datetime
    """When the server started (local time, with its UTC offset)."""
    end_time: datetime
    """When the server stopped (for a report of a running server: when it was taken)."""
    clients: tuple[ClientInfo, ...]
    """Every client that got an id, in id order."""
    total: dict[str, Any]
    """All clients together: clients, passed, files_written, bytes_written, throughput_mb_s,
    first_done, last_done, and the fleet's fields (typed below)."""
    series: list[dict[str, Any]]
    """Each client's time series: ``{"id": int, "samples": [{"t_s", "bytes_written",
    "throughput_mb_s", "cpu_pct", "mem_pct", "rss_bytes"}, ...]}``."""
    stopped: bool = False
    """Whether the run was stopped (a stop call, Ctrl-C) rather than ending by itself."""
    expected_clients: int | None = None
    """Fleet mode: the clients the server waited for (``expect_clients``); None otherwise."""
    started_clients: int | None = None
    """Fleet mode: the clients started together (fewer than expected after a start timeout);
    None outside fleet mode and before the start."""
    common_start: datetime | None = None
    """When the fleet started (outside fleet mode: the first client's start);
    ``total_series`` counts from here."""
    total_series: tuple[TotalSample, ...] = ()
    """All clients together over time (the JSON's ``total.series``): bytes and MiB/s summed
    over clients per time bucket from the common start."""
    warnings: tuple[str, ...] = ()
    """What to know before trusting the figures: a client whose clock is more than 1 s off the
    server's (each is a line of the text report too)."""
    verdict: dict[str, Any] | None = None
    """The thresholds' verdict (``Server(thresholds=[...])``): ``passed``, ``is_final`` and
    ``rules`` (each with ``rule``, ``outcome`` PASS/FAIL/NO DATA/PENDING, ``observed``,
    ``bound``, ``unit``, ``first_failed_s``, ``client``); None for a run without thresholds."""
    json: str = field(default="{}", repr=False, compare=False)
    """The JSON report."""

    @classmethod
    def _from_json(cls, text: str) -> Report:
        d = _json.loads(text)
        total = d["total"]
        return cls(
            start_time=datetime.fromisoformat(d["start_time"]),
            end_time=datetime.fromisoformat(d["end_time"]),
            clients=tuple(ClientInfo._from_dict(c) for c in d["clients"]),
            total=total,
            series=d.get("series", []),
            stopped=d.get("stopped", False),
            expected_clients=total.get("expected_clients"),
            started_clients=total.get("started_clients"),
            common_start=_time(total.get("common_start")),
            total_series=tuple(TotalSample(**p) for p in total.get("series", [])),
            warnings=tuple(d.get("warnings", [])),
            verdict=d.get("verdict"),
            json=text,
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict (the JSON report's structure)."""
        d: dict[str, Any] = _json.loads(self.json)
        return d

    def to_json(self) -> str:
        """The JSON report."""
        return self.json

    def __post_init__(self) -> None:
        # Frozen through and through: ``report.total["passed"] = 1`` raises TypeError.
        object.__setattr__(self, "total", _freeze(self.total))
        object.__setattr__(self, "series", _freeze(self.series))
        if self.verdict is not None:
            object.__setattr__(self, "verdict", _freeze(self.verdict))

    def __hash__(self) -> int:
        return hash((self.start_time, self.end_time, self.clients, self.stopped))

    def to_csv(self) -> str:
        """The clients as CSV: a header row with the JSON field names, one row per client."""
        return _loadmon._render_report(self.json, "csv")

    def to_html(self) -> str:
        """A self-contained HTML page: the report table and inline SVG charts of each client's
        throughput and CPU over time."""
        return _loadmon._render_report(self.json, "html")

    def __str__(self) -> str:
        """The seed's text report."""
        return _loadmon._render_report(self.json, "text")

    def __repr__(self) -> str:
        return (
            f"Report(clients={len(self.clients)}, passed={self.total.get('passed')}, "
            f"start_time={self.start_time!r}, end_time={self.end_time!r})"
        )


@dataclass(frozen=True)
class Plan:
    """What every worker of a fleet runs: ``Server(expect_clients=N, plan=Plan(...))``. The
    names and units are TestClient's (seconds, MB); the defaults are the core's (the seed's
    test). The core's rules are applied on construction: ConfigError (a ValueError) for an
    out-of-range number or a plan that breaks the seed's rules (chunk below the minimum,
    chunk above the file size). Each worker also runs the timed probe on its own host."""

    run_time: float = _PLAN_DEFAULTS["run_time"]
    """How long to write, seconds."""
    chunk_size: int | str = _PLAN_DEFAULTS["chunk_size"]
    """Size of one write: an int of MB, or a text with a unit ("4k", "256k", "1m")."""
    file_size: int | str = _PLAN_DEFAULTS["file_size"]
    """Size of one file: an int of MB, or a text with a unit."""
    min_chunk_size: int | str = _PLAN_DEFAULTS["min_chunk_size"]
    """Smallest chunk allowed: an int of MB, or a text with a unit."""
    sync: Literal["none", "file", "direct"] = _PLAN_DEFAULTS["sync"]
    """Durability mode."""
    keep_files: int | Literal["all"] = _PLAN_DEFAULTS["keep_files"]
    """Finished files each worker keeps per stream: an int, or "all"."""
    jobs: int = _PLAN_DEFAULTS["jobs"]
    """Writer streams of each worker, each with its own files."""
    iodepth: int = _PLAN_DEFAULTS["iodepth"]
    """Writes in flight per stream."""
    rate: float | None = _PLAN_DEFAULTS["rate"]
    """The fleet's pace, MB/s, split across its workers; None: as fast as possible."""
    verify: Literal["none", "rollover", "end"] = _PLAN_DEFAULTS["verify"]
    """When each worker checks the data it wrote: "none", "rollover" (each file just before
    ``keep_files`` deletes it) or "end" (the kept files, when the run ends)."""
    verify_block: int | str = _PLAN_DEFAULTS["verify_block"]
    """Verify block size: an int of bytes, or a text with a unit ("4k", "64k", "1m")."""
    verify_continue: bool = _PLAN_DEFAULTS["verify_continue"]
    """A bad block does not end a worker's run (it is counted and reported)."""
    verify_peer: bool = _PLAN_DEFAULTS["verify_peer"]
    """With verify "end": each worker checks another worker's kept files in a shared
    directory."""
    overwrite: bool = _PLAN_DEFAULTS["overwrite"]
    """Once a stream holds ``keep_files`` files, the oldest is rewritten in place."""

    def __post_init__(self) -> None:
        _loadmon._check_plan(self)

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> Plan:
        keep = d["keep_files"]
        return cls(
            run_time=d["run_time_s"],
            chunk_size=_size(d["chunk_size_bytes"]),
            file_size=_size(d["file_size_bytes"]),
            min_chunk_size=_size(d["min_chunk_size_bytes"]),
            sync=d["sync"],
            keep_files=keep if keep == "all" else int(keep),
            jobs=d.get("jobs", 1),
            iodepth=d.get("iodepth", 1),
            rate=d.get("rate_mb_s"),
            verify=d.get("verify", _PLAN_DEFAULTS["verify"]),
            verify_block=d.get("verify_block_bytes", _PLAN_DEFAULTS["verify_block"]),
            verify_continue=d.get("verify_continue", _PLAN_DEFAULTS["verify_continue"]),
            verify_peer=d.get("verify_peer", _PLAN_DEFAULTS["verify_peer"]),
            overwrite=d.get("overwrite", _PLAN_DEFAULTS["overwrite"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class WorkerRun:
    """One run of a worker that passed: the run's id, its plan and what the writer did."""

    run: int
    """The run's id (from the server's plan command)."""
    plan: Plan
    """The plan the server sent."""
    result: ClientResult
    """The run's result, as a TestClient reports it."""

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> WorkerRun:
        return cls(
            run=d["run"],
            plan=Plan._from_dict(d["plan"]),
            result=ClientResult._from_dict(d["result"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class WorkerSummary:
    """What a worker did until it stopped."""

    passed: int
    """Runs that passed."""
    failed: int
    """Runs that took an id and did not pass (the plan could not run here, the run failed)."""
    last: WorkerRun | None
    """The last run that passed."""

    @classmethod
    def _from_json(cls, text: str) -> WorkerSummary:
        d = _json.loads(text)
        last = d.get("last")
        return cls(
            passed=d["passed"],
            failed=d["failed"],
            last=None if last is None else WorkerRun._from_dict(last),
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dataclasses.asdict(self)


class _Clients(tuple[ClientInfo, ...]):
    """``Server.clients``: a tuple of ClientInfo. Calling it (``server.clients()``, the old
    method form) still works and returns the same tuple."""

    __slots__ = ()

    def __call__(self) -> _Clients:
        import warnings

        warnings.warn(
            "Server.clients is a property now: use server.clients, not server.clients()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self


def _clients_from_json(text: str) -> _Clients:
    return _Clients(ClientInfo._from_dict(c) for c in _json.loads(text))
