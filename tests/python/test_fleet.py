"""Fleet mode from Python: Server(expect_clients=..., plan=Plan(...)) and loadmon.Worker."""

from __future__ import annotations

import gc
import pickle
import time
from pathlib import Path
from typing import Any

import pytest

import loadmon
from loadmon import _loadmon

from conftest import FAST, small_client

# 1 MB chunks, 2 MB files, 1 s: the smallest plan the seed's rules accept with min_chunk_size=1.
SMALL = loadmon.Plan(run_time=1.0, chunk_size=1, file_size=2, min_chunk_size=1)


def worker(port: int, out_dir: Path, **kw: Any) -> loadmon.Worker:
    args: dict[str, Any] = dict(port=port, out_dir=out_dir)
    args.update(FAST)
    args.update(kw)
    return loadmon.Worker(**args)


def test_a_fleet_of_two_workers_starts_together_with_the_plan(tmp_path: Path) -> None:
    with loadmon.Server(port=0, expect_clients=2, plan=SMALL) as server:
        workers = [worker(server.port, tmp_path / f"w{i}") for i in range(2)]
        for w in workers:
            w.start()
        summaries = [w.join(timeout=60) for w in workers]
        report = server.wait(timeout=60)
    for s in summaries:
        assert isinstance(s, loadmon.WorkerSummary)
        assert (s.passed, s.failed) == (1, 0)
        assert s.last is not None and s.last.plan == SMALL
        assert s.last.result.files_written >= 2
    assert summaries[0].last is not None and summaries[1].last is not None
    assert summaries[0].last.run == summaries[1].last.run
    assert [c.status for c in report.clients] == [loadmon.Status.PASS] * 2
    for c in report.clients:
        assert (c.chunk_size_mb, c.file_size_mb) == (1, 2)
    starts = [c.start_time.timestamp() for c in report.clients if c.start_time is not None]
    assert len(starts) == 2
    assert max(starts) - min(starts) < 0.5, starts
    # The fleet's view, typed.
    assert report.expected_clients == 2 and report.started_clients == 2
    assert report.common_start is not None
    assert abs(report.common_start.timestamp() - min(starts)) < 0.5
    assert report.total_series and isinstance(report.total_series[0], loadmon.TotalSample)
    assert report.total_series[-1].bytes_written == report.total["bytes_written"]
    assert report.to_dict()["total"]["expected_clients"] == 2
    assert "Fleet: 2 of 2 expected client(s) started together" in str(report)
    # Results are values.
    assert pickle.loads(pickle.dumps(summaries[0])) == summaries[0]
    assert pickle.loads(pickle.dumps(report)) == report
    assert summaries[0].to_dict()["last"]["plan"]["chunk_size"] == 1


def test_outside_fleet_mode_the_report_has_no_fleet(server: loadmon.Server, tmp_path: Path) -> None:
    report = server.report()
    assert report.expected_clients is None and report.started_clients is None
    assert report.total_series == ()


def test_a_staying_worker_is_cancelled_cleanly(tmp_path: Path) -> None:
    # The fleet waits for 2: the worker is ready and waits for the start when it is cancelled.
    with loadmon.Server(port=0, expect_clients=2, plan=SMALL) as server:
        w = worker(server.port, tmp_path / "w", stay=True, retry_max=0.2)
        assert w.stay
        w.start()
        deadline = time.monotonic() + 20
        while not server.clients and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.clients and w.running
        t0 = time.monotonic()
        w.cancel()
        summary = w.join(timeout=10)
        assert time.monotonic() - t0 < 1.5
        assert summary == loadmon.WorkerSummary(passed=0, failed=0, last=None)
        assert not w.running
    # As a context manager: started on enter, cancelled and joined on exit.
    with loadmon.Server(port=0, expect_clients=2, plan=SMALL) as server:
        with worker(server.port, tmp_path / "w", stay=True) as w2:
            assert w2.running
        assert not w2.running
        assert w2.join(timeout=0).passed == 0


def test_a_dropped_running_worker_stops_within_a_second(tmp_path: Path) -> None:
    with loadmon.Server(port=0, expect_clients=2, plan=SMALL) as server:
        w = worker(server.port, tmp_path / "w", stay=True)
        w.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        del w
        gc.collect()
        assert time.monotonic() - t0 < 1.5


def test_a_worker_without_a_fleet_server_is_refused(server: loadmon.Server, tmp_path: Path) -> None:
    with pytest.raises(loadmon.RefusedError, match="not in fleet mode"):
        worker(server.port, tmp_path / "w").run()


