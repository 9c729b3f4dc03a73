"""A compositor without a seat (weston's headless back end), where GLFW 3.4 would die with SIGSEGV in
glfwInit: the viewer says so in one line instead; with DISPLAY set too, auto selection uses X11."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.desktop.desk import REPO
from tests.support.weston import start_weston


@pytest.fixture(scope="module")
def headless():
    weston = start_weston(None, 640, 480, headless=True)
    yield weston
    weston.stop()


def view(env, *options, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--shm", "/dev/shm/kvmfr-no-such-file",
                           "spice:enable=no", *options], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_a_seatless_compositor_is_one_line_not_a_crash(headless, xserver, tmp_path):
    # Forced, and chosen by WAYLAND_DISPLAY with no X11 to fall back to: one line, status 1 (no display).
    for options in (["win:backend=wayland"], []):
        done = view(headless.env(), *options)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1, (done.returncode, done.stderr)
        assert len(lines) == 1 and "offers no seat" in lines[0] and "win:backend=x11" in lines[0], done.stderr
    # A WAYLAND_DISPLAY that names no compositor: one line too.
    done = view(headless.env(WAYLAND_DISPLAY="wl-nobody-here"), "win:backend=wayland")
    assert done.returncode == 1 and "cannot connect to the Wayland compositor 'wl-nobody-here'" in done.stderr, \
        done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    # auto with DISPLAY set as well (a desktop with Xwayland): a warning, then the window on X11.
    env = headless.env(DISPLAY=xserver.display)
    stats = tmp_path / "stats.json"
    done = view(env, "--exit-after", "0.5", "--stats-json", str(stats))
    assert done.returncode == 0, done.stderr
    assert "offers no seat" in done.stderr and "using X11" in done.stderr, done.stderr
    import json
    assert json.loads(stats.read_text())["platform"] == "x11"
