"""The hostile review of the Python face: hangs, deadlocks, slow Ctrl-C, silent passes.

Each test here failed (or hung: they run the risky part in a child process with a timeout)
before its fix.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import pytest

import loadmon
from loadmon import _workload
from conftest import small_client


def _script(body: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    t = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out, time.monotonic() - t


def _status(server: loadmon.Server) -> list[tuple[str, str | None]]:
    return [(str(c.status), c.reason) for c in server.clients]


# ---------------------------------------------------------------------------------------------
# 1. run_tests' end is always reported
# ---------------------------------------------------------------------------------------------


class _StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() fails")


class _StrNotStr(Exception):
    def __str__(self) -> Any:
        return 42


@pytest.mark.parametrize("exc_type", [_StrRaises, _StrNotStr])
def test_an_unprintable_exception_fails_the_run(
    server: loadmon.Server, exc_type: type[Exception]
) -> None:
    class C(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> None:
            raise exc_type()

    c = C(port=server.port)
    c.start()
    with pytest.raises(loadmon.WorkloadError, match="<unprintable>") as info:
        c.join(timeout=10)  # before: LoadmonTimeoutError, and the client ran for ever
    assert isinstance(info.value.__cause__, exc_type)
    report = server.wait(timeout=10)
    assert report.clients[0].status == loadmon.Status.FAILED
    assert "<unprintable>" in (report.clients[0].reason or "")


def test_a_run_tests_thread_that_dies_without_finishing_ends_the_run(
    server: loadmon.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Python side drops its end of the run without calling finish (a thread that died).
    monkeypatch.setattr(_workload, "start", lambda client, ctx, end: None)

    class C(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> None:
            pass

    c = C(port=server.port)
    c.start()
    with pytest.raises(loadmon.WorkloadError, match="without reporting"):
        c.join(timeout=10)


def test_interpreter_exit_ends_a_run_whose_python_thread_never_finishes() -> None:
    # A run_tests thread frozen for good (as daemon threads are at exit) while the client is
    # dropped at exit: exit neither hangs nor waits the 10 s a client's drop allows.
    out, took = _script(
        """
        import threading, time, loadmon
        from loadmon import _workload
        hold = []
        _workload.start = lambda client, ctx, end: hold.append(end)  # never finishes

        class C(loadmon.Client):
            def run_tests(self, ctx):
                pass

        server = loadmon.Server(port=0)
        server.start()
        client = C(port=server.port, heartbeat_period=0.1)
        client.start()
        deadline = time.monotonic() + 20
        while not server.clients:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        print("exiting", flush=True)
        """,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "exiting"
    assert took < 8, took


# ---------------------------------------------------------------------------------------------
# 2. fork while the log thread is busy: the child is not stuck on a lock
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_exit_while_the_log_thread_is_busy(tmp_path: Path) -> None:
    out, _ = _script(
        f"""
        import logging, os, sys, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        import loadmon

        class Slow(logging.Handler):
            def emit(self, record):
                time.sleep(0.001)

        lg = logging.getLogger("loadmon")
        lg.setLevel(logging.DEBUG)
        lg.addHandler(Slow())
        server = loadmon.Server(port=0)
        server.start()
        client = loadmon.TestClient(port=server.port, run_time=60, chunk_size=1, file_size=1,
                                    min_chunk_size=1, out_dir={str(tmp_path)!r},
                                    heartbeat_period=0.001, stats_period=0.001)
        client.start()
        time.sleep(0.5)
        slow = []
        for i in range(20):
            t = time.monotonic()
            pid = os.fork()
            if pid == 0:
                if i % 2:  # the child uses loadmon (a blocking call flushes)
                    s2 = loadmon.Server(port=0)
                    s2.start()
                    s2.stop()
                sys.exit(0)
            deadline = time.monotonic() + 5
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    status = -9
                    break
                time.sleep(0.01)
            if status != 0 or time.monotonic() - t > 3:
                slow.append((i, status, round(time.monotonic() - t, 2)))
        print("slow or stuck children:", slow, flush=True)
        client.cancel()
        server.stop()
        """,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "slow or stuck children: []", out.stdout


# ---------------------------------------------------------------------------------------------
# 3. a log handler that calls a blocking loadmon method
# ---------------------------------------------------------------------------------------------


def test_a_handler_that_calls_wait_does_not_deadlock(tmp_path: Path) -> None:
    out, _ = _script(
        f"""
        import faulthandler, logging, threading, time, loadmon
        faulthandler.dump_traceback_later(30, exit=True)
        server = loadmon.Server(port=0)
        got = {{}}

        class OnReport(logging.Handler):
            def emit(self, record):
                if record.name == "loadmon.report":
                    got["report"] = server.wait(timeout=0)
                    got["thread"] = threading.current_thread().name

        lg = logging.getLogger("loadmon")
        lg.setLevel(logging.INFO)
        lg.addHandler(OnReport())
        server.start()
        loadmon.TestClient(port=server.port, run_time=0.3, chunk_size=1, file_size=1,
                           min_chunk_size=1, out_dir={str(tmp_path)!r}).run()
        report = server.wait(timeout=10)
        deadline = time.monotonic() + 10
        while "report" not in got:
            assert time.monotonic() < deadline, "the handler never got the report"
            time.sleep(0.02)
        print("ok", got["report"] == report, flush=True)
        """,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok True"


# ---------------------------------------------------------------------------------------------
# 4, 6. Ctrl-C: report_failure, and a run_tests that ignores ctx.stopped
# ---------------------------------------------------------------------------------------------


def _time_to_interrupt(body: str) -> tuple[float, str]:
    """Runs ``body`` (it prints "ready" then blocks), sends SIGINT; seconds until the child
    prints its last line, and that output."""
    script = (
        "import signal, sys, time, loadmon\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n" + textwrap.dedent(body)
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    try:
        readable, _, _ = select.select([p.stdout], [], [], 30)
        assert readable, "the child never got ready"
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        t = time.monotonic()
        os.kill(p.pid, signal.SIGINT)
        readable, _, _ = select.select([p.stdout], [], [], 20)
        took = time.monotonic() - t
        line = p.stdout.readline().strip() if readable else "(nothing)"
    finally:
        p.kill()
        p.wait()
    return took, line


def test_ctrl_c_interrupts_report_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts the connection, never answers: the handshake waits
        port = s.getsockname()[1]
        took, line = _time_to_interrupt(
            f"""
            print("ready", flush=True)
            try:
                loadmon.report_failure("cannot run", port={port}, connect_timeout=1e9)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            """
        )
    assert line == "interrupted"
    assert took < 2, took


def test_ctrl_c_in_run_with_a_run_tests_that_ignores_stopped() -> None:
    took, line = _time_to_interrupt(
        """
        class Stubborn(loadmon.Client):
            def run_tests(self, ctx):
                while True:
                    time.sleep(0.01)

        server = loadmon.Server(port=0)
        server.start()
        client = Stubborn(port=server.port)
        print("ready", flush=True)
        try:
            client.run()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    assert line == "interrupted"
    assert took < 2, took  # before: 10 s


