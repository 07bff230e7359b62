"""Issue 12, the Python face: never hang, freeze or surprise.

Each test here failed on the face before the issue (an OverflowError, a PanicException, a
freeze at drop, a deadlock, a shadowed builtin, an async body never run, a live Context after
its run, Ellipsis in signatures, float noise in the series...).
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import inspect
import logging
import math
import pickle
import pydoc
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import loadmon
from loadmon import _loadmon
from conftest import FAST, small_client

# ---------------------------------------------------------------------------------------------
# Numbers out of range: ConfigError (a ValueError), never OverflowError or a panic
# ---------------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")

BAD_SERVER = [
    {"port": -1},
    {"port": 70000},
    {"port": 2**200},
    {"max_clients": -1},
    {"first_client_id": 2**32},
    {"heartbeat_timeout": 1e300},
    {"heartbeat_timeout": NAN},
    {"handshake_timeout": INF},
    {"heartbeat_timeout": 10**400},
    {"http_linger": -1},
]
BAD_TEST_CLIENT = [
    {"run_time": 1e300},
    {"run_time": NAN},
    {"run_time": INF},
    {"port": -1},
    {"port": 70000},
    {"chunk_size": -10},
    {"file_size": 2**64},
    {"min_chunk_size": -1},
    {"keep_files": -3},
    {"keep_files": 2**200},
    {"heartbeat_period": 1e300},
    {"connect_timeout": NAN},
]
BAD_CLIENT = [
    {"port": 70000},
    {"run_time": 1e300},
    {"run_time": NAN},
    {"chunk_size": -10, "file_size": 10},
    {"stats_period": INF},
    {"chunk_size": 1, "file_size": 2**60},
]


def _is_config_error(e: BaseException) -> None:
    assert isinstance(e, loadmon.ConfigError), repr(e)
    assert isinstance(e, ValueError) and isinstance(e, loadmon.LoadmonError)
    assert not isinstance(e, OverflowError)
    assert len(str(e)) < 200, "the message names the value briefly"


@pytest.mark.parametrize("kwargs", BAD_SERVER)
def test_server_numbers_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(Exception) as info:
        loadmon.Server(**kwargs)
    _is_config_error(info.value)


@pytest.mark.parametrize("kwargs", BAD_TEST_CLIENT)
def test_test_client_numbers_out_of_range(kwargs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        loadmon.TestClient(out_dir=tmp_path, **kwargs)
    _is_config_error(info.value)


@pytest.mark.parametrize("kwargs", BAD_CLIENT)
def test_client_numbers_out_of_range(kwargs: dict[str, Any]) -> None:
    with pytest.raises(Exception) as info:
        loadmon.Client(**kwargs)
    _is_config_error(info.value)


def test_report_failure_numbers_out_of_range() -> None:
    for kw in (
        {"port": -1},
        {"connect_timeout": 1e300},
        {"chunk_size": -1, "file_size": 1},
        {"chunk_size": 5},  # half-set file stats: the core's rule, as for Client
        {"chunk_size": 1, "file_size": 2**60},
    ):
        with pytest.raises(Exception) as info:
            loadmon.report_failure("x", **kw)
        _is_config_error(info.value)


@pytest.mark.parametrize("timeout", [1e300, NAN, INF, -1.0, 10**400])
def test_wait_timeouts_out_of_range(server: loadmon.Server, tmp_path: Path, timeout: float) -> None:
    for call in (lambda: server.wait(timeout=timeout), lambda: server.events(timeout=timeout)):
        with pytest.raises(Exception) as info:
            call()
        _is_config_error(info.value)
    client = small_client(server.port, tmp_path, run_time=0.5)
    client.start()
    with pytest.raises(Exception) as info:
        client.join(timeout=timeout)
    _is_config_error(info.value)
    client.join(timeout=30)


def test_timeout_zero_polls_and_none_waits(server: loadmon.Server, tmp_path: Path) -> None:
    t = time.monotonic()
    with pytest.raises(loadmon.LoadmonTimeoutError):
        server.wait(timeout=0)
    client = small_client(server.port, tmp_path, run_time=0.5)
    client.start()
    with pytest.raises(loadmon.LoadmonTimeoutError):
        client.join(timeout=0)
    assert time.monotonic() - t < 1.0, "timeout=0 does not wait"
    result = client.join(timeout=None)
    assert client.join(timeout=0) == result, "a finished run answers a poll"
    assert server.wait(timeout=None).clients[0].status == loadmon.Status.PASS


def test_context_numbers_out_of_range(server: loadmon.Server) -> None:
    errors: list[BaseException] = []

    class Writer(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> None:
            for args in ((-1, 0.1), (2**64, 0.1), (1, NAN), (1, 1e300)):
                try:
                    ctx.record_write(*args)
                except Exception as e:  # noqa: BLE001
                    errors.append(e)

    Writer(port=server.port).run()
    assert len(errors) == 4
    for e in errors:
        _is_config_error(e)


# ---------------------------------------------------------------------------------------------
# No panic crosses into Python
# ---------------------------------------------------------------------------------------------


def test_a_rust_panic_is_an_internal_error() -> None:
    with pytest.raises(loadmon.InternalError, match="panicked: boom") as info:
        _loadmon._test_panic("boom")
    assert isinstance(info.value, Exception), "not pyo3's PanicException (a BaseException)"


# ---------------------------------------------------------------------------------------------
# Logging: a queue drained by Python, NullHandler, the report as one record
# ---------------------------------------------------------------------------------------------


def test_loadmon_logger_has_a_null_handler() -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("loadmon").handlers)


def test_the_report_is_one_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="loadmon")
    with loadmon.Server(port=0) as server:
        small_client(server.port, tmp_path).run()
        server.wait(timeout=10)
    reports = [r for r in caplog.records if r.name == "loadmon.report"]
    assert len(reports) == 1, [r.getMessage() for r in reports]
    assert reports[0].levelno == logging.INFO
    text = reports[0].getMessage()
    assert "All test clients completed!" in text and "Test status:   PASS" in text
    others = [r for r in caplog.records if r.name != "loadmon.report"]
    assert not any("Test status:" in r.getMessage() for r in others)


def test_debug_records_follow_the_level(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="loadmon")
    with loadmon.Server(port=0) as server:
        small_client(server.port, tmp_path, run_time=0.3).run()
        server.wait(timeout=10)
    assert not [r for r in caplog.records if r.name.startswith("loadmon") and r.levelno < logging.WARNING]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="loadmon")
    with loadmon.Server(port=0) as server:
        small_client(server.port, tmp_path, run_time=0.3).run()
        server.wait(timeout=10)
    assert any(r.levelno == logging.DEBUG and r.name.startswith("loadmon.") for r in caplog.records)


class _GilHog(logging.Handler):
    """A slow handler: every record costs 20 ms with the GIL held."""

    def emit(self, record: logging.LogRecord) -> None:
        end = time.monotonic() + 0.02
        while time.monotonic() < end:
            pass


def test_a_slow_log_handler_never_slows_the_engine(tmp_path: Path) -> None:
    # The engine's threads queue their records and go on: a handler that holds the GIL for
    # every record cannot stall heartbeats or the server's stop.
    hog = _GilHog(level=logging.DEBUG)
    logger = logging.getLogger("loadmon")
    old = logger.level
    logger.addHandler(hog)
    logger.setLevel(logging.DEBUG)
    try:
        with loadmon.Server(port=0) as server:
            result = small_client(server.port, tmp_path, run_time=1.0).run()
            t = time.monotonic()
            report = server.wait(timeout=10)
            assert time.monotonic() - t < 5
        assert report.clients[0].status == loadmon.Status.PASS
        assert result.files_written >= 1
    finally:
        logger.removeHandler(hog)
        logger.setLevel(old)


# ---------------------------------------------------------------------------------------------
# Dropping a running Server / TestClient / Client: no freeze, reports still written
# ---------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _run_script(body: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    script = textwrap.dedent(body)
    t = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout
    )
    return out, time.monotonic() - t


PRELUDE = """
import gc, logging, sys, time
from pathlib import Path
import loadmon
# Logging on, at DEBUG, with a handler: the path that froze the interpreter before.
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

