"""The shipped stubs pass `mypy --strict` on a usage file, and match the built module."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

needs_mypy = pytest.mark.skipif(
    shutil.which("mypy") is None and sys.prefix == sys.base_prefix,
    reason="mypy is installed by the README's test command",
)


@needs_mypy
def test_stubs_pass_mypy_strict() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(HERE / "typing_usage.py"),
         str(ROOT / "python" / "loadmon")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@needs_mypy
def test_stubs_match_the_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "loadmon"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_ships_stubs_and_marker() -> None:
    import loadmon

    pkg = Path(loadmon.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "_loadmon.pyi").exists()
