"""Start a private Xvfb (Mesa llvmpipe for OpenGL) for tests that need a display."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

import pytest

from tests.support.process import stop_process


@dataclass
class XServer:
    display: str
    proc: subprocess.Popen
    width: int
    height: int

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env.pop("WAYLAND_DISPLAY", None)
        env.update(extra)
        return env

    def stop(self) -> None:
        stop_process(self.proc, read_output=False)


def xvfb_argv(exe: str, wfd: int, width: int, height: int, depth: int = 24, screens: int = 1) -> list[str]:
    """Xvfb's command line: a free display number written to ``wfd`` when it is ready (-displayfd);
    ``screens`` X screens of that size (":N.0", ":N.1", ...)."""
    screen_args = [a for n in range(screens) for a in ("-screen", str(n), f"{width}x{height}x{depth}")]
    return [exe, "-displayfd", str(wfd), *screen_args, "-nolisten", "tcp", "-noreset", "+extension", "GLX", "-ac"]


def read_display(rfd: int, alive: Callable[[], bool], timeout: float = 20.0) -> str | None:
    """The display (":N") Xvfb writes to the read end of its -displayfd pipe, which this closes; None if
    it ended or said nothing within ``timeout``."""
    number = b""
    deadline = time.monotonic() + timeout
    try:
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not alive():
                return None
            ready, _, _ = select.select([rfd], [], [], left)
            if ready:
                chunk = os.read(rfd, 16)
                if not chunk:
                    return None
                number += chunk
    finally:
        os.close(rfd)
    return ":" + number.decode().strip()


def start_xvfb(width: int = 1920, height: int = 1080, depth: int = 24, screens: int = 1) -> XServer:
    """Start Xvfb on a free display number; fail the test with a clear message if it cannot start."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.fail("Xvfb is not installed: run `scripts/setup.sh test` (apt-get install xvfb)")
    rfd, wfd = os.pipe()
    proc = subprocess.Popen(xvfb_argv(exe, wfd, width, height, depth, screens),
                            pass_fds=(wfd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(wfd)
    display = read_display(rfd, lambda: proc.poll() is None)
    if display is None:
        err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None else ""
        proc.kill()
        pytest.fail(f"Xvfb did not start within 20 s: {err.strip()[-500:]}")
    return XServer(display=display, proc=proc, width=width, height=height)
