"""The code's own checks, run with the suite: strict typing and lint (settings in pyproject)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("tool", [["mypy"], ["ruff", "check", "."]], ids=["mypy", "ruff"])
def test_code_passes(tool: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", *tool], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
