"""Rust log records reach Python logging; Ctrl-C interrupts blocking calls; the demo runs."""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import loadmon
from conftest import small_client

ROOT = Path(__file__).resolve().parents[2]


def test_rust_logs_reach_python_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="loadmon")
    with loadmon.Server(port=0) as server:
        small_client(server.port, tmp_path).run()
        server.wait(timeout=10)
    names = {r.name for r in caplog.records}
    assert "loadmon.server" in names and "loadmon.client" in names, names
    messages = [r.getMessage() for r in caplog.records]
    assert any("assigning client id 100" in m for m in messages), messages


@pytest.mark.parametrize("what", ["server.wait()", "client.run()"])
def test_ctrl_c_interrupts_a_blocking_call(tmp_path: Path, what: str) -> None:
    script = textwrap.dedent(
        f"""
        import signal, sys, loadmon
        # A child started from a background job inherits SIGINT ignored (then Python installs
        # no handler): make it a Ctrl-C-able program whatever started the tests.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        server = loadmon.Server(port=0)
        server.start()
        client = loadmon.TestClient(port=server.port, run_time=60, chunk_size=1, file_size=2,
                                    min_chunk_size=1, out_dir={str(tmp_path)!r})
        print("ready", flush=True)
        try:
            {what}
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            server.stop()
            sys.exit(42)
        """
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
        code = p.wait(timeout=20)
    finally:
        p.kill()
        p.wait()
    assert code == 42
    assert p.stdout.read().strip() == "interrupted"
    assert time.monotonic() - t < 15


def test_demo_quick_passes(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "demo.py"),
            "--quick",
            "--report-html",
            str(tmp_path / "r.html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("    Test status:   PASS") == 3, out.stdout
    assert "All test clients completed!" in out.stdout