# ---------------------------------------------------------------------------------------------
# 7. flushing the log records is bounded
# ---------------------------------------------------------------------------------------------


def test_interpreter_exit_does_not_wait_for_a_slow_handler(tmp_path: Path) -> None:
    out, took = _script(
        f"""
        import logging, time, loadmon

        class Slow(logging.Handler):
            def emit(self, record):
                time.sleep(0.02)

        lg = logging.getLogger("loadmon")
        lg.setLevel(logging.DEBUG)
        lg.addHandler(Slow())
        lg.addHandler(logging.StreamHandler())
        server = loadmon.Server(port=0)
        server.start()
        clients = [loadmon.TestClient(port=server.port, run_time=60, chunk_size=1, file_size=1,
                                      min_chunk_size=1, out_dir={str(tmp_path)!r},
                                      heartbeat_period=0.001, stats_period=0.001)
                   for _ in range(2)]
        for c in clients:
            c.start()
        time.sleep(2)
        print("exiting", flush=True)
        """,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "exiting"
    assert "dropped at interpreter exit" in out.stderr, out.stderr[-2000:]
    assert took < 12, took  # before: minutes (every queued record, 20 ms each)


class _SlowHandler(logging.Handler):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.threads: set[str] = set()

    def emit(self, record: Any) -> None:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)


