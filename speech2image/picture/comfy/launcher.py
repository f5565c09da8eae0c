"""The person's own ComfyUI, started as our child process when none answers (SPEECH2IMAGE_COMFYUI_DIR).

One ``ComfyLauncher`` owns at most one child: ``main.py --listen 127.0.0.1 --port <port>
--preview-method auto --disable-auto-launch`` run by the folder's own Python, in a process group
of its own, its output in a log file in the data folder. It waits at most ``start_timeout_s``
for ``/system_stats`` to answer, restarts a child that dies (a bounded number of times), and
stops it when the app exits. It never stops a process it did not start: it signals only the
child it holds, and starts nothing where a ComfyUI already answers.
"""
from __future__ import annotations

import atexit
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from .discovery import DISCOVERY_URLS, probe
from .protocol import ComfyUnavailable, RenderCancelled

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 12
# What a ComfyUI says when its PyTorch finds no GPU it can use (a CUDA build without a driver, or a build
# without CUDA): it is started once more with --cpu.
NO_GPU_SIGNS = ("Found no NVIDIA driver on your system", "Torch not compiled with CUDA enabled")
# What a failed start's log says, and what to do about it.
LOG_HINTS = (
    ("Torch not compiled with CUDA enabled", "This PyTorch has no GPU support: set SPEECH2IMAGE_COMFYUI_ARGS=--cpu "
                                             "to run ComfyUI on the CPU. "),
    ("No module named", "A Python package ComfyUI needs is missing: is SPEECH2IMAGE_COMFYUI_PYTHON the Python of "
                        "your ComfyUI (the one its requirements were installed into)? "),
)
# The folder's own environment, where its installer put one; the portable build keeps its Python beside it.
OWN_PYTHONS = ("venv/bin/python", ".venv/bin/python", "venv/Scripts/python.exe", ".venv/Scripts/python.exe",
               "../python_embeded/python.exe")


def python_for(folder: str, explicit: str = "") -> str | None:
    """The Python that runs the ComfyUI in ``folder``: the one named, else the folder's own, else PATH's."""
    if explicit:
        return os.path.expanduser(explicit)
    for relative in OWN_PYTHONS:
        candidate = Path(folder).expanduser() / relative
        if candidate.is_file():
            return os.path.normpath(candidate)
    return shutil.which("python3") or shutil.which("python")


def runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