def running(server):
    deadline = time.monotonic() + 20
    while not any(c.status == loadmon.Status.RUNNING for c in server.clients):
        assert time.monotonic() < deadline
        time.sleep(0.02)
"""


def test_del_of_a_running_server_stops_it_within_a_second(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out, _ = _run_script(
        PRELUDE
        + f"""
server = loadmon.Server(port=0, report_json={str(report)!r})
server.start()
client = loadmon.TestClient(port=server.port, run_time=30, chunk_size=1, file_size=2,
                            min_chunk_size=1, out_dir={str(tmp_path / "d")!r})
client.start()
running(server)
t = time.monotonic()
del server
gc.collect()
print("server dropped in", time.monotonic() - t, flush=True)
assert Path({str(report)!r}).exists()
t = time.monotonic()
del client
gc.collect()
print("client dropped in", time.monotonic() - t, flush=True)
"""
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.rsplit(" in ", 1) for line in out.stdout.splitlines())
    assert float(lines["server dropped"]) < 1.0, out.stdout
    assert float(lines["client dropped"]) < 1.5, out.stdout
    assert '"status": "ABORTED"' in report.read_text()


def test_interpreter_exit_with_a_running_server_and_client(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out, took = _run_script(
        PRELUDE
        + f"""
server = loadmon.Server(port=0, report_json={str(report)!r})
server.start()
client = loadmon.TestClient(port=server.port, run_time=30, chunk_size=1, file_size=2,
                            min_chunk_size=1, out_dir={str(tmp_path / "d")!r})
