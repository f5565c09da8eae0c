#!/usr/bin/env python3
"""Set up speech2image and run it with nothing but Python: no bash, so it works on Windows too.

    python scripts/bootstrap.py                  the app on http://127.0.0.1:5000 (Windows: py scripts\\bootstrap.py)
    python scripts/bootstrap.py doctor           what is found and what to fix
    python scripts/bootstrap.py render "a red kite" --out kite.png     (any speech2image command)
    python scripts/bootstrap.py test [ARGS]      the quick test run: all but the heavy group (ARGS go to pytest)
    python scripts/bootstrap.py test --all [ARGS] every test, the heavy group too (llama.cpp, Coqui): as CI
    python scripts/bootstrap.py setup [app|test|all] only set up

The first run creates .venv (SPEECH2IMAGE_VENV names another folder) and installs the
requirements into it; later runs install again only when a requirement file changed (a stamp
in the environment keeps their digest). Only the standard library is used here.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

MIN_PYTHON = (3, 10)
ROOT = Path(__file__).resolve().parent.parent
# What each use needs, in install order. The heavy test group (a compiled llama.cpp server, the optional Coqui
# voice with torch) is set up only for `test --all`; the quick run leaves its tests out (marker: heavy).
REQUIREMENTS = {"app": ("requirements.txt",),
                "test": ("requirements.txt", "requirements-dev.txt"),
                "all": ("requirements.txt", "requirements-dev.txt", "requirements-llama.txt", "requirements-coqui.txt")}


def say(text: str) -> None:
    print(f"== {text}", flush=True)


def environment() -> Path:
    return Path(os.environ.get("SPEECH2IMAGE_VENV") or ROOT / ".venv")


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_command(python: Path) -> None:
    """The project itself, editable: the speech2image command (doctor, render, transcribe) in the environment.
    Not fatal: without it, `python scripts/bootstrap.py COMMAND` runs the same commands."""
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)])
    if done.returncode != 0:
        say("the speech2image command could not be installed (see pip's message above); "
            "`python scripts/bootstrap.py doctor` and the other commands work without it")


def command_path(python: Path) -> Path:
    """The speech2image command installed beside the environment's Python."""
    return python.parent / ("speech2image.exe" if os.name == "nt" else "speech2image")


def digest(files: tuple[str, ...]) -> str:
    sha = hashlib.sha256()
    for name in files:
        sha.update(name.encode() + b"\0" + (ROOT / name).read_bytes() + b"\0")
    return sha.hexdigest()


# Packages pip compiles from source here. llama.cpp compiled for the build machine's own CPU (the default,
# GGML_NATIVE=ON) crashed with a general protection fault in libggml-cpu on the first grammar-constrained
# request on a Xeon with AVX-512 and AMX; built for a portable instruction set it runs everywhere, so the
# tests do not depend on which CPU the machine has.
COMPILED = ("llama-cpp-python",)


def portable_build_env() -> dict:
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join(filter(None, [env.get("CMAKE_ARGS", ""), "-DGGML_NATIVE=OFF"]))
    return env


def setup(kind: str) -> Path:
    """The environment's Python, with the requirements of ``kind`` (app or test) installed."""
    folder = environment()
    python = venv_python(folder)
    if not python.is_file():
        say(f"creating {folder}")
        venv.EnvBuilder(with_pip=True).create(folder)
    files = REQUIREMENTS[kind]
    stamp = folder / f".installed-{kind}"
    project = ROOT / "pyproject.toml"
    wanted = digest(files + (("pyproject.toml",) if project.is_file() else ()))
    if not stamp.is_file() or stamp.read_text().strip() != wanted:
        say(f"installing {', '.join(files)} into {folder} (the first time takes a few minutes)")
        env = portable_build_env()
        compiled = [line.split(";")[0].strip() for name in files for line in (ROOT / name).read_text().splitlines()
                    if line.split("==")[0].split("[")[0].strip() in COMPILED]
        if compiled:
            # Built here, never taken from pip's wheel cache: a cached wheel may have been compiled
            # natively (by an older set-up) and crash on this CPU.
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", *compiled],
                           check=True, env=env)
        command = [str(python), "-m", "pip", "install", "--quiet"]
        for name in files:
            command += ["-r", str(ROOT / name)]
        subprocess.run(command, check=True, env=env)
        if project.is_file():
            install_command(python)
        stamp.write_text(wanted + "\n")
    return python


def system_packages() -> None:
    """The programs the tests use (espeak-ng, ffmpeg, chromium): installed with apt on Debian/Ubuntu."""
    script = ROOT / "scripts" / "system-packages.sh"
    if sys.platform.startswith("linux") and script.is_file() and shutil.which("bash"):
        subprocess.run(["bash", str(script)], check=True)
    else:
        missing = [name for name in ("espeak-ng", "ffmpeg", "chromium") if not shutil.which(name)]
        if missing:
            say(f"the tests that need {', '.join(missing)} will fail until they are installed")


def run(command: list[str], cwd: Path | None = None, env: dict | None = None) -> int:
    """Become ``command`` where the system allows it, so signals and the exit status are its own."""
    if cwd is not None:
        os.chdir(cwd)
    if os.name == "nt":
        return subprocess.call(command, env=env)
    os.execve(command[0], command, env if env is not None else os.environ)
    return 1  # not reached


def main(argv: list[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        print(f"speech2image needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer (this is "
              f"{sys.version.split()[0]}): install a newer Python and run this script with it", file=sys.stderr)
        return 1
    command, args = (argv[0], argv[1:]) if argv else ("serve", [])
    try:
        if command == "setup":
            kind = args[0] if args else "app"
            if kind not in REQUIREMENTS:
                print(f"bootstrap.py setup: choose one of {', '.join(REQUIREMENTS)}", file=sys.stderr)
                return 2
            setup(kind)
            if kind != "app":
                system_packages()
            return 0
        if command == "test":
            every = "--all" in args
            args = [a for a in args if a != "--all"]
            python = setup("all" if every else "test")
            system_packages()
            quick = [] if every else ["-m", "not heavy"]  # the heavy group needs `test --all`'s set-up
            return run([str(python), "-m", "pytest", *quick, *args], cwd=ROOT)
        python = setup("app")
    except subprocess.CalledProcessError as exc:
        print(f"bootstrap.py: {' '.join(map(str, exc.cmd))} failed (status {exc.returncode})", file=sys.stderr)
        return 1
    # Any other command is the app's own (serve, doctor, transcribe, render, --help), run from wherever
    # the person is, so that their file names mean what they say.
    if command == "serve":
        # the environment's own activate script, beside its Python (SPEECH2IMAGE_VENV may name another folder)
        script = python.parent / "activate"
        activate = f'"{script}"' if os.name == "nt" else f"source {shlex.quote(str(script))}"
        say(f"the speech2image command (doctor, render, transcribe): {command_path(python)} --help, "
            f"or run {activate} and then speech2image --help")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return run([str(python), "-m", "speech2image", command, *args], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
