"""A copy of the project, and fresh Python environments that borrow this one's packages.

Tests of installing and setting up run on copies (so nothing a build writes lands in the
checkout) and in new environments whose dependencies come from the environment running the
tests through a .pth file (a path line, as pip itself writes for editable installs), so
nothing is downloaded again.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from .data import ROOT


def copy_project(names, target: Path) -> Path:
    """The named files and folders of the checkout, copied into ``target``."""
    for name in names:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, destination)
    return target


def borrow_dependencies(python: Path) -> None:
    """Let the environment of ``python`` import what the environment running the tests can import:
    every folder on our path but the standard library and the checkout (whose package must not
    stand in for the one a test installs), including folders that .pth files of ours added. The
    checkout's own .venv (where CI installs everything) is borrowed like any other environment."""
    standard = {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")}
    folders = [entry for entry in sys.path if entry and Path(entry).is_dir()
               and Path(entry).resolve() not in standard and Path(entry).resolve() != ROOT.resolve()
               and "lib-dynload" not in Path(entry).parts]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "test-dependencies.pth").write_text("".join(f"{folder}\n" for folder in folders))