client.start()
running(server)
print("exiting", flush=True)
"""
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "exiting"
    assert took < 5, took
    assert report.exists() and '"clients"' in report.read_text()


def test_exception_path_and_a_background_generic_client(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out, took = _run_script(
        PRELUDE
        + f"""
class Forever(loadmon.Client):
    def run_tests(self, ctx):
        while not ctx.stopped:
            time.sleep(0.01)
            ctx.file_rollover()

def serve_and_fail():
    server = loadmon.Server(port=0, report_json={str(report)!r})
    server.start()
    client = Forever(port=server.port, heartbeat_period=0.1)
    client.start()
    running(server)
    raise ValueError("the test went wrong")

try:
    serve_and_fail()
except ValueError:
    pass
print("after the exception", Path({str(report)!r}).exists(), flush=True)
# A generic client left running in the background at exit:
server2 = loadmon.Server(port=0)
server2.start()
bg = Forever(port=server2.port, heartbeat_period=0.1)
bg.start()
running(server2)
"""
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "after the exception True"
    assert took < 10, took


def test_port_and_cancel_during_start_do_not_deadlock(tmp_path: Path) -> None:
    # Another thread reads `port`/`running` and calls cancel() while start() runs; before,
    # start() held a lock across the GIL release and the reader waited on it with the GIL.
    out, took = _run_script(
        f"""
import threading, loadmon
stop = threading.Event()
servers, clients = [], []

def poke():
    while not stop.is_set():
        for s in list(servers[-1:]):
            s.port; s.running; s.http_url
        for c in list(clients[-1:]):
            c.port; c.cancel(); c.running

t = threading.Thread(target=poke)
t.start()
try:
    for i in range(40):
        s = loadmon.Server(port=0)
        servers.append(s)
        s.start()
        c = loadmon.TestClient(port=s.port, run_time=5, chunk_size=1, file_size=2,
                               min_chunk_size=1, out_dir={str(tmp_path)!r})
        clients.append(c)
        c.start()
        try:
            c.join(timeout=10)
        except loadmon.LoadmonError:
            pass
        s.stop()
finally:
    stop.set()
    t.join()
