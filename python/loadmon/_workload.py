"""Runs a generic client's ``run_tests`` on a Python thread of its own.

The engine's client thread starts it here and waits, without the GIL, for ``end.finish``.
Being a plain Python daemon thread, it ends like any other at interpreter exit (a
``run_tests`` that ignores ``ctx.stopped``), with no Rust frame on its stack.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any


def _describe(e: BaseException) -> str:
    # Never raises: an exception whose __str__ raises or returns a non-str is still described.
    try:
        name = type(e).__name__
    except BaseException:  # noqa: BLE001
        name = "BaseException"
    try:
        text = str(e)
    except BaseException:  # noqa: BLE001
        text = "<unprintable>"
    if not isinstance(text, str):
        text = "<unprintable>"
    return f"{name}: {text}" if text else name


def check(client: Any) -> None:
    """Refuses, at ``start()``/``run()``, a ``run_tests`` that could never run as a test: not
    callable, a generator function or an async generator function (its call would only
    create the generator, and the run would PASS without running anything)."""
    fn = getattr(client, "run_tests", None)
    if not callable(fn):
        raise TypeError(f"run_tests must be a method, not {type(fn).__name__}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        kind = "an async generator" if inspect.isasyncgenfunction(fn) else "a generator"
        raise TypeError(
            f"run_tests is {kind} function (it has a yield): it must be a plain method or "
            "an async def without yield"
        )


def _run(client: Any, ctx: Any) -> None:
    out = client.run_tests(ctx)
    if inspect.iscoroutine(out):
        asyncio.run(out)
    elif out is not None:
        if inspect.isgenerator(out) or inspect.isasyncgen(out):
            what = "an async generator" if inspect.isasyncgen(out) else "a generator"
        elif inspect.isawaitable(out):
            what = f"an awaitable that is not a coroutine ({type(out).__name__})"
        else:
            what = f"a value of type {type(out).__name__}"
        raise TypeError(
            f"run_tests returned {what}; it must return None (a plain method) or be an "
            "async def (its coroutine is run): nothing was run"
        )


def start(client: Any, ctx: Any, end: Any) -> None:
    def target() -> None:
        exc: BaseException | None = None
        text: str | None = None
        try:
            _run(client, ctx)
        except BaseException as e:  # noqa: BLE001 - every outcome goes back to the engine
            exc = e
            text = _describe(e)
        finally:
            # Always: the engine's client thread waits for it.
            end.finish(exc, text)

    threading.Thread(target=target, name="loadmon-run_tests", daemon=True).start()
