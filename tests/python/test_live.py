"""Watching a run from Python: HTTP API and metrics, the event iterator, CSV and HTML reports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import loadmon
from conftest import small_client

ROOT = Path(__file__).resolve().parents[2]


def fetch(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_http_api_metrics_and_the_final_report(tmp_path: Path) -> None:
    with loadmon.Server(port=0, http="127.0.0.1:0", http_linger=5) as server:
        assert server.http_port is not None and server.http_port not in (0, server.port)
        assert server.http_url == f"http://127.0.0.1:{server.http_port}/"
        client = small_client(server.port, tmp_path, run_time=2.0)
        client.start()
        deadline = time.monotonic() + 20
        clients: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            code, body = fetch(server.http_url + "api/clients")
            assert code == 200
            clients = json.loads(body)
            if clients and clients[0]["status"] == "RUNNING" and clients[0]["cpu_last_pct"] is not None:
                break
            time.sleep(0.05)
        [c] = clients
        assert c["id"] == 100 and isinstance(c["last_heartbeat_age_s"], float)
        live = server.clients[0]
        assert live.cpu_last_pct is not None and live.rss_last_bytes is not None
        code, metrics = fetch(server.http_url + "metrics")
        assert code == 200
        assert 'loadmon_clients{status="RUNNING"} 1\n' in metrics
        assert 'loadmon_client_bytes_written_total{client_id="100"} ' in metrics
        assert "# TYPE loadmon_messages_total counter" in metrics
        result = client.join(timeout=20)
        report = server.wait(timeout=20)
        # The listener lingers: the final report is still served.
        code, body = fetch(server.http_url + "api/report")
        assert code == 200
        served = json.loads(body)
        assert served == report.to_dict()
        assert served["clients"][0]["files_written"] == result.files_written


def test_http_token_is_required_by_header() -> None:
    with loadmon.Server(port=0, http="127.0.0.1:0", token="s3cret") as server:
        assert server.http_url is not None
        assert fetch(server.http_url + "api/clients")[0] == 401
        assert fetch(server.http_url + "api/clients", token="nope")[0] == 401
        assert fetch(server.http_url + "api/clients", token="s3cret") == (200, "[]")


def test_without_http_there_is_no_url(server: loadmon.Server) -> None:
    assert server.http_port is None and server.http_url is None


def test_a_bad_http_address_is_a_clear_error() -> None:
    with pytest.raises(loadmon.ConfigError, match="http"):
        loadmon.Server(port=0, http="")
    # Caught when the configuration is checked, before anything listens.
    with pytest.raises(loadmon.ConfigError, match="host:port"):
        loadmon.Server(port=0, http="not an address")
    # Well-formed but not bindable (an address this host does not have): an error at start.
    s = loadmon.Server(port=0, http="192.0.2.1:0")
    with pytest.raises(loadmon.LoadmonError, match="HTTP"):
        s.start()


def test_events_iterate_from_connection_to_report(tmp_path: Path) -> None:
    with loadmon.Server(port=0) as server:
        events = server.events(timeout=20)
        client = small_client(server.port, tmp_path)
        client.start()
        got = list(events)  # ends after the final report
        result = client.join(timeout=20)
        report = server.wait(timeout=20)
    kinds = [e["event"] for e in got]
    assert kinds[:3] == ["client_connected", "id_assigned", "status_changed"]
    assert got[2]["status"] == "RUNNING" and got[2]["previous"] == "NOT STARTED"
    assert kinds[-1] == "report" and got[-1]["report"] == report.to_dict()
    rollovers = [e["files_written"] for e in got if e["event"] == "file_rollover"]
    assert rollovers == list(range(1, result.files_written + 1))
    samples = [e for e in got if e["event"] == "stats_sample"]
    assert len(samples) >= 2 and all(s["client_id"] == 100 for s in samples)
    assert any(e["event"] == "status_changed" and e["status"] == "PASS" for e in got)
    assert all(isinstance(e["time"], str) and e["elapsed_s"] >= 0 for e in got)


def test_events_time_out_clearly(server: loadmon.Server) -> None:
    events = server.events(timeout=0.2)
    t = time.monotonic()
    with pytest.raises(loadmon.LoadmonTimeoutError):
        next(events)
    assert time.monotonic() - t < 5
    with pytest.raises(loadmon.ConfigError):
        server.events(timeout=-1)


def test_report_to_csv_and_html_and_files(tmp_path: Path) -> None:
    csv_path, html_path = tmp_path / "r.csv", tmp_path / "r.html"
    with loadmon.Server(port=0, report_csv=csv_path, report_html=html_path) as server:
        small_client(server.port, tmp_path / "a").run()
        report = server.wait(timeout=20)
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == 1 and rows[0]["id"] == "100" and rows[0]["status"] == "PASS"
    assert set(rows[0]) >= {"files_written", "bytes_written", "throughput_mb_s", "reason"}
    assert csv_path.read_text() == report.to_csv()
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>") and "<td>100</td>" in html
    # All clients together, the fleet's chunk write latency (issue 21's lat lines), then
    # throughput and CPU per client (the host I/O section's charts, after them, depend on a
    # block device under the data directory).
    assert html.split("<h2>Host I/O</h2>")[0].count("<svg") == 4 and "<script" not in html
    assert html_path.read_text() == html
    [s] = report.series
    assert s["id"] == 100 and len(s["samples"]) >= 2
    assert {"t_s", "throughput_mb_s", "cpu_pct"} <= set(s["samples"][0])


def test_demo_writes_the_html_report(tmp_path: Path) -> None:
    html = tmp_path / "demo.html"
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--quick", "--report-html", str(html)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"HTML report: {html.resolve()}" in out.stdout
    page = html.read_text()
    # The all-clients line, then three lines in each per-client chart.
    assert page.count("<tr><td>") == 3 and page.count('class="series"') == 7


def test_the_http_listener_answers_only_its_own_host_names() -> None:
    """DNS rebinding: a request for a name not given in ``http_allow_hosts`` gets 421."""

    def status(url: str, host: str) -> int:
        req = urllib.request.Request(url, headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return e.code

    with pytest.raises(loadmon.ConfigError, match="http_allow_hosts"):
        loadmon.Server(port=0, http="127.0.0.1:0", http_allow_hosts=["a b"])
    with pytest.raises(TypeError):
        loadmon.Server(port=0, http="127.0.0.1:0", http_allow_hosts="loadmon.example")
    server = loadmon.Server(port=0, http="127.0.0.1:0", http_allow_hosts=("loadmon.example",))
    server.start()
    try:
        assert server.http_url is not None
        url = server.http_url + "api/report"
        assert status(url, "loadmon.example") == 200
        assert status(url, "127.0.0.1") == 200
        assert status(url, "evil.example") == 421
    finally:
        server.stop()
