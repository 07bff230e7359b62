"""The shipped stubs pass `mypy --strict` on a usage file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(shutil.which("mypy") is None and sys.prefix == sys.base_prefix,
                    reason="mypy is installed by the README's test command")
def test_stubs_pass_mypy_strict() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(HERE / "typing_usage.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_ships_stubs_and_marker() -> None:
    import loadmon

    pkg = Path(loadmon.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "_loadmon.pyi").exists()