def _with_handler(handler: Any) -> Any:
    lg = logging.getLogger("loadmon")
    old = lg.level
    lg.setLevel(logging.DEBUG)
    lg.addHandler(handler)
    return lambda: (lg.removeHandler(handler), lg.setLevel(old))


def test_a_blocking_call_does_not_emit_the_whole_backlog(
    server: loadmon.Server, tmp_path: Path
) -> None:
    handler = _SlowHandler(0.005)
    undo = _with_handler(handler)
    try:
        c = small_client(server.port, tmp_path, run_time=1, heartbeat_period=0.001)
        c.run()  # thousands of DEBUG records queued behind a 5 ms handler
        t = time.monotonic()
        try:
            server.wait(timeout=0)  # flushes before it returns or raises
        except loadmon.LoadmonTimeoutError:
            pass
        took = time.monotonic() - t
    finally:
        undo()
    assert took < 0.5, took  # before: every queued record (seconds to minutes)


def test_the_asyncio_helpers_never_emit_records_on_the_event_loop(tmp_path: Path) -> None:
    handler = _SlowHandler(0.001)
    undo = _with_handler(handler)
    try:

        async def main() -> None:
            with loadmon.Server(port=0) as server:
                c = small_client(server.port, tmp_path, run_time=0.5, heartbeat_period=0.001)
                await c.run_async()
                await server.wait_async(timeout=10)

        asyncio.run(main())
    finally:
        undo()
    assert threading.current_thread().name not in handler.threads, handler.threads


# ---------------------------------------------------------------------------------------------
# 8. a dropped generic Client is cancelled
# ---------------------------------------------------------------------------------------------


def test_del_of_a_generic_client_waiting_for_run_tests_cancels_it() -> None:
    # A server that gives an id and never says run_tests: the client waits, then is dropped.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(20)

        class C(loadmon.Client):
            def run_tests(self, ctx: loadmon.Context) -> None:
                pass

        c = C(port=listener.getsockname()[1])
        c.start()
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(20)
            f = conn.makefile("r", newline="\n")
            while True:
                line = f.readline()
                assert line, "the client closed the connection during the handshake"
                if line.startswith("hello"):
                    conn.sendall(b"hello:1.0\n")
                elif line.strip() == "get_cid":
                    conn.sendall(b"set_cid:7\n")
                elif line.strip() == "ready":
                    break
            time.sleep(0.3)  # the client has its id and waits for run_tests
            wr = weakref.ref(c)
            del c
            gc.collect()
            assert wr() is None, "the client is kept alive by its own run"
            conn.settimeout(5)
            rest = f.read()  # the cancelled client closes the connection
    assert "done" not in rest.split(), rest


# ---------------------------------------------------------------------------------------------
# 9. run_tests that cannot run as a test: refused, never a silent PASS
# ---------------------------------------------------------------------------------------------


class _Gen(loadmon.Client):
    def run_tests(self, ctx: loadmon.Context) -> Any:
        ctx.file_rollover()
        yield 1


class _AsyncGen(loadmon.Client):
    async def run_tests(self, ctx: loadmon.Context) -> Any:  # type: ignore[override]
        yield 1


class _NotCallable(loadmon.Client):
    run_tests = 5  # type: ignore[assignment]


