"""Report paths are resolved when the server starts (the core does it for every face)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import loadmon


def test_a_relative_report_path_lands_where_the_start_time_cwd_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_dir, later_dir = tmp_path / "start", tmp_path / "later"
    start_dir.mkdir()
    later_dir.mkdir()
    monkeypatch.chdir(start_dir)
    server = loadmon.Server(
        port=0, report_json="r.json", report_csv="out/r.csv", report_html="r.html"
    )
    server.start()
    os.chdir(later_dir)
    report = server.stop()
    assert json.loads((start_dir / "r.json").read_text())["clients"] == []
    assert (start_dir / "out" / "r.csv").read_text() == report.to_csv()
    assert (start_dir / "r.html").is_file()
    assert list(later_dir.iterdir()) == []


def test_a_symlink_planted_during_the_run_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("secret")
    path = tmp_path / "report.json"
    server = loadmon.Server(port=0, report_json=path)
    server.start()
    path.symlink_to(victim)
    server.stop()
    assert victim.read_text() == "secret"
    assert not path.is_symlink() and path.is_file()
    assert json.loads(path.read_text())["clients"] == []
