"""The local X11 clipboard as a test drives it: xclip on the test's Xvfb (``env`` = ``xserver.env()``)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest


def require_xclip() -> None:
    if shutil.which("xclip") is None:
        pytest.fail("xclip is not installed: run `scripts/setup.sh test` (apt-get install xclip)")


def xclip(env, *args: str, data: bytes | None = None) -> bytes:
    if data is not None:
        subprocess.run(["xclip", "-selection", "clipboard", *args], input=data, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        return b""
    return subprocess.run(["xclip", "-selection", "clipboard", "-o", *args], env=env, capture_output=True,
                          timeout=5).stdout


def copy(env, mime: str | None, data: bytes) -> None:
    """Copy ``data`` as a local application would, and wait until the X server has the new owner (xclip's
    parent exits before its child's SetSelectionOwner may have reached the server)."""
    xclip(env, *(["-t", mime] if mime else []), "-i", data=data)
    wait_for(f"xclip never owned the clipboard with {mime or 'text'}",
          lambda: xclip(env, "-t", mime or "UTF8_STRING") == data, timeout=5)


def wait_for(what: str, check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.02)
