"""Per-client figures when clients share a process; the demo runs each client in its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import loadmon

ROOT = Path(__file__).resolve().parents[2]


def test_clients_in_one_process_add_up_to_no_more_than_it(tmp_path: Path) -> None:
    with loadmon.Server(port=0) as server:
        before = time.process_time()
        # Different chunk sizes; the default 10 s stats period gives each 2 s run one sample,
        # its last, which covers the whole run.
        clients = [
            loadmon.TestClient(
                port=server.port,
                run_time=2.0,
                chunk_size=chunk,
                file_size=4 * chunk,
                min_chunk_size=1,
                out_dir=tmp_path / f"c{chunk}",
            )
            for chunk in (1, 2, 4)
        ]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=60)
        report = server.wait(timeout=60)
        process_s = time.process_time() - before
    assert [c.status for c in report.clients] == ["PASS"] * 3
    assert sorted(c.chunk_size_mb for c in report.clients) == [1, 2, 4]
    cpu_s = [c.cpu_avg_pct / 100 * c.time_ran_s for c in report.clients]
    assert all(s > 0 for s in cpu_s), cpu_s
    # Each client counts its own threads only: together no more than the process used (which
    # also ran the server and the interpreter).
    assert sum(cpu_s) <= process_s * 1.15, (cpu_s, process_s)
    for c in report.clients:
        assert c.stats_reports >= 1 and c.mem_avg_pct > 0
        assert c.process_clients is not None and 1 <= c.process_clients <= 3
        assert c.to_dict()["process_clients"] == c.process_clients
    assert "process_clients" in report.to_csv().splitlines()[0].split(",")


def test_report_failure_lists_the_client_as_failed() -> None:
    with loadmon.Server(port=0) as server:
        client_id = loadmon.report_failure(
            "chunk size 5 MB is below the minimum of 10 MB", port=server.port, chunk_size=5, file_size=50
        )
        report = server.wait(timeout=30)
    [c] = report.clients
    assert c.id == client_id == 100
    assert c.status == "FAILED" and c.reason == "chunk size 5 MB is below the minimum of 10 MB"
    assert (c.chunk_size_mb, c.file_size_mb) == (5, 50)
    assert "    Reason:        chunk size 5 MB" in str(report)


def test_the_demo_runs_each_client_in_its_own_process(tmp_path: Path) -> None:
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "demo.py"),
            "--quick",
            "--report-html",
            str(html),
            "--report-json",
            str(js),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("    Test status:   PASS") == 3, out.stdout
    # One client per process: each says it was alone in its process.
    clients = json.loads(js.read_text())["clients"]
    assert [c["process_clients"] for c in clients] == [1, 1, 1], clients
    page = html.read_text()
    # Three CPU lines.
    cpu_chart = page[page.index("CPU per client") :]
    assert cpu_chart.count('class="series"') == 3
