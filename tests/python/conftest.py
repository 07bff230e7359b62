"""Shared fixtures: a server on 127.0.0.1:0 and fast client settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import loadmon

# Short periods so a test sees several heartbeats and stats in a second.
FAST: dict[str, Any] = {"heartbeat_period": 0.1, "stats_period": 0.2}


@pytest.fixture
def server() -> Iterator[loadmon.Server]:
    s = loadmon.Server(port=0)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def small_client(port: int, out_dir: Path, run_time: float = 1.0, **kw: Any) -> loadmon.TestClient:
    """A test client with 1 MB chunks and 2 MB files."""
    args: dict[str, Any] = dict(
        port=port, run_time=run_time, chunk_size=1, file_size=2, min_chunk_size=1, out_dir=out_dir
    )
    args.update(FAST)
    args.update(kw)
    return loadmon.TestClient(**args)
