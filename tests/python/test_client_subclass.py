"""The generic Client, subclassed as in the original project."""

from __future__ import annotations

import time

import pytest

import loadmon


class Counter(loadmon.Client):
    """Rolls over a "file" every 50 ms until the run time is over."""

    def __init__(self, port: int, run_time: float = 0.5) -> None:
        super().__init__(port=port, run_time=run_time, heartbeat_period=0.05, stats_period=0.1,
                         chunk_size=1, file_size=1)
        self.client_id: int | None = None
        self.remaining_seen: list[float] = []

    def run_tests(self, ctx: loadmon.Context) -> None:
        self.client_id = ctx.client_id
        while not ctx.stopped:
            r = ctx.remaining
            assert r is not None
            self.remaining_seen.append(r)
            time.sleep(0.05)
            ctx.record_write(1024 * 1024, 0.001)
            ctx.file_rollover()
        ctx.send_stats(12.5, 0.25)


def test_subclass_runs_and_passes(server: loadmon.Server) -> None:
    c = Counter(server.port)
    result = c.run()
    assert c.client_id == result.client_id == 100
    assert result.files_written >= 5
    assert result.bytes_written == result.files_written * 1024 * 1024
    assert c.remaining_seen == sorted(c.remaining_seen, reverse=True)
    report = server.wait(timeout=10)
    [info] = report.clients
    assert info.status == "PASS"
    assert info.files_written == result.files_written
    assert (info.chunk_size_mb, info.file_size_mb) == (1, 1)
    assert info.heartbeats >= 5
    assert info.stats_reports >= 2


class Raises(loadmon.Client):
    def run_tests(self, ctx: loadmon.Context) -> None:
        raise RuntimeError("the disk is on fire")


def test_run_tests_raising_fails_the_client(server: loadmon.Server) -> None:
    with pytest.raises(loadmon.WorkloadError, match="RuntimeError: the disk is on fire"):
        Raises(port=server.port).run()
    report = server.wait(timeout=10)
    [info] = report.clients
    assert info.status == "FAILED"
    assert info.reason == "workload failed: RuntimeError: the disk is on fire"


class NotImplemented_(loadmon.Client):
    pass


def test_missing_run_tests_is_a_clear_failure(server: loadmon.Server) -> None:
    with pytest.raises(loadmon.WorkloadError, match="must implement run_tests"):
        NotImplemented_(port=server.port).run()


class BadStats(loadmon.Client):
    def run_tests(self, ctx: loadmon.Context) -> None:
        ctx.send_stats(float("nan"), 1.0)


def test_bad_stats_from_python_are_a_config_error(server: loadmon.Server) -> None:
    with pytest.raises(loadmon.WorkloadError, match="ConfigError"):
        BadStats(port=server.port).run()


def test_half_file_stats_is_rejected() -> None:
    with pytest.raises(loadmon.ConfigError, match="chunk_size and file_size go together"):
        loadmon.Client(chunk_size=10)
