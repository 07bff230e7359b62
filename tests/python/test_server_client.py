"""Server and TestClient: round trips, validation, errors, GIL, stop."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

import loadmon
from conftest import small_client


def test_round_trip(server: loadmon.Server, tmp_path: Path) -> None:
    result = small_client(server.port, tmp_path).run()
    assert result.client_id == 100
    assert result.files_written >= 2
    assert result.bytes_written >= result.files_written * 2 * 1024 * 1024
    assert result.throughput_mb_s > 0
    assert result.chunk_p50_ms is not None and result.chunk_p99_ms is not None
    assert result.chunk_p99_ms >= result.chunk_p50_ms
    report = server.wait(timeout=10)
    [c] = report.clients
    assert (c.id, c.status, c.reason) == (100, "PASS", None)
    assert c.files_written == result.files_written
    assert c.bytes_written == result.bytes_written
    assert (c.chunk_size_mb, c.file_size_mb) == (1, 2)
    assert c.heartbeats == result.heartbeats_sent >= 2
    assert c.stats_reports == result.stats_sent >= 1
    d = report.to_dict()
    assert set(d) >= {"start_time", "end_time", "clients", "total"}
    assert d["clients"][0]["status"] == "PASS"
    assert json.loads(report.to_json()) == d
    assert report.total["passed"] == 1
    assert c.to_dict()["id"] == 100
    text = str(report)
    assert "All test clients completed!" in text and "    Test status:   PASS\n" in text
    # keep_files=2 by default
    assert len(list(tmp_path.iterdir())) <= 2


def test_context_manager_and_json_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with loadmon.Server(port=0, report_json=out) as server:
        assert server.running and server.port != 0
        small_client(server.port, tmp_path / "data").run()
        report = server.wait(timeout=10)
    assert not server.running
    assert json.loads(out.read_text())["clients"][0]["status"] == "PASS"
    assert server.stop().to_dict() == report.to_dict(), "stop after the end: same report"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"chunk_size": 5}, "below the minimum of 10 MB"),
        ({"chunk_size": 20, "file_size": 10}, "larger than file size"),
        ({"run_time": 1e-6, "chunk_size": 1, "file_size": 2, "min_chunk_size": 1}, "at least 2 must"),
        ({"run_time": -1}, "run_time must be a number of seconds from more than 0"),
        ({"sync": "sometimes"}, "sync must be none, file or direct"),
        ({"keep_files": 0}, "keep_files must be a whole number of at least 1"),
        ({"keep_files": "some"}, "keep_files must be a whole number of at least 1 or \"all\""),
        ({"heartbeat_period": 0}, "heartbeat_period must be a number of seconds from more than 0"),
    ],
)
def test_validation_errors(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(loadmon.ConfigError, match=message) as info:
        loadmon.TestClient(out_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, loadmon.LoadmonError)


def test_server_validation() -> None:
    with pytest.raises(loadmon.ConfigError, match="max_clients"):
        loadmon.Server(max_clients=0)
    with pytest.raises(loadmon.ConfigError, match="heartbeat_timeout"):
        loadmon.Server(heartbeat_timeout=-1)


def test_bind_error_is_a_loadmon_error(server: loadmon.Server) -> None:
    other = loadmon.Server(port=server.port)
    with pytest.raises(loadmon.BindError, match=f"bind 127.0.0.1:{server.port}"):
        other.start()


def test_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = small_client(port, tmp_path, connect_timeout=0.3)
    with pytest.raises(loadmon.ConnectError, match=f"connect 127.0.0.1:{port}") as info:
        client.run()
    assert isinstance(info.value, ConnectionError)


def test_a_raw_seed_client_passes(server: loadmon.Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        f = s.makefile("rw", newline="\n")
        f.write("get_cid\nready\n")
        f.flush()
        assert f.readline() == "set_cid:100\n"
        assert f.readline() == "run_tests\n"
        for line in ["file_stats:10:50", "start", "hb", "send_stats:10.0:0.5", "file_roll", "done"]:
            f.write(line + "\n")
        f.flush()
        assert f.readline() == "", "the server closes after done"
    report = server.wait(timeout=10)
    [c] = report.clients
    assert (c.status, c.files_written, c.cpu_avg_pct, c.mem_avg_pct) == ("PASS", 1, 10.0, 0.5)


def test_wait_times_out(server: loadmon.Server) -> None:
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        server.wait(timeout=0.2)
    assert time.monotonic() - t >= 0.15
    with pytest.raises(loadmon.LoadmonTimeoutError):
        server.wait(timeout=0)


def test_stop_mid_run_aborts(server: loadmon.Server, tmp_path: Path) -> None:
    client = small_client(server.port, tmp_path, run_time=30)
    client.start()
    deadline = time.monotonic() + 10
    while not any(c.status == "RUNNING" for c in server.clients):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    live = server.clients[0]
    assert live.last_heartbeat_age_s is not None
    report = server.stop()
    [c] = report.clients
    assert (c.status, c.reason) == ("ABORTED", "server stopped")
    with pytest.raises(loadmon.DisconnectedError):
        client.join(timeout=10)


def test_run_releases_the_gil(server: loadmon.Server, tmp_path: Path) -> None:
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    try:
        small_client(server.port, tmp_path, run_time=1.0).run()
    finally:
        stop.set()
        t.join()
    # With the GIL held for the whole second, the thread could not have ticked.
    assert ticks > 100, ticks


def test_start_join_and_cancel(server: loadmon.Server, tmp_path: Path) -> None:
    client = small_client(server.port, tmp_path, run_time=30)
    client.start()
    with pytest.raises(TimeoutError):
        client.join(timeout=0.2)
    client.cancel()
    with pytest.raises(loadmon.LoadmonInterruptedError):
        client.join(timeout=10)
    report = server.wait(timeout=10)
    assert report.clients[0].status == "FAILED"
    assert "interrupted" in (report.clients[0].reason or "")


def test_join_before_start_is_an_error(tmp_path: Path) -> None:
    client = small_client(1234, tmp_path)
    with pytest.raises(loadmon.StateError, match="not started"):
        client.join()


def test_a_token_is_proven_both_ways_and_the_clear_form_needs_a_token(tmp_path: Path) -> None:
    with loadmon.Server(port=0, token="s3cret") as server:
        with pytest.raises(loadmon.RefusedError, match="wrong token"):
            small_client(server.port, tmp_path, token="guess").run()
        result = small_client(server.port, tmp_path, token="s3cret").run()
        assert result.client_id == 100
        report = server.wait(timeout=10)
        assert [c.status for c in report.clients] == ["PASS"]
    # A client with a token goes on only with a server that proves it knows it.
    with loadmon.Server(port=0) as server:
        with pytest.raises(loadmon.ProtocolError, match="offers no challenge-response"):
            small_client(server.port, tmp_path, token="s3cret").run()
    with pytest.raises(loadmon.ConfigError, match="allow_clear_token needs a token"):
        loadmon.Server(port=0, allow_clear_token=True)
    with pytest.raises(loadmon.ConfigError, match="allow_clear_token needs a token"):
        loadmon.Worker(port=1, allow_clear_token=True)
    loadmon.Server(port=0, token="t", allow_clear_token=True)
