"""Thresholds from Python: ``Server(thresholds=…, abort_on_fail=…, baseline=…,
report_junit=…)`` and ``Report.verdict`` (the core judges; the face only passes them on)."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import loadmon
from conftest import small_client


def test_a_passing_and_a_failing_threshold_in_the_verdict(tmp_path: Path) -> None:
    passing, failing = "fleet.bytes > 0", "client.mb_s >= 1000000"
    junit = tmp_path / "junit.xml"
    with loadmon.Server(port=0, thresholds=[passing, failing], report_junit=junit) as server:
        small_client(server.port, tmp_path, run_time=1.0).run()
        report = server.wait(timeout=20)
    verdict = report.verdict
    assert verdict is not None
    assert verdict["is_final"] is True and verdict["passed"] is False
    by_rule = {r["rule"]: r for r in verdict["rules"]}
    assert list(by_rule) == [passing, failing]
    ok, bad = by_rule[passing], by_rule[failing]
    assert ok["outcome"] == "PASS" and ok["observed"] > 0 and ok["bound"] == 0
    assert bad["outcome"] == "FAIL" and bad["unit"] == "MiB/s"
    [client] = report.clients
    assert bad["client"] == client.id
    assert 0 < bad["observed"] < 1000000
    # The JSON report carries the same verdict, and the verdict is read-only.
    assert json.loads(report.json)["verdict"]["rules"][1]["outcome"] == "FAIL"
    with pytest.raises(TypeError):
        verdict["passed"] = True  # type: ignore[index]
    # The JUnit XML: a test case per rule (the failing one with a <failure>), one per client.
    suites = ET.parse(junit).getroot()
    cases = {c.get("name"): c for c in suites.iter("testcase")}
    assert cases[passing].find("failure") is None
    assert cases[failing].find("failure") is not None
    assert any(name is not None and str(client.id) in name for name in cases)
    assert "\nThresholds: FAILED\n" in str(report)
    assert "\nAll test clients completed!\n" in str(report)


def test_a_run_without_thresholds_has_no_verdict(tmp_path: Path) -> None:
    with loadmon.Server(port=0) as server:
        small_client(server.port, tmp_path, run_time=0.3).run()
        report = server.wait(timeout=20)
    assert report.verdict is None
    assert "verdict" not in json.loads(report.json)


def test_abort_on_fail_stops_the_run_with_the_rule_as_the_reason(tmp_path: Path) -> None:
    rule = "fleet.bytes < 1"
    server = loadmon.Server(port=0, thresholds=[rule], abort_on_fail=True)
    server.start()
    client = small_client(server.port, tmp_path, run_time=30)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client.run()
        except loadmon.LoadmonError as e:  # the server ended the run
            errors.append(e)

    t = threading.Thread(target=run)
    started = time.monotonic()
    t.start()
    try:
        report = server.wait(timeout=20)
    finally:
        server.stop()
        t.join(timeout=20)
    assert time.monotonic() - started < 15
    verdict = report.verdict
    assert verdict is not None and verdict["passed"] is False
    reason = verdict["aborted_by"]
    assert reason.startswith(f"threshold failed: {rule} (fleet: "), reason
    [c] = report.clients
    assert (c.status, c.reason) == ("ABORTED", reason)
    assert verdict["rules"][0]["outcome"] == "FAIL"


def test_a_baseline_bound_reads_the_baseline_report(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    with loadmon.Server(port=0, report_json=base) as server:
        small_client(server.port, tmp_path, run_time=0.5).run()
        server.wait(timeout=20)
    with loadmon.Server(
        port=0, thresholds=["fleet.bytes >= baseline * 0.000001"], baseline=base
    ) as server:
        small_client(server.port, tmp_path, run_time=0.5).run()
        report = server.wait(timeout=20)
    assert report.verdict is not None
    [rule] = report.verdict["rules"]
    assert rule["outcome"] == "PASS", rule
    assert rule["bound"] == pytest.approx(json.loads(base.read_text())["total"]["bytes_written"] * 1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": ["fleet.p99 < 50"]}, r"unknown metric `p99`"),
        ({"thresholds": ["fleet.p99_ms < 50ms"]}, r"remove `ms`"),
        ({"abort_on_fail": True}, r"abort_on_fail needs a threshold rule"),
        ({"thresholds": ["fleet.mb_s >= baseline"]}, r"refers to the baseline"),
    ],
)
def test_a_bad_threshold_is_a_config_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(loadmon.ConfigError, match=message) as e:
        loadmon.Server(port=0, **kwargs)  # type: ignore[arg-type]
    assert isinstance(e.value, loadmon.LoadmonError)


def test_a_bad_rule_points_into_it_with_a_caret() -> None:
    with pytest.raises(loadmon.ConfigError) as e:
        loadmon.Server(port=0, thresholds=["fleet.mb_s > 1", "fleet.p99 < 50"])
    lines = str(e.value).splitlines()
    rule_line = next(i for i, line in enumerate(lines) if line.strip() == "fleet.p99 < 50")
    caret = lines[rule_line + 1]
    assert caret.strip() == "^"
    # Under `p99`, the unknown metric.
    assert caret.index("^") == lines[rule_line].index("p99")
    assert "p99_ms (ms; fleet|client; over Ns: fleet)" in str(e.value)


def test_a_missing_baseline_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(loadmon.ConfigError, match="baseline .*cannot read it"):
        server = loadmon.Server(
            port=0, thresholds=["fleet.mb_s >= baseline"], baseline=tmp_path / "none.json"
        )
        server.start()
