"""Context managers for TestClient and Client; `async with Server`, `async for` over events and
`Worker.run_async()`, none of which blocks the event loop."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

import loadmon

from conftest import FAST, small_client

SMALL_PLAN = loadmon.Plan(run_time=0.5, chunk_size=1, file_size=2, min_chunk_size=1)


class Rolling(loadmon.Client):
    """Rolls over a "file" every 20 ms until stopped."""

    def run_tests(self, ctx: loadmon.Context) -> None:
        while not ctx.stopped:
            time.sleep(0.02)
            ctx.file_rollover()


def _until(cond: Any, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(cond())


# --- with TestClient / with Client -------------------------------------------------------------

def test_a_test_client_as_a_context_manager_runs_and_is_joined(
    server: loadmon.Server, tmp_path: Path
) -> None:
    client = small_client(server.port, tmp_path, run_time=0.5)
    with client as c:
        assert c is client
        assert c.running
    # The block's end waited for the run; its result stays there.
    assert not client.running
    result = client.join(timeout=0)
    assert result.files_written >= 1
    assert server.wait(timeout=10).clients[0].status == loadmon.Status.PASS


def test_an_exception_in_a_test_client_block_cancels_the_run(
    server: loadmon.Server, tmp_path: Path
) -> None:
    client = small_client(server.port, tmp_path, run_time=60)
    t0 = time.monotonic()
    with pytest.raises(KeyError):
        with client:
            assert _until(lambda: server.clients)
            raise KeyError("boom")
    assert time.monotonic() - t0 < 30, "cancelled, not run for its 60 s"
    assert not client.running
    with pytest.raises(loadmon.LoadmonInterruptedError):
        client.join(timeout=0)


def test_a_client_as_a_context_manager(server: loadmon.Server) -> None:
    c = Rolling(port=server.port, run_time=0.3, **FAST)
    with c:
        assert c.running
    assert not c.running
    assert c.join(timeout=0).files_written >= 1
    # An exception in the block cancels the run; the exception goes on.
    c2 = Rolling(port=server.port, run_time=60, **FAST)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="in the block"):
        with c2:
            raise RuntimeError("in the block")
    assert time.monotonic() - t0 < 30
    assert not c2.running
    with pytest.raises(loadmon.LoadmonInterruptedError):
        c2.join(timeout=0)


def test_a_client_context_manager_that_was_not_started_twice(server: loadmon.Server) -> None:
    c = Rolling(port=server.port, run_time=60, **FAST)
    with c:
        with pytest.raises(loadmon.StateError, match="already running"):
            with c:
                pass
        c.cancel()


# --- async with Server, async for events -------------------------------------------------------

def test_async_with_server_and_async_for_over_its_events(tmp_path: Path) -> None:
    report_json = tmp_path / "r.json"

    async def main() -> tuple[list[str], loadmon.ClientResult, loadmon.Server]:
        async with loadmon.Server(port=0, report_json=report_json) as server:
            assert server.running
            # timeout bounds the wait for each event: an iteration that blocked the loop would
            # wait for an event nobody could make happen, and fail after it.
            events = server.events(timeout=10)
            kinds: list[str] = []

            async def consume() -> None:
                async for ev in events:
                    kinds.append(ev["event"])

            consumer = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            assert not consumer.done()
            result = await small_client(server.port, tmp_path / "c", run_time=0.5).run_async()
            await asyncio.wait_for(consumer, 30)
        return kinds, result, server

    kinds, result, server = asyncio.run(main())
    assert kinds[0] == "client_connected" and kinds[-1] == "report", kinds
    assert "id_assigned" in kinds
    # The block's end stopped the server and wrote its report.
    assert not server.running
    assert json.loads(report_json.read_text())["clients"][0]["status"] == "PASS"
    assert server.report().clients[0].files_written == result.files_written


def test_async_with_server_stops_it_on_an_exception(tmp_path: Path) -> None:
    report_json = tmp_path / "r.json"

    async def main() -> loadmon.Server:
        server = loadmon.Server(port=0, report_json=report_json)
        with pytest.raises(ValueError, match="in the block"):
            async with server:
                client = Rolling(port=server.port, run_time=60, **FAST)
                task = asyncio.create_task(client.run_async())
                while not server.clients:
                    await asyncio.sleep(0.02)
                raise ValueError("in the block")
        # The server went away under the client.
        with pytest.raises(loadmon.DisconnectedError):
            await asyncio.wait_for(task, 30)
        return server

    server = asyncio.run(main())
    assert not server.running
    statuses = [c["status"] for c in json.loads(report_json.read_text())["clients"]]
    assert statuses == ["ABORTED"], statuses


def test_async_for_over_events_honours_the_timeout(server: loadmon.Server) -> None:
    async def main() -> None:
        with pytest.raises(loadmon.LoadmonTimeoutError, match="no event"):
            async for _ in server.events(timeout=0.2):
                pass

    t0 = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - t0 < 10


def test_async_for_over_closed_events_ends(server: loadmon.Server) -> None:
    async def main() -> list[Any]:
        events = server.events(timeout=5)
        events.close()
        return [e async for e in events]

    assert asyncio.run(main()) == []


# --- Worker.run_async --------------------------------------------------------------------------

def test_worker_run_async(tmp_path: Path) -> None:
    async def main() -> tuple[loadmon.WorkerSummary, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        with loadmon.Server(port=0, expect_clients=1, plan=SMALL_PLAN) as server:
            ticker = asyncio.create_task(tick())
            w = loadmon.Worker(port=server.port, out_dir=tmp_path, **FAST)
            summary = await w.run_async()
            ticker.cancel()
        return summary, ticks

    summary, ticks = asyncio.run(main())
    assert (summary.passed, summary.failed) == (1, 0)
    assert summary.last is not None and summary.last.plan == SMALL_PLAN
    assert ticks > 0, "the event loop ran meanwhile"


def test_cancelling_the_task_cancels_the_worker(tmp_path: Path) -> None:
    # The fleet waits for 2: the worker stays at the barrier until cancelled.
    with loadmon.Server(port=0, expect_clients=2, plan=SMALL_PLAN) as server:
        w = loadmon.Worker(port=server.port, out_dir=tmp_path, stay=True, **FAST)

        async def main() -> None:
            task = asyncio.create_task(w.run_async())
            while not server.clients:
                await asyncio.sleep(0.02)
            assert w.running
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert _until(lambda: not w.running), "the worker was cancelled"
