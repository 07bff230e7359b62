"""Names planted in a shared out_dir, and the probe: interruptible, bounded, off the event loop.

A FIFO planted where the client's next file goes fails the client at once (it used to block it
in open() for ever, and the interpreter with it); Ctrl-C during a TestClient's probe raises
KeyboardInterrupt at once; an asyncio loop keeps ticking while an async client probes.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import loadmon


def probe_files(d: Path) -> list[Path]:
    return [p for p in d.iterdir() if p.name.startswith(".loadmon_probe_")]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_planted_fifo_fails_the_client_promptly_and_the_interpreter_exits(
    tmp_path: Path,
) -> None:
    # FIFOs where client 100's first file goes, for every second of the next half minute (its
    # name has the time in it).
    now = time.time()
    for d in range(-1, 31):
        stamp = time.strftime("%Y-%m-%d_%H.%M.%S", time.localtime(now + d))
        os.mkfifo(tmp_path / f"client_100_0_{stamp}")
    script = textwrap.dedent(
        f"""
        import loadmon
        server = loadmon.Server(port=0)
        server.start()
        client = loadmon.TestClient(port=server.port, run_time=60, chunk_size=1, file_size=1,
                                    min_chunk_size=1, out_dir={str(tmp_path)!r},
                                    heartbeat_period=0.1, stats_period=0.2)
        try:
            client.run()
            print("passed", flush=True)
        except loadmon.FileError as e:
            print("failed:", e, flush=True)
        report = server.wait(timeout=20)
        print("status:", report.clients[0].status, "reason:", report.clients[0].reason, flush=True)
        """
    )
    t = time.monotonic()
    # Before: blocked in open() for ever (and the interpreter would not exit).
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    elapsed = time.monotonic() - t
    assert out.returncode == 0, out.stderr
    assert "failed:" in out.stdout and "already taken" in out.stdout, out.stdout
    assert "status: FAILED" in out.stdout, out.stdout
    # A 60 s run: it failed at its first file, and the interpreter exited at once after.
    assert elapsed < 30, (elapsed, out.stdout)
    fifos = [p for p in tmp_path.iterdir() if p.name.startswith("client_100_0_")]
    assert len(fifos) == 32 and all(p.is_fifo() for p in fifos)


def test_ctrl_c_during_a_big_chunk_probe_raises_keyboard_interrupt_at_once(
    tmp_path: Path,
) -> None:
    # 1 GiB chunks: the probe writes 2 GiB, seconds on most disks.
    script = textwrap.dedent(
        f"""
        import signal, sys, time, loadmon
        # A child started from a background job inherits SIGINT ignored: make it Ctrl-C-able.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("ready", flush=True)
        try:
            loadmon.TestClient(port=1, run_time=100000, chunk_size=1024, file_size=2048,
                               min_chunk_size=1, out_dir={str(tmp_path)!r})
            print("constructed", flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.monotonic(), flush=True)
            sys.exit(42)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    try:
        readable, _, _ = select.select([p.stdout], [], [], 30)
        assert readable and p.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while not probe_files(tmp_path):
            assert time.monotonic() < deadline, "the probe never started"
            assert p.poll() is None, "the child ended before its probe"
            time.sleep(0.005)
        time.sleep(0.2)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        line = p.stdout.readline().split()
        assert line and line[0] == "interrupted", line
        # Raised within a fraction of a second, not when the 2 GiB are written.
        assert float(line[1]) - sent < 1.5, float(line[1]) - sent
        assert p.wait(timeout=10) == 42
        assert time.monotonic() - sent < 5
        # The probe stopped and removed its file before the interrupt was raised.
        assert probe_files(tmp_path) == []
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_the_event_loop_keeps_ticking_while_an_async_client_probes(tmp_path: Path) -> None:
    # 512 MiB chunks: each probe writes 1 GiB (about a second or more).
    port = closed_port()

    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        ticks: list[float] = []
        probing = False

        async def ticker() -> None:
            nonlocal probing
            while True:
                ticks.append(loop.time())
                probing = probing or bool(probe_files(tmp_path))
                await asyncio.sleep(0.02)

        task = asyncio.create_task(ticker())
        # The constructor (and its probe) off the loop: it releases the GIL meanwhile.
        client = await asyncio.to_thread(
            loadmon.TestClient,
            port=port,
            connect_timeout=0,
            run_time=100000,
            chunk_size=512,
            file_size=1024,
            min_chunk_size=1,
            out_dir=tmp_path,
        )
        # The first run uses the constructor's probe; nobody listens on the port.
        with pytest.raises(loadmon.ConnectError):
            await client.run_async()
        # A second run checks the settings again (a new probe), off the loop.
        ticks.clear()
        probing = False
        with pytest.raises(loadmon.ConnectError):
            await client.run_async()
        task.cancel()
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        return max(gaps, default=0.0), probing

    gap, probing = asyncio.run(main())
    assert probing, f"the loop never ticked while the probe ran (longest gap {gap:.2f} s)"
    # Ticks every 20 ms; a busy machine may hold the loop's thread back a little, never for
    # the probe's whole second or more.
    assert gap < 1.0, f"the event loop stood still for {gap:.2f} s"
    assert probe_files(tmp_path) == []
