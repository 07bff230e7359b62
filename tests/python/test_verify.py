"""Verified writes from Python: the settings of ``TestClient`` and ``Plan`` (``verify``,
``verify_block``, ``verify_continue``, ``verify_peer``, ``overwrite``) reach the core with its
defaults and rules, a fleet's plan carries them to its workers, and ``loadmon.verify()`` checks
files as ``loadmon verify --json`` does. (Whether the writer checks its data is the engine's
tests' business: tests/verify_writer.rs.)"""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
from pathlib import Path
from typing import Any

import pytest

import loadmon

SMALL: dict[str, Any] = {"chunk_size": 1, "file_size": 2, "min_chunk_size": 1}
VERIFY_ON: dict[str, Any] = {
    "verify": "end",
    "verify_block": "64k",
    "verify_continue": True,
    "verify_peer": True,
    "overwrite": True,
}
# A data file's name as the writer makes it: client 100, stream 0, file 1.
NAME = "client_100_0_1_2026-12-05_10.11.12"


def test_the_verify_settings_reach_the_test_client_and_the_plan(tmp_path: Path) -> None:
    c = loadmon.TestClient(port=1, out_dir=tmp_path, **SMALL, **VERIFY_ON)
    assert (c.verify, c.verify_block, c.verify_continue, c.verify_peer, c.overwrite) == (
        "end",
        64 << 10,
        True,
        True,
        True,
    )
    p = loadmon.Plan(**SMALL, **VERIFY_ON)
    d = p.to_dict()
    assert {k: d[k] for k in VERIFY_ON} == VERIFY_ON
    # An int is bytes; the defaults are the core's.
    assert loadmon.TestClient(port=1, out_dir=tmp_path, verify_block=512).verify_block == 512
    plain = loadmon.TestClient(port=1, out_dir=tmp_path)
    writer = loadmon._loadmon._core_defaults()["file_writer"]
    assert (plain.verify, plain.verify_block, plain.verify_continue) == (
        writer["verify"],
        writer["verify_block_bytes"],
        writer["verify_continue"],
    )
    assert (plain.verify_peer, plain.overwrite) == (writer["verify_peer"], writer["overwrite"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verify": "later"}, 'verify must be none, rollover or end, not "later"'),
        ({"verify_block": 3000}, "verify block of 3000 bytes: it must be a power of two from 512"),
        ({"verify_block": "2m"}, "verify block of 2097152 bytes: it must be a power of two"),
        ({"verify_block": 2**70}, "power of two from 512 bytes to 1048576 bytes"),
        ({"verify_block": "big"}, 'verify block "big" is not a size'),
        ({"verify_continue": True}, "verify_continue needs a check of the data"),
        ({"verify": "rollover", "verify_peer": True}, "set verify to end"),
        ({"overwrite": True, "keep_files": "all"}, "keep_files must be a number, not all"),
        (
            {"verify": "end", "chunk_size": "6k", "min_chunk_size": "4k", "file_size": "12k"},
            "verify writes whole blocks of 4 KiB: chunk size 6 KiB and file size 12 KiB",
        ),
    ],
)
def test_the_verify_settings_follow_the_core_rules(
    kwargs: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(loadmon.ConfigError, match=message):
        loadmon.TestClient(port=1, out_dir=tmp_path, **kwargs)
    with pytest.raises(loadmon.ConfigError, match=message):
        loadmon.Plan(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"verify_block": True}, {"verify_block": 4096.0}, {"verify_continue": 1}, {"overwrite": "1"}],
)
def test_the_verify_settings_take_their_types_only(kwargs: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        loadmon.TestClient(port=1, out_dir=tmp_path, **kwargs)
    with pytest.raises(TypeError):
        loadmon.Plan(**kwargs)


def _plan_line(port: int) -> str:
    """The plan a fleet server sends a worker that says hello."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(b"hello:1.0:plan,ping\n")
        lines = conn.makefile("r", encoding="utf-8")
        assert lines.readline().startswith("hello:")
        return lines.readline().rstrip("\n")


def test_a_fleet_plan_carries_the_verify_settings() -> None:
    plan = loadmon.Plan(
        **SMALL, verify="rollover", verify_block="64k", verify_continue=True, overwrite=True
    )
    with loadmon.Server(port=0, expect_clients=1, plan=plan) as server:
        line = _plan_line(server.port)
        server.stop()
    assert line.startswith("plan:run=") and line.endswith(
        ":keep_files=2:verify=rollover:verify_block=64k:verify_continue=1:overwrite=1"
    ), line
    # The default plan sends none of them: the seed's line.
    with loadmon.Server(port=0, expect_clients=1, plan=loadmon.Plan(**SMALL)) as server:
        line = _plan_line(server.port)
        server.stop()
    assert "verify" not in line and "overwrite" not in line, line


def test_a_worker_run_s_plan_and_result_carry_the_verify_settings() -> None:
    # A worker's summary as the engine writes it (its plan's JSON, its result's).
    plan = {
        "run_time_s": 2.0,
        "chunk_size_bytes": 1 << 20,
        "file_size_bytes": 2 << 20,
        "min_chunk_size_bytes": 1 << 20,
        "sync": "none",
        "keep_files": "2",
        "verify": "end",
        "verify_block_bytes": 65536,
        "verify_continue": True,
        "verify_peer": False,
        "overwrite": True,
    }
    result = {f.name: 0 for f in dataclasses.fields(loadmon.ClientResult) if f.name != "verify"}
    checked = {"files_checked": 2, "blocks_checked": 1024, "errors": {"corrupt": 1}}
    summary = loadmon.WorkerSummary._from_json(
        __import__("json").dumps(
            {
                "passed": 1,
                "failed": 0,
                "last": {"run": 7, "plan": plan, "result": {**result, "verify": checked}},
            }
        )
    )
    assert summary.last is not None
    p = summary.last.plan
    assert (p.verify, p.verify_block, p.verify_continue, p.verify_peer, p.overwrite) == (
        "end",
        65536,
        True,
        False,
        True,
    )
    r = summary.last.result
    assert r.verify == checked
    # Frozen and hashable, as every result; picklable.
    hash(r)
    with pytest.raises(TypeError):
        r.verify["files_checked"] = 3  # type: ignore[index]
    assert pickle.loads(pickle.dumps(r)) == r
    # No check (or an engine that does not say): None.
    assert loadmon.ClientResult._from_json(__import__("json").dumps(result)).verify is None


def test_verify_checks_files_as_loadmon_verify_does(tmp_path: Path) -> None:
    zeros = tmp_path / NAME
    zeros.write_bytes(bytes(64 << 10))
    report = loadmon.verify(zeros, block_size="4k")
    assert (report["blocks_checked"], report["blocks_ok"]) == (16, 0)
    assert report["errors"] == {"corrupt": 0, "stale": 0, "misdirected": 0, "torn": 16, "short": 0}
    (f,) = report["files"]
    assert (f["path"], f["size_bytes"]) == (str(zeros), 64 << 10)
    # The identity in the name is what the file is checked against.
    assert (f["expected"]["client_id"], f["expected"]["stream"], f["expected"]["file_seq"]) == (
        100,
        0,
        1,
    )
    (finding,) = f["findings"]
    assert (finding["class"], finding["offset_bytes"], finding["blocks"]) == ("torn", 0, 16)
    assert finding["found"] == "zeroes"
    assert report["bytes_read"] > 0 and report["elapsed_s"] > 0
    # Garbage is corrupt, one finding per run of bad blocks; a directory is its data files.
    other = tmp_path / "client_101_0_1_2026-12-05_10.11.12"
    other.write_bytes(os.urandom(32 << 10))
    (tmp_path / "notes.txt").write_text("not a data file")
    both = loadmon.verify([str(tmp_path)], block_size=4096, max_findings=1)
    assert [Path(x["path"]).name for x in both["files"]] == [NAME, other.name]
    assert both["errors"]["corrupt"] == 8 and both["errors"]["torn"] == 16
    assert both["blocks_checked"] == 24
    # A sequence of paths, and the same file twice: checked twice.
    assert loadmon.verify([zeros, zeros], block_size=4096)["blocks_checked"] == 32


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_findings": 0}, loadmon.ConfigError, "max_findings must be from 1 to 100000, not 0"),
        # The core's bound either side, not a usize's.
        ({"max_findings": -1}, loadmon.ConfigError, "max_findings must be from 1 to 100000, not -1"),
        ({"max_findings": 10**30}, loadmon.ConfigError, "max_findings must be from 1 to 100000"),
        ({"max_findings": 1e300}, TypeError, "max_findings must be an int, not float"),
        ({"generation": "2"}, TypeError, "generation must be an int, not str"),
        ({"direct": "yes"}, TypeError, "direct must be a bool, not str"),
        ({"block_size": 3000}, loadmon.ConfigError, "power of two from 512 bytes"),
        ({"block_size": "4q"}, loadmon.ConfigError, "is not a size"),
        ({"run_id": -1}, loadmon.ConfigError, "run_id must be from 0"),
        ({"generation": 2**64}, loadmon.ConfigError, "generation must be from 0"),
        ({"block_size": True}, TypeError, "block_size must be an int"),
        ({"direct": 1}, TypeError, "direct"),
    ],
)
def test_verify_options_follow_the_core_rules(
    kwargs: dict[str, Any], error: type[Exception], message: str, tmp_path: Path
) -> None:
    (tmp_path / NAME).write_bytes(bytes(4096))
    with pytest.raises(error, match=message):
        loadmon.verify(tmp_path / NAME, **kwargs)


def test_verify_raises_loadmon_errors_for_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(loadmon.ConfigError, match="does not exist"):
        loadmon.verify(tmp_path / "gone")
    with pytest.raises(loadmon.ConfigError, match="holds no data file"):
        loadmon.verify(tmp_path)
    with pytest.raises(loadmon.ConfigError, match="no file given"):
        loadmon.verify([])
    with pytest.raises(TypeError, match="paths must be a path .* or an iterable of paths, not int"):
        loadmon.verify(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not NoneType"):
        loadmon.verify(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"paths\[1\] must be a path .*, not NoneType"):
        loadmon.verify([tmp_path, None])  # type: ignore[list-item]
    # A FIFO nobody writes to is refused at once (opening it used to wait for a writer).
    fifo = tmp_path / NAME
    os.mkfifo(fifo)
    with pytest.raises(loadmon.ConfigError, match="is not a regular file"):
        loadmon.verify(fifo)
    # Each is a LoadmonError, as every error of the engine.
    with pytest.raises(loadmon.LoadmonError):
        loadmon.verify(tmp_path / "gone")


def test_verify_shows_the_core_defaults() -> None:
    d = loadmon._loadmon.defaults()["verify"]
    core = loadmon._loadmon._core_defaults()["verify"]
    assert d == {("block_size" if k == "block_bytes" else k): v for k, v in core.items()}


def test_a_verifying_client_checks_its_data_and_verify_agrees(tmp_path: Path) -> None:
    """The whole path from Python: a client writing with verify="end" checks every block it
    kept (no error), the server's report carries the same figures, ``loadmon.verify`` finds the
    kept files as written, and a byte flipped afterwards is found at its offset."""
    from conftest import small_client

    data = tmp_path / "data"
    with loadmon.Server(port=0) as server:
        result = small_client(
            server.port, data, run_time=1.0, verify="end", verify_block="4k", keep_files=2
        ).run()
        report = server.wait(timeout=30)
    assert result.verify is not None
    kept = sorted(p for p in data.iterdir() if p.name.startswith("client_"))
    assert 1 <= len(kept) <= 2
    blocks_per_file = (2 << 20) // 4096
    assert result.verify["files_checked"] == len(kept)
    assert result.verify["blocks_checked"] == len(kept) * blocks_per_file
    assert result.verify["errors_total"] == 0
    [c] = report.clients
    assert c.status == "PASS"
    assert c.verify is not None and c.verify["blocks_checked"] == len(kept) * blocks_per_file
    offline = loadmon.verify([str(data)], direct=False)
    assert offline["blocks_checked"] == len(kept) * blocks_per_file
    assert sum(offline["errors"].values()) == 0
    # A flipped byte in the second block of the first file: corrupt, at offset 4096.
    with open(kept[0], "r+b") as f:
        f.seek(4096 + 1000)
        b = f.read(1)
        f.seek(4096 + 1000)
        f.write(bytes([b[0] ^ 0xFF]))
    bad = loadmon.verify([str(kept[0])])
    assert bad["errors"]["corrupt"] == 1
    [finding] = bad["files"][0]["findings"]
    assert (finding["class"], finding["offset_bytes"]) == ("corrupt", 4096)


def test_verify_takes_bytes_paths_and_any_iterable(tmp_path: Path) -> None:
    """A path as os functions take it (str, bytes, os.PathLike), and paths from any iterable:
    a generator such as ``Path.glob``'s too."""
    (tmp_path / NAME).write_bytes(bytes(4096))
    one = loadmon.verify(os.fsencode(tmp_path / NAME), block_size=4096)
    assert one["errors"]["torn"] == 1
    assert loadmon.verify([os.fsencode(tmp_path)], block_size=4096)["blocks_checked"] == 1
    assert loadmon.verify(tmp_path.glob("client_*"), block_size=4096)["blocks_checked"] == 1
    assert loadmon.verify(iter([tmp_path / NAME, str(tmp_path)]))["blocks_checked"] == 2
    # A name that is not UTF-8 is a path like any other.
    odd = os.fsencode(tmp_path) + b"/zeros-\xff"
    with open(odd, "wb") as f:
        f.write(bytes(4096))
    assert loadmon.verify(odd, block_size=4096)["errors"]["torn"] == 1


def _verify_threads() -> int:
    """The check threads of this process (``loadmon-verify``, named by the binding)."""
    names = []
    for t in Path("/proc/self/task").iterdir():
        try:
            names.append((t / "comm").read_text().strip())
        except OSError:
            pass  # the thread ended meanwhile
    return names.count("loadmon-verify")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_ctrl_c_stops_the_check_left_behind(tmp_path: Path) -> None:
    """Ctrl-C raises KeyboardInterrupt at once and the check on its own thread stops before
    its next read (it used to read on to the end of its files: here 64 GiB of holes, well over
    the bound on any machine)."""
    import _thread
    import threading
    import time

    big = tmp_path / NAME
    with open(big, "wb") as f:
        f.truncate(64 << 30)
    # An earlier test's check thread may still be ending after it handed its report back.
    deadline = time.monotonic() + 10
    while _verify_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _verify_threads() == 0
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        loadmon.verify(big, block_size=4096)
    timer.join()
    deadline = time.monotonic() + 10
    while _verify_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _verify_threads() == 0, "the check went on after Ctrl-C"


def test_a_directory_s_entries_that_are_not_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(bytes(4096))
    (tmp_path / "client_100_0_2_2026-12-05_10.11.12").mkdir()
    report = loadmon.verify(tmp_path, block_size=4096)
    assert [Path(f["path"]).name for f in report["files"]] == [NAME]
    assert report["skipped"] == [
        {
            "path": str(tmp_path / "client_100_0_2_2026-12-05_10.11.12"),
            "reason": "not a regular file: a directory",
        }
    ]
