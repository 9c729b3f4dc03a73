"""Child processes of a soak: each in its own process group, all of them ended when the soak ends.

Every child is started with ``start_new_session=True`` so one ``killpg`` ends it and whatever it started;
``Children.close`` sends SIGTERM to every group, waits, then SIGKILLs what is left. Output that a child
writes is read by a thread (``LineTap``) that keeps counters and the last lines only, so the harness's own
memory stays bounded however long the soak runs.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def bin_path(name: str) -> str:
    """A console script of the venv the harness runs in (kvmfr-view, kvmfr-agent)."""
    candidate = Path(PYTHON).parent / name
    return str(candidate) if candidate.exists() else name


class LineTap:
    """Reads a child's text stream on a thread; ``on_line(t_ns, line)`` sees each line as it arrives."""

    def __init__(self, stream, on_line: Callable[[int, str], None] | None = None, keep: int = 40):
        self.last = collections.deque(maxlen=keep)
        self._on_line = on_line
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True, name="soak-tap")
        self._thread.start()

    def _run(self, stream) -> None:
        try:
            for raw in stream:
                line = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
                line = line.rstrip("\n")
                t = time.monotonic_ns()
                self.last.append(line)
                if self._on_line is not None:
                    try:
                        self._on_line(t, line)
                    except Exception as exc:  # a bad line must not stop the tap
                        self.last.append(f"[soak: could not parse: {exc}]")
        except (OSError, ValueError):
            pass

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)


class Child:
    def __init__(self, name: str, proc: subprocess.Popen, tap: LineTap | None):
        self.name, self.proc, self.tap = name, proc, tap
        self.started_ns = time.monotonic_ns()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        """SIGKILL the whole group and reap it."""
        self.signal_group(signal.SIGKILL)
        rc = self.proc.wait()
        if self.tap is not None:
            self.tap.join(1.0)
        return rc

    def stop(self, grace: float = 3.0, sig: int = signal.SIGTERM) -> tuple[int, bool]:
        """Ask the group to end; SIGKILL after ``grace`` s. Returns (exit status, ended by itself)."""
        if self.alive():
            self.signal_group(sig)
        rc = self.wait(grace)
        if rc is not None:
            self.signal_group(signal.SIGKILL)   # anything it left behind in its group
            if self.tap is not None:
                self.tap.join(1.0)
            return rc, True
        return self.kill(), False

    def tail(self, n: int = 5) -> str:
        return " | ".join(list(self.tap.last)[-n:]) if self.tap is not None else ""


class Children:
    """Every process the soak started; ``close()`` ends them all (process groups) and removes nothing else."""

    def __init__(self) -> None:
        self._all: list[Child] = []
        self._lock = threading.Lock()

    def start(self, name: str, cmd: list[str], *, env: dict | None = None, on_line=None, stdin=False,
              cwd: str | os.PathLike | None = None, log: Path | None = None, keep: int = 40,
              pass_fds: tuple = ()) -> Child:
        """Start ``cmd`` in a new session. Its stdout+stderr go to ``on_line`` through a tap, or to ``log``."""
        if log is not None:
            with open(log, "ab") as out:
                proc = subprocess.Popen(cmd, cwd=cwd or REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                        start_new_session=True)
            child = Child(name, proc, None)
        else:
            proc = subprocess.Popen(cmd, cwd=cwd or REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                    start_new_session=True, pass_fds=pass_fds)
            child = Child(name, proc, LineTap(proc.stdout, on_line, keep))
        with self._lock:
            self._all = [c for c in self._all if c.alive()] + [child]   # bounded over 100s of restarts
        return child

    def close(self, grace: float = 2.0) -> None:
        with self._lock:
            children = list(self._all)
        for c in children:
            if c.alive():
                c.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for c in children:
            c.wait(max(0.0, deadline - time.monotonic()))
        for c in children:
            c.signal_group(signal.SIGKILL)
            if c.proc.poll() is None:
                c.proc.wait()


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def interrupt_on_term() -> None:
    """SIGTERM (and SIGHUP) end the soak like Ctrl+C: KeyboardInterrupt unwinds and the finally blocks
    stop every child."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)