@pytest.mark.parametrize("cls", [_Gen, _AsyncGen, _NotCallable])
def test_a_generator_run_tests_is_refused_at_start(
    server: loadmon.Server, cls: type[loadmon.Client]
) -> None:
    with pytest.raises(TypeError, match="run_tests"):
        cls(port=server.port).start()
    with pytest.raises(TypeError, match="run_tests"):
        cls(port=server.port).run()
    assert not server.clients


def _returns(value: Any) -> type[loadmon.Client]:
    class C(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> Any:
            return value() if callable(value) else value

    return C


def _generator() -> Any:
    yield 1


async def _agen() -> Any:
    yield 1


@pytest.mark.parametrize(
    "value, what",
    [
        (_generator, "a generator"),
        (_agen, "an async generator"),
        (lambda: asyncio.new_event_loop().create_future(), "awaitable"),
        (42, "int"),
    ],
)
def test_a_run_tests_returning_a_value_fails(server: loadmon.Server, value: Any, what: str) -> None:
    with pytest.raises(loadmon.WorkloadError, match=f"run_tests returned .*{what}"):
        _returns(value)(port=server.port).run()
    report = server.wait(timeout=10)
    assert report.clients[0].status == loadmon.Status.FAILED


def test_a_plain_method_returning_a_coroutine_is_awaited(server: loadmon.Server) -> None:
    ran = []

    async def body(ctx: loadmon.Context) -> None:
        await asyncio.sleep(0)
        ran.append(ctx.client_id)

    class C(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> Any:
            return body(ctx)

    C(port=server.port).run()
    assert ran


# ---------------------------------------------------------------------------------------------
# 13. cosmetic
# ---------------------------------------------------------------------------------------------


def test_the_deprecation_warning_points_at_the_callers_line() -> None:
    for module in (loadmon, loadmon.errors):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module.TimeoutError  # noqa: B018
        assert caught and caught[0].filename == __file__, [w.filename for w in caught]


def test_an_unknown_attribute_names_loadmon() -> None:
    with pytest.raises(AttributeError, match="^module 'loadmon' has no attribute 'Nope'$"):
        loadmon.Nope  # noqa: B018
    with pytest.raises(AttributeError, match="^module 'loadmon.errors' has no attribute"):
        loadmon.errors.Nope  # noqa: B018


def test_a_report_is_frozen_and_hashable(server: loadmon.Server, tmp_path: Path) -> None:
    small_client(server.port, tmp_path, run_time=0.3).run()
    report = server.wait(timeout=10)
    assert hash(report) == hash(loadmon.Report._from_json(report.json))
    with pytest.raises(TypeError, match="frozen"):
        report.total["passed"] = 999
    with pytest.raises(TypeError, match="frozen"):
        report.series.append({})
    with pytest.raises(TypeError, match="frozen"):
        report.series[0]["samples"].clear()
    assert report.total["passed"] == 1
    assert isinstance(report.total, dict) and isinstance(report.series, list)
    copy = pickle.loads(pickle.dumps(report))
    assert copy == report and hash(copy) == hash(report)
    assert json.loads(json.dumps(report.total)) == report.to_dict()["total"]
    mutable = report.to_dict()
    mutable["total"]["passed"] = 0  # to_dict() is a copy the caller may change
    assert dataclasses.replace(report).total == report.total


def test_unknown_keys_are_ignored_by_every_result() -> None:
    fields = {f.name: 0 for f in dataclasses.fields(loadmon.ClientResult)}
    r = loadmon.ClientResult._from_json(json.dumps({**fields, "new_in_a_later_engine": 1}))
    assert r.client_id == 0


@pytest.mark.parametrize("kwargs", [{"keep_files": "3"}, {"keep_files": True}, {"port": True}])
def test_ints_are_ints(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        small_client(1234, tmp_path, **kwargs)
    if "port" in kwargs:
        with pytest.raises(TypeError):
            loadmon.Server(**kwargs)
        with pytest.raises(TypeError):
            loadmon.Client(**kwargs)
    assert small_client(1234, tmp_path, keep_files="all").keep_files == "all"
