"""A thin asyncio face: the blocking calls, polled without blocking the event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from loadmon import _logging
from loadmon.errors import LoadmonTimeoutError

if TYPE_CHECKING:
    from loadmon._results import Report

# How often a coroutine checks whether the engine is done.
POLL_S = 0.02

_R_co = TypeVar("_R_co", covariant=True)
_S = TypeVar("_S", bound="_Server")


class _Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> Report: ...


class _Server(_Waitable, Protocol):
    def start(self) -> None: ...
    def _request_stop(self) -> bool: ...


class _Joinable(Protocol[_R_co]):
    def start(self) -> None: ...
    def join(self, timeout: float | None = None) -> _R_co: ...
    def cancel(self) -> None: ...


class _EventSource(Protocol):
    def _next(self, timeout: float | None) -> dict[str, Any] | None: ...


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


async def run(client: _Joinable[_R_co]) -> _R_co:
    """``run_async()`` of a client or a worker: cancelling the task cancels the run."""
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


async def enter_server(server: _S) -> _S:
    """``async with Server(...)``: starts it (binding returns at once)."""
    server.start()
    return server


async def exit_server(server: _Server) -> bool:
    """The end of ``async with Server(...)``: stops a started server and waits for its report
    (and report files) without blocking the loop. Never swallows the block's exception."""
    if server._request_stop():
        await wait(server, None)
    return False


async def next_event(events: _EventSource, timeout: float | None) -> dict[str, Any]:
    """``async for`` over a server's events: the next one, StopAsyncIteration at the end,
    LoadmonTimeoutError if none came within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        try:
            with _logging.no_flush():
                event = events._next(0)
        except LoadmonTimeoutError:
            if deadline is not None and loop.time() >= deadline:
                raise LoadmonTimeoutError(f"timed out: no event after {timeout:.1f} s") from None
            await asyncio.sleep(POLL_S)
            continue
        if event is None:
            raise StopAsyncIteration
        return event
