"""The window fits into the desktop: WM_CLASS / app-id, title placeholders, icon, desktop entry, man pages,
the screensaver inhibit, and the win:* options only a window manager shows (openbox on a test Xvfb)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from contextlib import contextmanager

import numpy as np
import pytest

from kvmfr_client.viewer import icon
from kvmfr_client.config.options import parse_title
from kvmfr_client.viewer.identity import APP_ID, expand_title, uses_rates
from tests.support.desktop import need, start_openbox, start_session_bus, xprop
from tests.support.process import stop_process, wait_for
from tests.support.xvfb import start_xvfb
from tests.viewer.agent import ViewerRun
from tests.viewer.helpers import REPO

PROGRAMS = ("kvmfr-view", "kvmfr-agent", "kvmfr-agent-audio", "kvmfr-input", "kvmfr-audio", "kvmfr-vm")


# ---- files: desktop entry, icon, man pages ------------------------------------------------------------

def test_desktop_entry_icon_and_man_pages_are_valid_current_and_installed(tmp_path):
    from PIL import Image

    from tools import icon as icon_tool
    from tools import manpages
    validate = need("desktop-file-validate", "desktop-file-utils")
    entry = REPO / "data" / f"{APP_ID}.desktop"
    proc = subprocess.run([validate, str(entry)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr
    fields = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    assert (fields["Exec"], fields["Icon"], fields["StartupWMClass"]) == (APP_ID, APP_ID, APP_ID)

    # the committed icon files are what the drawing gives; a PNG reader sees the same pixels
    for path, content in icon_tool.files().items():
        assert path.is_file() and path.read_bytes() == content, f"{path} is stale: run python -m tools.icon"
    png = Image.open(REPO / "data/icons/hicolor/48x48/apps/kvmfr-view.png")
    assert png.size == (48, 48) and np.array_equal(np.asarray(png.convert("RGBA")), icon.render(48))

    # every program has a man page, the committed ones are current, and man renders them without a warning
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) <= set(PROGRAMS)
    for path, text in manpages.pages().items():
        assert path.is_file() and path.read_text() == text, f"{path.name} is stale: run python -m tools.manpages"
    man = need("man", "man-db")
    for name in PROGRAMS:
        proc = subprocess.run([man, "--warnings", "-E", "UTF-8", "-l", str(REPO / "docs/man" / f"{name}.1")],
                              capture_output=True, text=True, timeout=30, env={**os.environ, "MANWIDTH": "100"})
        assert proc.returncode == 0 and not proc.stderr.strip(), f"{name}: {proc.stderr}"
        assert proc.stdout.startswith(name.upper() + "(1)") and "EXIT STATUS" in proc.stdout, proc.stdout[:300]
    view = (REPO / "docs/man/kvmfr-view.1").read_text()
    assert "win:noScreensaver" in view and "\\fB\\-S\\fR" in view

    # pip installs them (pyproject data-files); scripts/install-desktop.sh puts them where a desktop looks
    data_files = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files["share/applications"] == [f"data/{APP_ID}.desktop"]
    assert data_files["share/man/man1"] == ["docs/man/*.1"]
    for n in icon.SIZES:
        assert data_files[f"share/icons/hicolor/{n}x{n}/apps"] == [f"data/icons/hicolor/{n}x{n}/apps/{APP_ID}.png"]
    share = tmp_path / "share"
    proc = subprocess.run(["bash", str(REPO / "scripts/install-desktop.sh"), "--exec", "/opt/kv/bin/kvmfr-view"],
                          env={**os.environ, "XDG_DATA_HOME": str(share)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    installed = share / "applications" / f"{APP_ID}.desktop"
    assert "Exec=/opt/kv/bin/kvmfr-view" in installed.read_text()
    assert subprocess.run([validate, str(installed)], capture_output=True, timeout=30).returncode == 0
    assert (share / f"icons/hicolor/256x256/apps/{APP_ID}.png").is_file()
    assert (share / "man/man1/kvmfr-vm.1").is_file()


def test_title_placeholders_are_checked_and_guest_text_is_tamed(capsys):
    from kvmfr_client.cli.view import parse_command_line
    assert expand_title("{os} {width}x{height} ({protocol})", {"os": "Windows", "width": 1920, "height": 1080,
                                                                "protocol": "B7"}) == "Windows 1920x1080 (B7)"
    assert expand_title("{width}x{height}", {}) == "?x?"
    assert uses_rates("{fps} fps") and uses_rates("{ups}") and not uses_rates("kvmfr-view {os} {width}")
    # a hostile guest's OS name: no line breaks or escapes in the title, and not endless
    assert expand_title("{os}", {"os": "Win\ndows\x1b[2J" + "x" * 500}) == ("Windows[2J" + "x" * 500)[:64]
    with pytest.raises(ValueError, match=r"unknown placeholder \{resolution\}"):
        parse_title("{resolution}")
    with pytest.raises(SystemExit) as exit_:
        parse_command_line(["win:title={fsp}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "win:title: unknown placeholder {fsp}" in err[0] and "{fps}" in err[0], err


# ---- the window on a desktop: openbox on a test Xvfb --------------------------------------------------

class _Desktop:
    """The test Xvfb with extra environment for the viewer (the session bus)."""

    def __init__(self, xserver, **extra: str):
        self.xserver, self.extra, self.display = xserver, extra, xserver.display

    def env(self, **more: str) -> dict[str, str]:
        return self.xserver.env(**self.extra, **more)


@pytest.fixture(scope="module")
def wm_xserver():
    server = start_xvfb(1280, 800)
    wm = None
    try:
        wm = start_openbox(server.display)
        yield server
    finally:
        if wm is not None:
            stop_process(wm, read_output=False)
        server.stop()


@contextmanager
def identity_host(shm_path):
    host = subprocess.Popen([sys.executable, "-m", "tests.viewer.identity_host", str(shm_path)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "ready", f"identity host did not start (exit {host.poll()})"
        yield host
    finally:
        stop_process(host, sig=signal.SIGKILL)


def send(host, w: int, h: int, flags: int) -> None:
    host.stdin.write(f"{w} {h} {flags}\n")
    host.stdin.flush()
    assert host.stdout.readline().strip() == "ok"


def viewer_window(display: str) -> str:
    ids = []
    wait_for(lambda: ids.extend(_search(display)) or ids, 40, "the viewer's window (WM_CLASS kvmfr-view)", 0.1)
    return ids[0]


def xdo(display: str, *args: str) -> None:
    proc = subprocess.run([need("xdotool", "xdotool"), *args], env={**os.environ, "DISPLAY": display},
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr


def _search(display: str) -> list[str]:
    proc = subprocess.run([need("xdotool", "xdotool"), "search", "--classname", f"^{APP_ID}$"],
                          env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, timeout=10)
    return proc.stdout.split()


def prop(display: str, wid: str, name: str) -> str:
    return xprop(display, "-id", wid, name)


def title(display: str, wid: str) -> str:
    m = re.search(r'_NET_WM_NAME\(UTF8_STRING\) = "(.*)"', prop(display, wid, "_NET_WM_NAME"))
    return m.group(1) if m else ""


def size_of(display: str, wid: str) -> tuple[int, int]:
    out = subprocess.run(["xwininfo", "-id", wid], env={**os.environ, "DISPLAY": display}, capture_output=True,
                         text=True, timeout=10).stdout
    return int(re.search(r"Width: (\d+)", out).group(1)), int(re.search(r"Height: (\d+)", out).group(1))


def other_window(display: str):
    """Another client window, activated (the viewer loses the focus)."""
    from Xlib import X
    from Xlib import display as xdisplay
    d = xdisplay.Display(display)
    screen = d.screen()
    w = screen.root.create_window(50, 50, 200, 100, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                  background_pixel=screen.white_pixel)
    w.set_wm_name("other")
    w.map()
    d.sync()
    wid = str(w.id)
    wait_for(lambda: subprocess.run([need("xdotool", "xdotool"), "windowactivate", wid],
                                    env={**os.environ, "DISPLAY": display}, capture_output=True).returncode == 0,
             10, "the other window to take the focus", 0.1)
    return d, w


def test_window_class_stays_while_title_and_size_follow_the_guest_and_its_requests(wm_xserver, tmp_path,
                                                                                      shm_path):
    """WM_CLASS and the icon (xprop) while the title changes; win:autoResize with win:allowResize=no;
    win:autoScreensaver through a D-Bus ScreenSaver service; win:requestActivation."""
    bus = start_session_bus()
    service = subprocess.Popen([sys.executable, "-m", "tests.support.desktop", "screensaver"], cwd=REPO,
                               env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus.address},
                               stdout=subprocess.PIPE, text=True)
    display = wm_xserver.display
    try:
        assert service.stdout.readline().strip() == "ready"
        desk = _Desktop(wm_xserver, DBUS_SESSION_BUS_ADDRESS=bus.address)
        with ViewerRun(desk, tmp_path, shm_path, 120.0, "win:title={width}x{height} {protocol}",
                       "win:size=200x150", "win:autoResize=yes", "win:allowResize=no", "win:autoScreensaver=yes",
                       "spice:enable=no") as viewer:
            wid = viewer_window(display)
            wait_for(lambda: title(display, wid) == "?x? ? - waiting for the host", 20, "the waiting title")
            assert 'WM_CLASS(STRING) = "kvmfr-view", "kvmfr-view"' in prop(display, wid, "WM_CLASS")
            wait_for(lambda: all(f"Icon ({n} x {n})" in prop(display, wid, "_NET_WM_ICON") for n in icon.WINDOW_SIZES),
                     10, f"the window icon at {icon.WINDOW_SIZES} px")

            with identity_host(shm_path) as host:
                wait_for(lambda: title(display, wid).startswith("320x240 B7 - "), 20, "the connected title")
                assert 'WM_CLASS(STRING) = "kvmfr-view", "kvmfr-view"' in prop(display, wid, "WM_CLASS")
                wait_for(lambda: size_of(display, wid) == (320, 240), 10, "win:autoResize to 320x240")
                hints = prop(display, wid, "WM_NORMAL_HINTS")
                assert "minimum size: 320 by 240" in hints and "maximum size: 320 by 240" in hints, hints

                send(host, 400, 300, 1)                # bigger, and the guest blocks the screensaver
                wait_for(lambda: size_of(display, wid) == (400, 300), 10, "win:autoResize to 400x300")
                assert title(display, wid).startswith("400x300 B7 - ")
                assert "maximum size: 400 by 300" in prop(display, wid, "WM_NORMAL_HINTS")
                assert service.stdout.readline().split() == ["Inhibit", "1", APP_ID, "the", "guest", "asks",
                                                             "(autoScreensaver)"]
                send(host, 400, 300, 0)
                assert service.stdout.readline().split() == ["UnInhibit", "1"]

                assert "DEMANDS_ATTENTION" not in prop(display, wid, "_NET_WM_STATE")
                other = other_window(display)
                send(host, 400, 300, 2)                # the guest asks for attention
                wait_for(lambda: "_NET_WM_STATE_DEMANDS_ATTENTION" in prop(display, wid, "_NET_WM_STATE"), 10,
                         "the window to demand attention")
                other[0].close()

                send(host, 400, 300, 1)                # blocks the screensaver again, then the host dies
                assert service.stdout.readline().split()[:2] == ["Inhibit", "2"]
                host.kill()
                assert service.stdout.readline().split() == ["UnInhibit", "2"]

                # full screen (ScrollLock+F), then the focus goes elsewhere: win:minimizeOnFocusLoss is off by
                # default, as in Looking Glass (glfw's own default would minimize)
                xdo(display, "windowactivate", "--sync", wid)
                xdo(display, "keydown", "Scroll_Lock", "key", "f", "keyup", "Scroll_Lock")
                wait_for(lambda: "_NET_WM_STATE_FULLSCREEN" in prop(display, wid, "_NET_WM_STATE"), 10, "full screen")
                other = other_window(display)
                time.sleep(1.0)
                assert "window state: Normal" in prop(display, wid, "WM_STATE")
                other[0].close()
                stats, _ = viewer.finish()
        assert stats["fullscreen"] is True
        assert stats["desktop"] == {"screensaver_inhibited": False, "screensaver_by": "D-Bus org.freedesktop.ScreenSaver",
                                    "screensaver_errors": 0, "attention_requests": 1}
    finally:
        stop_process(service, read_output=False)
        bus.stop()


def test_full_screen_minimizes_on_focus_loss_and_x_screensaver_stays_off(wm_xserver, tmp_path, shm_path):
    """win:minimizeOnFocusLoss (full screen, as Looking Glass) and win:noScreensaver through the X server's
    XScreenSaverSuspend where no session bus serves the ScreenSaver interface: with a 1 s screensaver timeout
    the screen is not blanked while the viewer runs, and is once it has closed."""
    from Xlib import X
    from Xlib import display as xdisplay
    display = wm_xserver.display
    d = xdisplay.Display(display)
    root = d.screen().root
    d.set_screen_saver(1, 0, X.DefaultBlanking, X.DefaultExposures)
    d.sync()
    try:
        desk = _Desktop(wm_xserver, DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
        with ViewerRun(desk, tmp_path, shm_path, 120.0, "win:fullScreen=yes", "win:minimizeOnFocusLoss=yes",
                       "win:noScreensaver=yes", "spice:enable=no") as viewer:
            wid = viewer_window(display)
            wait_for(lambda: "_NET_WM_STATE_FULLSCREEN" in prop(display, wid, "_NET_WM_STATE"), 20, "full screen")
            d.force_screen_saver(X.ScreenSaverReset)
            d.sync()
            time.sleep(2.0)        # twice the timeout, with no input
            # with a 1 s timeout set, the server reports its screensaver disabled (3): suspended by a client
            state = root.screensaver_query_info().state
            assert state == 3, f"screensaver state {state} (1: on) while the viewer asks to keep it off"
            assert "Normal" in prop(display, wid, "WM_STATE")
            other = other_window(display)
            wait_for(lambda: "window state: Iconic" in prop(display, wid, "WM_STATE"), 10,
                     "the full-screen window to be minimized on focus loss")
            other[0].close()
            stats, _ = viewer.finish()
        assert stats["desktop"]["screensaver_by"] == "X11 XScreenSaverSuspend"
        d.force_screen_saver(X.ScreenSaverReset)
        d.sync()
        wait_for(lambda: root.screensaver_query_info().state == 1, 10,
                 "the screensaver to come on after the viewer closed (the check above would prove nothing)")
    finally:
        d.set_screen_saver(0, 0, X.DefaultBlanking, X.DefaultExposures)
        d.close()


def test_screensaver_inhibit_follows_a_flipping_guest_at_a_bounded_rate_and_never_raises(monkeypatch, caplog):
    from kvmfr_client.viewer import screensaver

    class Backend:
        name = "test"
        calls: list[bool] = []

        def set(self, on, reason):
            self.calls.append(on)

    now = [100.0]
    inh = screensaver.Inhibitor(None, "x11", clock=lambda: now[0])
    inh._tried, inh.backend = True, Backend()
    for i in range(50):                      # the guest flips its flag every frame for a second
        inh.set(i % 2 == 0)
        inh.tick()
        now[0] += 0.02
    inh.set(False)                           # ...and ends without it
    for _ in range(30):
        inh.tick()
        now[0] += 0.02
    assert inh.backend.calls[-1] is False and inh.active is False
    assert len(inh.backend.calls) <= 1 + 1.0 / screensaver.MIN_CHANGE_INTERVAL_S + 1, inh.backend.calls

    # no session bus and no X11: one warning, and the viewer goes on
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    bare = screensaver.Inhibitor(None, "other")
    bare.set(True)
    bare.set(False)
    bare.close()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cannot keep the screensaver off" in warnings[0].getMessage()


def test_screensaver_inhibit_falls_through_when_wayland_is_offered_but_unbound_or_fails(monkeypatch):
    from kvmfr_client.viewer import screensaver, wayland

    made: list[str] = []

    class FakeDBus:
        name = "fake dbus"

        def __init__(self):
            made.append("dbus")
            self.calls: list[bool] = []

        def set(self, on, reason):
            self.calls.append(on)

        def close(self):
            made.append("dbus closed")

    monkeypatch.setattr(screensaver, "_DBus", FakeDBus)
    # the compositor offers idle inhibit, but our binding bound nothing (the pywayland wheel case)
    monkeypatch.setattr(wayland, "offered", lambda window: {wayland.IDLE_INHIBIT: 1})
    monkeypatch.setattr(wayland, "can_inhibit_idle", lambda window: False)
    monkeypatch.setattr(wayland, "inhibit_idle", lambda window, on: pytest.fail("unbound Wayland used"))
    inh = screensaver.Inhibitor(object(), "wayland")
    inh.set(True)
    assert inh.backend_name == "fake dbus" and inh.backend.calls == [True] and inh.errors == 0

    # bound, but its first set() fails: the next backend serves, the failed one is closed
    made.clear()
    monkeypatch.setattr(wayland, "can_inhibit_idle", lambda window: True)
    monkeypatch.setattr(wayland, "inhibit_idle", lambda window, on: False)
    inh = screensaver.Inhibitor(object(), "wayland")
    inh.set(True)
    assert inh.backend_name == "fake dbus" and inh.backend.calls == [True] and made == ["dbus"]
    inh.close()
    assert made == ["dbus", "dbus closed"]
