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
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def start(client: Any, ctx: Any, end: Any) -> None:
    def target() -> None:
        try:
            out = client.run_tests(ctx)
            if inspect.iscoroutine(out):
                asyncio.run(out)
        except BaseException as e:  # noqa: BLE001 - every outcome goes back to the engine
            end.finish(e, _describe(e))
        else:
            end.finish(None, None)

    threading.Thread(target=target, name="loadmon-run_tests", daemon=True).start()