def test_a_worker_cancelled_during_its_run_is_interrupted(tmp_path: Path) -> None:
    plan = loadmon.Plan(run_time=30.0, chunk_size=1, file_size=2, min_chunk_size=1)
    with loadmon.Server(port=0, expect_clients=1, plan=plan) as server:
        w = worker(server.port, tmp_path / "w")
        w.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            c.status == loadmon.Status.RUNNING for c in server.clients
        ):
            time.sleep(0.02)
        w.cancel()
        with pytest.raises(loadmon.LoadmonInterruptedError):
            w.join(timeout=10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"run_time": -1.0},
        {"run_time": float("nan")},
        {"run_time": 1e300},
        {"chunk_size": -1},
        {"chunk_size": 2**70},
        {"chunk_size": 60},  # above the file size
        {"chunk_size": 5},  # below the minimum
        {"keep_files": 0},
        {"sync": "sometimes"},
    ],
)
def test_out_of_range_plans_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(loadmon.ConfigError):
        loadmon.Plan(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"expect_clients": 0},
        {"expect_clients": -1},
        {"expect_clients": 2**70},
        {"expect_clients": 2, "start_timeout": 0},
        {"expect_clients": 2, "start_timeout": float("inf")},
        {"expect_clients": 20, "max_clients": 5},
        {"plan": SMALL},  # a plan without a fleet
        {"start_timeout": 5.0},
    ],
)
def test_out_of_range_fleets_are_config_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(loadmon.ConfigError):
        loadmon.Server(port=0, **kwargs)


def test_max_clients_none_makes_room_for_the_fleet() -> None:
    loadmon.Server(port=0, expect_clients=20)  # the core's default max_clients, raised to 20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": 70000},
        {"retry_max": 0},
        {"retry_max": -1.0},
        {"heartbeat_period": 0},
        {"out_dir": ""},
        {"max_chunk_mb": 4097},
        {"max_chunk_mb": 0},
        {"max_run_time": 0},
        {"max_disk_mb": -1},
    ],
)
def test_out_of_range_workers_are_config_errors(kwargs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(loadmon.ConfigError):
        loadmon.Worker(**({"out_dir": tmp_path} | kwargs))


def test_worker_state_errors_and_repr(tmp_path: Path) -> None:
    w = loadmon.Worker(port=5, out_dir=tmp_path)
    with pytest.raises(loadmon.StateError):
        w.join(timeout=0)
    w.cancel()  # not running: nothing happens
    assert repr(w) == "Worker(host='127.0.0.1', port=5, stay=False, running=False)"
    assert (w.host, w.port, w.out_dir) == ("127.0.0.1", 5, tmp_path)


def test_plan_defaults_are_the_core_defaults() -> None:
    d = _loadmon.defaults()["plan"]
    assert loadmon.Plan().to_dict() == d
    assert loadmon.Plan(keep_files="all").keep_files == "all"


def test_interpreter_exit_with_a_running_fleet(tmp_path: Path) -> None:
    # A fleet server and two workers mid-run (one staying) left running at exit: the atexit
    # hook stops them all, the report is written.
    from test_faces import PRELUDE, _run_script

    report = tmp_path / "r.json"
    out, took = _run_script(
        PRELUDE
        + f"""
plan = loadmon.Plan(run_time=30, chunk_size=1, file_size=2, min_chunk_size=1)
server = loadmon.Server(port=0, report_json={str(report)!r}, expect_clients=2, plan=plan)
server.start()
workers = [loadmon.Worker(port=server.port, out_dir={str(tmp_path)!r} + f"/w{{i}}", stay=i == 1)
           for i in range(2)]
for w in workers:
    w.start()
running(server)
print("exiting", flush=True)
"""
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "exiting"
    assert took < 5, took
    assert report.exists() and '"expected_clients": 2' in report.read_text()


@pytest.mark.parametrize(
    "make",
    [
        lambda p: loadmon.Worker(out_dir=p, retry_max=True),
        lambda p: loadmon.Worker(out_dir=p, heartbeat_period=True),
        lambda p: loadmon.Worker(out_dir=p, connect_timeout=False),
        lambda p: loadmon.Server(port=0, expect_clients=2, start_timeout=True),
        lambda p: loadmon.Server(port=0, heartbeat_timeout=True),
        lambda p: loadmon.Plan(run_time=True),
        lambda p: small_client(1234, p, run_time=True),
        lambda p: loadmon.Worker(out_dir=p).join(timeout=True),
    ],
    ids=["retry_max", "heartbeat_period", "connect_timeout", "start_timeout",
         "heartbeat_timeout", "plan_run_time", "test_client_run_time", "join_timeout"],
)
def test_seconds_are_not_bools(make: Any, tmp_path: Path) -> None:
    # True is an int to Python, but `retry_max=True` is a slip, not one second: the same
    # TypeError as `port=True`, naming the argument.
    with pytest.raises(TypeError, match="must be a number of seconds, not bool"):
        make(tmp_path)


@pytest.mark.parametrize("plan", [5, {}, {"run_time": 1.0}, "SMALL"])
def test_a_plan_that_is_not_a_plan_is_a_type_error(plan: Any) -> None:
    with pytest.raises(TypeError, match="plan must be a loadmon.Plan, not"):
        loadmon.Server(port=0, expect_clients=2, plan=plan)