print("ok")
""",
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------------------
# State errors: StateError, a RuntimeError
# ---------------------------------------------------------------------------------------------


def test_state_errors(tmp_path: Path) -> None:
    assert issubclass(loadmon.StateError, RuntimeError)
    assert issubclass(loadmon.StateError, loadmon.LoadmonError)
    s = loadmon.Server(port=0)
    for call in (s.wait, s.stop, s.report, s.events):
        with pytest.raises(loadmon.StateError, match="not started"):
            call()
    s.start()
    with pytest.raises(loadmon.StateError, match="already started"):
        s.start()
    s.stop()
    with pytest.raises(loadmon.StateError, match="runs once"):
        s.start()
    assert not s.running
    c = small_client(s.port, tmp_path)
    with pytest.raises(loadmon.StateError, match="not started"):
        c.join()

    class Nothing(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> None:
            pass

    with pytest.raises(loadmon.StateError, match="not started"):
        Nothing().join()


def test_start_twice_while_running(server: loadmon.Server, tmp_path: Path) -> None:
    c = small_client(server.port, tmp_path, run_time=5)
    c.start()
    with pytest.raises(loadmon.StateError, match="already running"):
        c.start()
    with pytest.raises(loadmon.StateError, match="already running"):
        c.run()
    c.cancel()
    with pytest.raises(loadmon.LoadmonInterruptedError):
        c.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# Names: no builtin shadowed by `*`
# ---------------------------------------------------------------------------------------------


def test_star_import_does_not_shadow_builtins() -> None:
    ns: dict[str, Any] = {}
    exec("from loadmon import *", ns)
    shadowed = [n for n in ns if n != "__builtins__" and hasattr(builtins, n)]
    assert shadowed == [], shadowed
    assert set(loadmon.__all__) <= set(ns)
    for name in loadmon.__all__:
        assert getattr(loadmon, name) is ns[name]
    # `except TimeoutError` still catches socket.timeout after the import.
    exec("try:\n    raise socket.timeout()\nexcept TimeoutError:\n    caught = True", ns | {"socket": socket})
    assert issubclass(loadmon.LoadmonTimeoutError, TimeoutError)
    assert issubclass(loadmon.LoadmonTimeoutError, loadmon.LoadmonError)
    assert issubclass(loadmon.LoadmonInterruptedError, InterruptedError)
    assert issubclass(loadmon.LoadmonInterruptedError, loadmon.LoadmonError)
    assert "TimeoutError" not in loadmon.__all__ and "InterruptedError" not in loadmon.__all__
    with pytest.warns(DeprecationWarning):
        assert loadmon.TimeoutError is loadmon.LoadmonTimeoutError  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# run_tests: async, BaseExceptions, __cause__
# ---------------------------------------------------------------------------------------------


class AsyncWriter(loadmon.Client):
    def __init__(self, port: int) -> None:
        super().__init__(port=port, run_time=0.5, **FAST)
        self.steps = 0

    async def run_tests(self, ctx: loadmon.Context) -> None:
        while not ctx.stopped:
            await asyncio.sleep(0.05)
            ctx.file_rollover()
            self.steps += 1


def test_async_run_tests_runs(server: loadmon.Server) -> None:
    c = AsyncWriter(server.port)
    result = c.run()
    assert c.steps >= 3 and result.files_written == c.steps
    [info] = server.wait(timeout=10).clients
    assert info.status == loadmon.Status.PASS and info.files_written == c.steps


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_base_exceptions_propagate_as_themselves(server: loadmon.Server, exc: BaseException) -> None:
    class Raiser(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> None:
            raise exc

    with pytest.raises(type(exc)) as info:
        Raiser(port=server.port).run()
    assert info.value is exc
    [c] = server.wait(timeout=10).clients
    assert c.status == loadmon.Status.FAILED


def test_the_user_exception_is_the_cause(server: loadmon.Server) -> None:
    class Boom(loadmon.Client):
        raised: BaseException | None = None

        def run_tests(self, ctx: loadmon.Context) -> None:
            self.raised = RuntimeError("the disk is on fire")
            raise self.raised

    c = Boom(port=server.port)
    with pytest.raises(loadmon.WorkloadError, match="RuntimeError: the disk is on fire") as info:
        c.run()
    cause = info.value.__cause__
    assert cause is c.raised
    assert cause.__traceback__ is not None
    frames = [f.name for f in __import__("traceback").extract_tb(cause.__traceback__)]
    assert "run_tests" in frames


def test_client_start_join_cancel(server: loadmon.Server) -> None:
    class Forever(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> None:
            while not ctx.stopped:
                time.sleep(0.01)

    c = Forever(port=server.port, **FAST)
    c.start()
    assert c.running
    with pytest.raises(loadmon.LoadmonTimeoutError):
        c.join(timeout=0.2)
    c.cancel()
    with pytest.raises(loadmon.LoadmonInterruptedError):
        c.join(timeout=10)
    assert not c.running


# ---------------------------------------------------------------------------------------------
# The Context is dead after the run
# ---------------------------------------------------------------------------------------------


def test_context_is_dead_after_the_run(server: loadmon.Server) -> None:
    class Once(loadmon.Client):
        ctx: loadmon.Context | None = None

        def run_tests(self, ctx: loadmon.Context) -> None:
            self.ctx = ctx
            assert not ctx.stopped and not ctx.finished
            ctx.file_rollover()

    c = Once(port=server.port)  # no run time
    result = c.run()
    ctx = c.ctx
    assert ctx is not None
    assert ctx.stopped and ctx.finished
    for call in (ctx.file_rollover, lambda: ctx.record_write(1, 0.1), lambda: ctx.send_stats(1, 1)):
        with pytest.raises(loadmon.StateError, match="this run is over"):
            call()
    [info] = server.wait(timeout=10).clients
    assert info.files_written == result.files_written == ctx.files_written == 1


# ---------------------------------------------------------------------------------------------
# Signatures, docstrings, reprs, types
# ---------------------------------------------------------------------------------------------


def _params(obj: Any) -> dict[str, Any]:
    return {
        n: p.default
        for n, p in inspect.signature(obj).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_signatures_show_the_core_defaults() -> None:
    d = _loadmon.defaults()
    for obj, defaults in (
        (loadmon.Server, d["server"]),
        (loadmon.TestClient, d["test_client"]),
        (loadmon.Client, d["client"]),
        (loadmon.Worker, d["worker"]),
        (loadmon.Plan, d["plan"]),
    ):
        params = _params(obj)
        assert params, obj
        assert Ellipsis not in params.values(), (obj, params)
        for name, value in params.items():
            assert name in defaults, (obj, name)
            assert value == defaults[name], (obj, name, value, defaults[name])
    failure = _params(loadmon.report_failure)
    assert failure["host"] == d["client"]["host"] and failure["port"] == d["client"]["port"]
    assert failure["connect_timeout"] == d["client"]["connect_timeout"]
    assert "_args" not in str(inspect.signature(loadmon.Client))
    assert list(inspect.signature(loadmon.Server.wait).parameters) == ["self", "timeout"]


def test_every_public_class_and_method_has_a_docstring() -> None:
    missing = []
    for name in loadmon.__all__:
        obj = getattr(loadmon, name)
        if not inspect.isclass(obj) and not callable(obj):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if not (callable(value) or inspect.isdatadescriptor(value)) or name == "Status":
                    continue
                if not (getattr(value, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == [], missing
    text = pydoc.render_doc(loadmon.Server)
    assert "hands out client ids" in text and "runs once" in text


def test_reprs_are_python_style(tmp_path: Path) -> None:
    assert repr(loadmon.Server(port=0)) == "Server(host='127.0.0.1', port=0, running=False)"
    c = small_client(1234, tmp_path)
    assert repr(c).startswith("TestClient(host='127.0.0.1', port=1234, run_time=1.0,")
    assert repr(c).endswith("running=False)")

    class Mine(loadmon.Client):
        pass

    assert repr(Mine(port=5)) == "Mine(host='127.0.0.1', port=5, running=False)"


def test_keep_files_returns_what_it_was_given(tmp_path: Path) -> None:
    assert small_client(1234, tmp_path, keep_files=3).keep_files == 3
    assert small_client(1234, tmp_path, keep_files="all").keep_files == "all"
    assert small_client(1234, tmp_path).keep_files == _loadmon.defaults()["test_client"]["keep_files"]
    with pytest.raises(TypeError):
        small_client(1234, tmp_path, keep_files=2.5)


def test_test_client_has_host_and_port(tmp_path: Path) -> None:
    c = small_client(4321, tmp_path, host="localhost")
    assert (c.host, c.port) == ("localhost", 4321)


def test_results_are_values(server: loadmon.Server, tmp_path: Path) -> None:
    result = small_client(server.port, tmp_path).run()
    report = server.wait(timeout=10)
    [info] = report.clients
    # Status is a str enum; times are datetimes.
    assert info.status is loadmon.Status.PASS and info.status == "PASS"
    assert isinstance(info.status, str) and loadmon.Status("TIMED OUT") is loadmon.Status.TIMED_OUT
    assert isinstance(report.start_time, datetime) and report.start_time.tzinfo is not None
    assert isinstance(info.start_time, datetime) and info.end_time is not None
    assert report.start_time <= info.start_time <= info.end_time <= report.end_time
    # Frozen, comparable, picklable.
    for obj in (result, report, info):
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.files_written = 0  # type: ignore[misc, union-attr]
        again = pickle.loads(pickle.dumps(obj))
        assert again == obj and again is not obj
    assert server.report() == report
    assert result != dataclasses.replace(result, files_written=result.files_written + 1)
    # The JSON structure is unchanged by the conversions.
    assert info.to_dict()["status"] == "PASS" and isinstance(info.to_dict()["start_time"], str)
    assert "running=" not in repr(report) and repr(info).startswith("ClientInfo(id=100, status=")


def test_server_clients_and_report_clients_are_both_properties(
    server: loadmon.Server, tmp_path: Path
) -> None:
    assert server.clients == ()
    small_client(server.port, tmp_path).run()
    report = server.wait(timeout=10)
    assert isinstance(server.clients, tuple) and isinstance(report.clients, tuple)
    assert [c.id for c in server.clients] == [c.id for c in report.clients] == [100]
    with pytest.warns(DeprecationWarning):
        assert server.clients() == server.clients  # type: ignore[operator]


def test_events_are_a_context_manager(tmp_path: Path) -> None:
    with loadmon.Server(port=0) as server:
        with server.events(timeout=20) as events:
            client = small_client(server.port, tmp_path, run_time=0.3)
            client.start()
            first = next(events)
        assert first["event"] == "client_connected"
        assert list(events) == [], "closed by the with block"
        other = server.events(timeout=20)
        other.close()
        assert list(other) == []
        client.join(timeout=20)
        server.wait(timeout=20)


def test_series_values_have_no_float_noise(server: loadmon.Server, tmp_path: Path) -> None:
    small_client(server.port, tmp_path, run_time=1.0).run()
    report = server.wait(timeout=10)
    [s] = report.series
    assert len(s["samples"]) >= 2
    for sample in s["samples"]:
        for key in ("t_s", "throughput_mb_s", "cpu_pct", "mem_pct"):
            v = sample[key]
            # A value stored as a 32-bit float comes back as its shortest decimal (102.42,
            # not 102.41999816894531): at most 9 significant digits.
            assert float(format(v, ".9g")) == v, (key, v)
            assert math.isfinite(v)


def test_async_face(tmp_path: Path) -> None:
    async def main() -> tuple[loadmon.ClientResult, loadmon.Report, int]:
        with loadmon.Server(port=0) as server:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            result = await small_client(server.port, tmp_path, run_time=0.5).run_async()
            report = await server.wait_async(timeout=10)
            ticker.cancel()
            return result, report, ticks

    result, report, ticks = asyncio.run(main())
    assert ticks > 10, "the event loop ran meanwhile"
    assert report.clients[0].files_written == result.files_written


def test_async_cancel_cancels_the_run(server: loadmon.Server, tmp_path: Path) -> None:
    client = small_client(server.port, tmp_path, run_time=30)

    async def main() -> None:
        task = asyncio.create_task(client.run_async())
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    with pytest.raises(loadmon.LoadmonInterruptedError):
        client.join(timeout=10)


def test_no_warnings_on_the_happy_path(server: loadmon.Server, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small_client(server.port, tmp_path, run_time=0.3).run()
        server.wait(timeout=10)


def test_exit_with_a_run_tests_that_ignores_stopped() -> None:
    # A run_tests that never looks at ctx.stopped: interpreter exit waits for it at most 2 s,
    # then ends it with the other daemon threads (before, the process aborted or hung).
    out, took = _run_script(
        PRELUDE
        + """
class Stubborn(loadmon.Client):
    def run_tests(self, ctx):
        while True:
            time.sleep(0.01)

server = loadmon.Server(port=0)
server.start()
client = Stubborn(port=server.port, heartbeat_period=0.1)
client.start()
running(server)
print("exiting", flush=True)
"""
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "exiting"
    assert took < 6, took
