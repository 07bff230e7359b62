"""Every setting of the core exists in the Python face, with the core's default.

``_loadmon._core_defaults()`` is the ``Default`` of each settings type (``ServerConfig`` with
its ``HttpLimits``, ``ClientConfig``, ``WorkerConfig``, ``FileWriterConfig``, ``FleetConfig``)
as the core serializes it. Each of its keys must be a parameter of every Python face that takes
that type, and the default the face shows (its signature, and its ``.pyi`` stub) must equal the
core's. A field added to the core without a Python parameter, or a default restated here
differently from the core's, fails these tests.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loadmon
from loadmon import _loadmon
from conftest import small_client

CORE: dict[str, dict[str, Any]] = _loadmon._core_defaults()
STUB = Path(loadmon.__file__).parent / "_loadmon.pyi"

# The Python faces that take each settings type.
FACES: dict[str, list[Any]] = {
    "server": [loadmon.Server],
    "fleet": [loadmon.Server],
    "client": [loadmon.TestClient, loadmon.Client, loadmon.Worker],
    "worker": [loadmon.Worker],
    "file_writer": [loadmon.TestClient, loadmon.Plan],
    "verify": [loadmon.verify],
}

# Keys that are not one parameter, and why (the short list of exceptions).
NOT_ONE_PARAMETER = {
    # Checked under "fleet": Server's expect_clients and start_timeout (plan is a Plan).
    ("server", "fleet"): "a fleet is Server's expect_clients, start_timeout and plan",
    # Flattened: header_read_timeout is Server's http_header_read_timeout, and so on.
    ("server", "http_limits"): "each HTTP limit is Server's http_<field>",
    # Checked under "client": Worker takes its client's settings as its own parameters.
    ("worker", "client"): "a worker's client settings are Worker's parameters",
}

# Core keys a face leaves out on purpose, and why.
LEFT_OUT = {
    (loadmon.Plan, "out_dir"): "a plan says what each worker writes; each Worker says where",
}

# Python defaults that are not the core's value, and why.
NO_CORE_DEFAULT = {
    # A fleet has no default size: the core's sample is a fleet of one.
    ("fleet", "expect_clients"): None,
}

# Python parameters with a default that no core settings type holds, and why.
PYTHON_ONLY = {
    # Fleet mode's plan: None is the core's default plan, the seed's test (Plan()).
    (loadmon.Server, "plan"),
    # The generic client's own run time and announced file sizes: None is none.
    (loadmon.Client, "run_time"),
    (loadmon.Client, "chunk_size"),
    (loadmon.Client, "file_size"),
}


def _python_name(section: str, key: str) -> str:
    """The face's name of a core key: the file writer's drop their unit (the seed's names:
    ``run_time_s`` is ``run_time``, ``chunk_size_bytes`` is ``chunk_size``, ``rate_mb_s`` is
    ``rate``)."""
    if section == "file_writer":
        for unit in ("_mb_s", "_bytes", "_mb", "_s"):
            if key.endswith(unit):
                return key[: -len(unit)]
    # verify(): ``loadmon verify --block-size``'s name.
    if (section, key) == ("verify", "block_bytes"):
        return "block_size"
    return key


# The file writer's sizes: the core's are bytes, Python's an int of MB (or a size text).
SIZES = {"chunk_size", "file_size", "min_chunk_size"}


def _settings(section: str) -> Iterator[tuple[str, Any]]:
    """(Python name, core default) of every setting of a core section."""
    for key, value in CORE[section].items():
        if (section, key) == ("server", "http_limits"):
            for limit, v in value.items():
                yield f"http_{limit}", v
        elif (section, key) not in NOT_ONE_PARAMETER:
            yield _python_name(section, key), NO_CORE_DEFAULT.get((section, key), value)


def _same(name: str, shown: Any, core: Any) -> bool:
    if name in SIZES and isinstance(shown, int) and not isinstance(shown, bool):
        return bool(shown * (1 << 20) == core)
    # keep_files: the core writes its text ("2" or "all"); Python takes an int or "all".
    if name == "keep_files":
        return bool(str(shown) == core)
    # A bool is not the int 0 or 1.
    if isinstance(shown, bool) or isinstance(core, bool):
        return shown is core
    return bool(shown == core)


def _signature(face: Any) -> dict[str, Any]:
    return {
        n: p.default
        for n, p in inspect.signature(face).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _stub_defaults() -> dict[str, dict[str, Any]]:
    """The defaults each constructor and function of the stub shows, by its name."""
    out: dict[str, dict[str, Any]] = {}
    tree = ast.parse(STUB.read_text())

    def defaults_of(f: ast.FunctionDef) -> dict[str, Any]:
        args = f.args.args[len(f.args.args) - len(f.args.defaults) :]
        out = {a.arg: ast.literal_eval(d) for a, d in zip(args, f.args.defaults)}
        # Keyword-only parameters (after ``*``) with a default.
        for a, d in zip(f.args.kwonlyargs, f.args.kw_defaults):
            if d is not None:
                out[a.arg] = ast.literal_eval(d)
        return out

    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name in ("__new__", "__init__"):
                    out.setdefault(node.name, {}).update(defaults_of(item))
        elif isinstance(node, ast.FunctionDef):
            out[node.name] = defaults_of(node)
    return out


STUBS = _stub_defaults()


def _shown(face: Any) -> list[tuple[str, dict[str, Any]]]:
    """Where a face shows its defaults: its signature, and its stub when it has one (Plan is
    a dataclass of loadmon._results, whose signature is its source)."""
    shown = [("signature", _signature(face))]
    if face.__name__ in STUBS:
        shown.append((".pyi", STUBS[face.__name__]))
    return shown


CASES = [(section, face) for section, faces in FACES.items() for face in faces]


@pytest.mark.parametrize(("section", "face"), CASES, ids=[f"{s}-{f.__name__}" for s, f in CASES])
def test_every_core_setting_is_a_parameter_with_the_core_default(
    section: str, face: Callable[..., Any]
) -> None:
    problems = []
    for where, defaults in _shown(face):
        for name, core in _settings(section):
            if (face, name) in LEFT_OUT:
                continue
            if name not in defaults:
                problems.append(f"{where}: no parameter {name} (the core's {section})")
            elif not _same(name, defaults[name], core):
                problems.append(f"{where}: {name}={defaults[name]!r}, the core's is {core!r}")
    assert problems == [], f"{face.__name__}: " + "; ".join(problems)


@pytest.mark.parametrize(
    "face",
    [loadmon.Server, loadmon.TestClient, loadmon.Client, loadmon.Worker, loadmon.Plan, loadmon.verify],
)
def test_every_parameter_is_a_core_setting(face: Any) -> None:
    known = {
        name
        for section, faces in FACES.items()
        if face in faces
        for name, _ in _settings(section)
    }
    for where, defaults in _shown(face):
        extra = set(defaults) - known - {n for f, n in PYTHON_ONLY if f is face}
        assert extra == set(), (face.__name__, where, extra)


def test_the_verdict_settings_are_checked_like_every_other() -> None:
    # The thresholds' settings are core settings, so the drift tests above cover them: their
    # defaults are the core's (none, off).
    server = CORE["server"]
    assert (server["thresholds"], server["abort_on_fail"]) in (((), False), ([], False))
    assert server["baseline"] is None and server["report_junit"] is None
    shown = _signature(loadmon.Server)
    assert tuple(shown["thresholds"]) == () and shown["abort_on_fail"] is False
    assert STUBS["Server"]["baseline"] is None and STUBS["Server"]["report_junit"] is None


def test_report_failure_shows_the_client_defaults() -> None:
    # A one-shot client: the settings it takes have the client's defaults; its announced
    # sizes are the generic client's (None: none).
    client = dict(_settings("client"))
    for where, defaults in (
        ("signature", _signature(loadmon.report_failure)),
        (".pyi", STUBS["report_failure"]),
    ):
        for name, value in defaults.items():
            if name in ("chunk_size", "file_size"):
                assert value is None, (where, name)
            else:
                assert _same(name, value, client[name]), (where, name, value, client[name])


def test_the_public_defaults_are_the_core_ones() -> None:
    d: dict[str, Any] = dict(_loadmon.defaults())
    for face, key in (
        (loadmon.Server, "server"),
        (loadmon.TestClient, "test_client"),
        (loadmon.Client, "client"),
        (loadmon.Worker, "worker"),
        (loadmon.Plan, "plan"),
        (loadmon.verify, "verify"),
    ):
        assert _signature(face) == d[key], face.__name__


@pytest.mark.parametrize(
    ("face", "kwargs", "message"),
    [
        (loadmon.Server, {"max_pending": 0}, "max_pending must be from 1 to 1000000"),
        (loadmon.Server, {"max_ids": -1}, "max_ids must be from 1 to 100000000"),
        (loadmon.Server, {"write_timeout": 0}, "write_timeout must be a number of seconds"),
        (loadmon.Server, {"max_line_bytes": 10}, "max_line_bytes must be at least 64"),
        (loadmon.Server, {"http_header_read_timeout": 0}, "http_header_read_timeout must"),
        (loadmon.Server, {"http_idle_timeout": -1}, "http_idle_timeout must"),
        (loadmon.Server, {"http_write_timeout": 0}, "http_write_timeout must"),
        (loadmon.Server, {"http_max_connections": 0}, "http_max_connections must be from 1"),
        (loadmon.Server, {"abort_on_fail": True}, "abort_on_fail needs a threshold rule"),
        (loadmon.Server, {"thresholds": ["fleet.p99 < 50"]}, "unknown metric `p99`"),
        (loadmon.Server, {"thresholds": ["x"] * 65}, "at most 64 threshold rules, got 65"),
        (
            loadmon.Server,
            {"thresholds": ["fleet.mb_s >= baseline"]},
            "refers to the baseline: give a baseline report",
        ),
        (loadmon.Client, {"handshake_timeout": 0}, "handshake_timeout must"),
        (loadmon.Worker, {"max_line_bytes": 1}, "max_line_bytes must be at least 64"),
    ],
)
def test_new_settings_follow_the_core_rules(
    face: Callable[..., Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(loadmon.ConfigError, match=message):
        face(**kwargs)


def test_new_settings_are_accepted() -> None:
    server = loadmon.Server(
        port=0,
        max_pending=2,
        max_ids=10,
        write_timeout=1.5,
        max_line_bytes=8192,
        http_header_read_timeout=1,
        http_idle_timeout=2,
        http_max_connections=3,
        http_write_timeout=4,
    )
    assert not server.running
    verdict = loadmon.Server(
        port=0,
        thresholds=("fleet.p99_ms < 50", "client.mb_s >= 80 over 10s"),
        abort_on_fail=True,
        baseline="last-week.json",
        report_junit="junit.xml",
    )
    assert not verdict.running
    loadmon.Worker(handshake_timeout=2.5, max_line_bytes=100)
    with pytest.raises(loadmon.ConfigError, match="max_ids"):
        # The core's rule across settings: a fleet needs as many ids as clients.
        loadmon.Server(port=0, max_ids=2, expect_clients=3)


def test_client_info_has_every_field_of_the_engines_client_row(tmp_path: Path) -> None:
    """A field added to the core's client row (`ClientReport`) must reach `ClientInfo`: every
    key of the engine's JSON for a client that ran is a typed field (and the other way round,
    but for the fields the engine leaves out when it has no value)."""
    with loadmon.Server(port=0) as server:
        small_client(server.port, tmp_path, run_time=0.3).run()
        report = server.wait(timeout=10)
    row = report.clients[0].to_dict()
    fields = {f.name for f in dataclasses.fields(loadmon.ClientInfo)} - {"json"}
    assert set(row) - fields == set(), "engine keys without a ClientInfo field"
    optional = {f.name for f in dataclasses.fields(loadmon.ClientInfo) if f.default is None}
    assert fields - set(row) <= optional, "ClientInfo fields the engine never sends"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"jobs": 0}, "jobs must be from 1 to 256, not 0"),
        ({"jobs": 10000}, "jobs must be from 1 to 256, not 10000"),
        ({"jobs": -1}, "jobs must be from 1 to 256, not -1"),
        ({"iodepth": 0}, "iodepth must be from 1 to 256, not 0"),
        ({"rate": 0}, "rate must be a number of MB/s above 0 and at most 1000000"),
        ({"rate": -5.0}, "rate must be a number of MB/s above 0"),
        ({"rate": float("nan")}, "rate must be a number of MB/s above 0"),
        ({"rate": 2e6}, "at most 1000000, not 2000000"),
        ({"chunk_size": "10 kg"}, "chunk_size must be a size from 512 bytes to 4096 MB"),
        ({"chunk_size": -1}, "chunk_size must be a size from 512 bytes to 4096 MB, not -1 MB"),
        ({"chunk_size": "256k"}, "chunk size 256 KiB is below the minimum of 10 MB"),
    ],
)
def test_streams_depth_rate_and_sizes_follow_the_core_rules(
    kwargs: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(loadmon.ConfigError, match=message):
        loadmon.TestClient(port=1, out_dir=tmp_path, **kwargs)
    with pytest.raises(loadmon.ConfigError, match=message):
        loadmon.Plan(**kwargs)


def test_sizes_take_units_and_a_bare_int_is_mb(tmp_path: Path) -> None:
    c = loadmon.TestClient(
        port=1,
        out_dir=tmp_path,
        run_time=30,
        chunk_size="256k",
        file_size="1m",
        min_chunk_size="4k",
        jobs=2,
        iodepth=4,
        rate=50.5,
    )
    assert (c.chunk_size, c.file_size, c.min_chunk_size) == ("256k", 1, "4k")
    assert (c.jobs, c.iodepth, c.rate) == (2, 4, 50.5)
    p = loadmon.Plan(chunk_size=1, file_size="2m", min_chunk_size=1, jobs=3)
    assert (p.chunk_size, p.file_size, p.jobs, p.rate) == (1, "2m", 3, None)
