"""A thin asyncio face: the blocking calls, polled without blocking the event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from loadmon import _logging
from loadmon.errors import LoadmonTimeoutError

if TYPE_CHECKING:
    from loadmon._results import ClientResult, Report

# How often a coroutine checks whether the engine is done.
POLL_S = 0.02


class _Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> Report: ...


class _Joinable(Protocol):
    def start(self) -> None: ...
    def join(self, timeout: float | None = None) -> ClientResult: ...
    def cancel(self) -> None: ...


async def wait(server: _Waitable, timeout: float | None) -> Report:
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        try:
            # No flush while polling (it would run log handlers on the event loop's thread
            # at every poll); the log thread emits the records.
            with _logging.no_flush():
                return server.wait(timeout=0)
        except LoadmonTimeoutError:
            if deadline is not None and loop.time() >= deadline:
                raise
        await asyncio.sleep(POLL_S)


async def run(client: _Joinable) -> ClientResult:
    try:
        # Off the event loop: start() may run the file writer's probe (a second run of a
        # TestClient checks its settings again), which takes as long as the disk needs.
        await asyncio.to_thread(client.start)
        while True:
            try:
                with _logging.no_flush():
                    return client.join(timeout=0)
            except LoadmonTimeoutError:
                await asyncio.sleep(POLL_S)
    except asyncio.CancelledError:
        client.cancel()
        raise
