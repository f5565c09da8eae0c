"""Lint and types: ``ruff check .`` and ``mypy`` (settings in pyproject.toml) report nothing on the repository."""
from __future__ import annotations

import subprocess
import sys

import pytest

from .support.data import ROOT


@pytest.mark.parametrize("command", [("ruff", "check", "."), ("mypy",)], ids=["ruff", "mypy"])
def test_checker_reports_nothing(command):
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} found problems:\n{result.stdout}{result.stderr}", pytrace=False)