class ComfyLauncher:
    """Starts, watches and stops one ComfyUI of ours; safe to share between threads."""

    def __init__(self, log_path: Path, url: str = DISCOVERY_URLS[0], start_timeout_s: float = 180.0,
                 max_restarts: int = 3, stop_grace_s: float = 10.0, poll_s: float = 0.5):
        self.log_path = Path(log_path)
        self.default_url = url.rstrip("/")
        self._address(self.default_url)
        self.start_timeout_s = start_timeout_s
        self.max_restarts = max_restarts
        self.stop_grace_s = stop_grace_s
        self.poll_s = poll_s
        self.folder = ""
        self.python_setting = ""
        self.extra_args: tuple[str, ...] = ()
        self._cond = threading.Condition()
        self._state = "off"  # off (no folder), idle, starting, running, failed, stopped
        self._error: str | None = None
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._restarts = 0
        self._log_offset = 0
        self._exit_hook = False
        self._cpu_fallback = False  # it found no usable GPU: started again with --cpu
        self.note: str | None = None  # something the person should know about how ours runs

    def _address(self, url: str) -> None:
        parsed = urlparse(url)
        self.url, self.host, self.port = url, parsed.hostname or "127.0.0.1", parsed.port or 8188

    # --- what the others ask ------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return bool(self.folder)

    @property
    def state(self) -> str:
        return self._state

    @property
    def active(self) -> bool:
        """Ours is running or coming up."""
        return self._state in ("starting", "running")

    def configure(self, folder: str, python: str = "", args: str = "", url: str | None = None) -> bool:
        """The folder to start (empty: never start one), its Python, extra arguments for main.py (such
        as --cpu) and the address to start it on (None: the one it was made with); a change stops the
        child we run."""
        folder, python = (folder or "").strip(), (python or "").strip()
        try:
            extra = tuple(shlex.split(args or "", posix=os.name != "nt"))
        except ValueError:  # an unclosed quote: split on spaces rather than refuse to start
            extra = tuple((args or "").split())
        url = (url or self.default_url).rstrip("/")
        if (folder, python, extra, url) == (self.folder, self.python_setting, self.extra_args, self.url):
            return False
        self.stop()
        with self._cond:
            self.folder, self.python_setting, self.extra_args = folder, python, extra
            self._address(url)
            self._cpu_fallback, self.note = False, None
            self._stopping = False
            self._restarts = 0
            self._error = None
            self._state = "idle" if folder else "off"
        return True

    def command(self) -> list[str]:
        cpu = ("--cpu",) if self._cpu_fallback and "--cpu" not in self.extra_args else ()
        return [python_for(self.folder, self.python_setting) or "python", "main.py", "--listen", self.host,
                "--port", str(self.port), "--preview-method", "auto", "--disable-auto-launch", *self.extra_args, *cpu]

    def start_if_idle(self) -> bool:
        """Start ours in the background unless it runs, failed or there is no folder; True while it is active."""
        with self._cond:
            if self._state == "idle":
                self._state = "starting"
                self._thread = threading.Thread(target=self._watch, name="comfyui-launcher", daemon=True)
                self._thread.start()
            return self.active

    def wait_ready(self, cancel: threading.Event | None = None) -> None:
        """Until ours answers; ComfyUnavailable with the reason (and its last log lines) if it cannot."""
        deadline = time.monotonic() + self.start_timeout_s + 5.0
        with self._cond:
            while self._state == "starting":
                if cancel is not None and cancel.is_set():
                    raise RenderCancelled("cancelled")
                if time.monotonic() > deadline:
                    raise ComfyUnavailable(f"ComfyUI did not start within {self.start_timeout_s:g} s")
                self._cond.wait(0.2)
            if self._state != "running":
                raise ComfyUnavailable(self._error or f"the ComfyUI in {self.folder} is not running ({self._state})")

    def status(self) -> dict:
        """For the health answer and doctor: state, folder, Python, log; the error and the log's last lines."""
        with self._cond:
            info = {"url": self.url, "state": self._state, "folder": self.folder,
                    "python": python_for(self.folder, self.python_setting) if self.folder else None,
                    "log": str(self.log_path), "restarts": self._restarts}
            if self._proc is not None and self._proc.poll() is None:
                info["pid"] = self._proc.pid
            if self._error:
                info["error"] = self._error
            if self.note:
                info["note"] = self.note
        return info

    def stop(self) -> None:
        """Stop the child we started, if any: SIGTERM to its process group, SIGKILL after the grace time."""
        with self._cond:
            self._stopping = True
            proc, thread = self._proc, self._thread
            self._cond.notify_all()
        if proc is not None:
            self._terminate(proc)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.stop_grace_s + 10)
        with self._cond:
            if self._state in ("starting", "running"):
                self._state = "stopped"
            self._cond.notify_all()

    # --- the watcher thread -------------------------------------------------------------

    def _set(self, state: str, error: str | None = None) -> None:
        with self._cond:
            if self._stopping and state != "stopped":
                return
            self._state, self._error = state, error
            self._cond.notify_all()
        if error:
            log.error("%s", error)

    def problem(self) -> str | None:
        """What stops us from starting, in words, before anything runs."""
        folder = Path(self.folder).expanduser()
        try:
            if not folder.is_dir():
                return f"The ComfyUI folder {folder} does not exist (SPEECH2IMAGE_COMFYUI_DIR)."
            if not (folder / "main.py").is_file():
                return (f"There is no main.py in {folder}: SPEECH2IMAGE_COMFYUI_DIR must be your ComfyUI folder, "
                        "the one that holds main.py.")
        except OSError as exc:
            return f"The ComfyUI folder {folder} cannot be read: {exc}."
        python = python_for(self.folder, self.python_setting)
        if python is None:
            return "No Python found on PATH to run ComfyUI: set SPEECH2IMAGE_COMFYUI_PYTHON to the Python of your ComfyUI."
        if not runnable(python):
            return (f"The Python for ComfyUI, {python}, is not an executable file: set SPEECH2IMAGE_COMFYUI_PYTHON "
                    "to the Python of your ComfyUI (for example its venv/bin/python or venv\\Scripts\\python.exe).")
        return None

    def _watch(self) -> None:
        attempts = 0
        while True:
            problem = self.problem()
            if problem:
                return self._set("failed", problem)
            taken = probe(self.url, timeout_s=1.0)
            if taken.version:  # someone else's ComfyUI is there now: use it, never touch it
                log.info("a ComfyUI (%s) already answers at %s; not starting ours", taken.version, self.url)
                return self._set("idle")
            if taken.listening:
                return self._set("failed", f"Port {self.port} is taken by something that is not ComfyUI ({taken.answer}), "
                                           f"so ComfyUI cannot start there. Stop that program, or set "
                                           f"SPEECH2IMAGE_COMFYUI_DISCOVER to an address with a free port.")
            attempts += 1
            proc = self._spawn()
            if proc is None:
                return
            code, started = self._await_ready(proc)
            if code is None:
                if self._stopping or self._state == "failed":
                    return
                code = self._await_exit(proc)
            if code is None or self._stopping:  # stopped by us
                return
            if not started and not self._cpu_fallback and self._found_no_gpu():
                self._cpu_fallback = True
                self.note = ("ComfyUI found no GPU it can use here (its PyTorch says: "
                             f"{self._found_no_gpu()}), so it was started again with --cpu: pictures take "
                             "minutes instead of seconds")
                log.warning("%s", self.note)
                continue
            if self._restarts >= self.max_restarts:
                what = "stopped with" if started else "exited with"
                return self._set("failed", f"ComfyUI {what} status {code}{'' if started else ' while starting'} "
                                           f"(started {attempts} times, so it is not started again). "
                                           f"{self._tail_text()}")
            self._restarts += 1
            log.warning("ComfyUI exited with status %s; starting it again (%d of %d)", code, self._restarts,
                        self.max_restarts)
            self._set("starting")
            with self._cond:
                self._cond.wait_for(lambda: self._stopping, timeout=min(5.0, 0.5 * self._restarts))
                if self._stopping:
                    return

    def _spawn(self) -> subprocess.Popen | None:
        command = self.command()
        if self._stopping:
            return None
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log_file:
                log_file.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} speech2image starts ComfyUI: "
                               f"{' '.join(command)}\n".encode())
                log_file.flush()
                offset = log_file.tell()
                # CREATE_NEW_PROCESS_GROUP exists on Windows only; mypy checks as on this platform
                group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
                         if os.name == "nt" else {"start_new_session": True})
                proc = subprocess.Popen(command, cwd=Path(self.folder).expanduser(), stdin=subprocess.DEVNULL,
                                        stdout=log_file, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"}, **group)
        except OSError as exc:
            self._set("failed", f"ComfyUI could not be started with {command[0]}: {exc}")
            return None
        with self._cond:
            self._proc, self._log_offset = proc, offset
            stopping = self._stopping
            if not self._exit_hook:
                atexit.register(self.stop)  # the app's exit stops it, however the app ends
                self._exit_hook = True
        if stopping:  # stop() came while it was being started
            self._terminate(proc)
            return None
        log.info("starting ComfyUI in %s (pid %d): %s; its log: %s", self.folder, proc.pid, " ".join(command),
                 self.log_path)
        return proc

    def _await_ready(self, proc: subprocess.Popen) -> tuple[int | None, bool]:
        """(None, True) once it answers; (exit status, False) if it died first; (None, False) when stopped
        or out of time (then it is stopped and the state says why)."""
        deadline = time.monotonic() + self.start_timeout_s
        while not self._stopping:
            code = proc.poll()
            if code is not None:
                return code, False
            if probe(self.url, timeout_s=1.0).version:
                log.info("ComfyUI is up at %s", self.url)
                self._set("running")
                return None, True
            if time.monotonic() > deadline:
                self._terminate(proc)
                self._set("failed", f"ComfyUI did not answer within {self.start_timeout_s:g} s of starting, so it "
                                    f"was stopped (SPEECH2IMAGE_COMFYUI_START_TIMEOUT_S sets how long to wait). "
                                    f"{self._tail_text()}")
                return None, False
            with self._cond:
                self._cond.wait_for(lambda: self._stopping, timeout=self.poll_s)
        return None, False

    def _await_exit(self, proc: subprocess.Popen) -> int | None:
        """Its exit status when it dies; None when we stop it."""
        while not self._stopping:
            try:
                return proc.wait(timeout=self.poll_s)
            except subprocess.TimeoutExpired:
                continue
        return None

    def _terminate(self, proc: subprocess.Popen) -> None:
        """Only ``proc``, the child we started (and the processes it started in its group)."""
        if proc.poll() is not None:
            return
        try:
            if os.name == "nt":
                proc.terminate()
            else:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the group id is its pid
            proc.wait(timeout=self.stop_grace_s)
        except subprocess.TimeoutExpired:
            log.warning("ComfyUI (pid %d) did not stop within %g s; killing it", proc.pid, self.stop_grace_s)
            if os.name == "nt":
                proc.kill()
            else:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        log.info("ComfyUI (pid %d) stopped", proc.pid)

    # --- its log ------------------------------------------------------------------------

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last lines the current (or last) child wrote."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(self._log_offset)
                text = log_file.read().decode("utf-8", "replace")
        except OSError:
            return []
        # Progress bars redraw with \r: keep what a terminal would show last.
        shown = [line.rsplit("\r", 1)[-1].rstrip() for line in text.splitlines()]
        return [line for line in shown if line.strip()][-lines:]

    def _found_no_gpu(self) -> str | None:
        """The line of the last start's log that says its PyTorch has no GPU to use, if one does."""
        return next((line.strip() for line in self.log_tail(200) if any(sign in line for sign in NO_GPU_SIGNS)),
                    None)

    def _tail_text(self) -> str:
        tail = self.log_tail()
        if not tail:
            return f"Its log ({self.log_path}) is empty."
        hint = next((h for words, h in LOG_HINTS if any(words in line for line in tail)), "")
        return f"{hint}The last lines of its log ({self.log_path}):\n" + "\n".join(tail)
