"""Running the installed programs as a user does, for the door tests: one line on stderr, a documented
exit status, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODULES = {"kvmfr-view": "kvmfr_client.cli.view", "kvmfr-audio": "kvmfr_client.audio.cli",
           "kvmfr-input": "kvmfr_client.spice.cli", "kvmfr-agent": "guest_agent"}


def command(program: str, *args: str) -> list[str]:
    exe = BIN / program
    return [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", MODULES[program]]),
            *args]


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """No user configuration, no display, no password: only what the test gives."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "KVMFR_SPICE_PASSWORD", "XDG_CONFIG_HOME")}
    env.update(HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "xdg"), KVMFR_SYSCONFDIR=str(tmp / "etc"))
    env.update(extra)
    return env


def run(program: str, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command(program, *args), capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def one_line(stderr: str) -> str:
    """The single line a failing door prints; fails the test if there is a traceback or more lines."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


class Running:
    """A program started in the background; its stdout and stderr are collected by threads, so the test
    can wait for a line (the program is ready) and then send it a signal."""

    def __init__(self, program: str, *args: str, env: dict | None = None, cwd: Path = REPO, **popen):
        self.proc = subprocess.Popen(command(program, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=env, cwd=cwd, **popen)
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(s, sink), daemon=True)
                         for s, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr and text not in self.stdout:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode} before saying {text!r}:\n{self.stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{self.stderr[-3000:]}")
            time.sleep(0.05)

    def stop(self, sig: int, timeout: float = 15) -> int:
        """Send ``sig``; the exit status once it has ended (killed and failed if it does not, in time)."""
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running {timeout} s after signal {sig}:\n{self.stderr[-3000:]}")
        for t in self._threads:
            t.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
