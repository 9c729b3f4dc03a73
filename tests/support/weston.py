"""Start a private weston (Wayland compositor) for tests: its X11 back end inside an Xvfb, so a screenshot of
the Xvfb shows what weston composited and xdotool on the Xvfb drives weston's seat; or its headless back end,
which has no seat (facts in ../shared/docs/desktop-testbed.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.process import stop_process
from tests.support.xvfb import XServer


@dataclass
class Weston:
    socket: str
    runtime_dir: Path
    proc: subprocess.Popen
    log: Path
    xserver: XServer | None    # the Xvfb weston draws into (None: headless)
    width: int                 # the output in device pixels, at (0, 0) of the Xvfb
    height: int
    scale: int

    def env(self, **extra: str) -> dict[str, str]:
        """A Wayland client's environment: WAYLAND_DISPLAY and XDG_RUNTIME_DIR; DISPLAY stays set (as in
        a desktop session with Xwayland), so auto back-end selection is what is tested."""
        env = self.xserver.env() if self.xserver is not None else dict(os.environ)
        if self.xserver is None:
            env.pop("DISPLAY", None)
        env["WAYLAND_DISPLAY"] = self.socket
        env["XDG_RUNTIME_DIR"] = str(self.runtime_dir)
        env.update(extra)
        return env

    def scene_graph(self) -> str:
        """weston's scene graph as its debug scope prints it (weston runs with --debug): each view with its
        role, title and app-id ("top-level window 'TITLE' of APP_ID")."""
        exe = shutil.which("weston-debug")
        if exe is None:
            pytest.fail("weston-debug is not installed: run `scripts/setup.sh test` (apt-get install weston)")
        try:
            proc = subprocess.run([exe, "scene-graph"], env=self.env(), capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired as exc:   # it exits once the scope has printed; a hang is a failure
            return exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return proc.stdout

    def stop(self) -> None:
        crashed = self.proc.poll() is not None and self.proc.returncode < 0
        stop_process(self.proc, read_output=False)
        if crashed and self.log.exists():   # weston 10 sometimes segfaults (docs/desktop.md): keep its log
            kept = Path(tempfile.gettempdir()) / f"kvmfr-weston-crash-{self.proc.pid}.log"
            shutil.copyfile(self.log, kept)
            print(f"weston ended by signal {-self.proc.returncode}; its log: {kept}")
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


def start_weston(xserver: XServer | None, width: int = 1280, height: int = 720, scale: int = 1,
                 headless: bool = False, timeout: float = 20.0) -> Weston:
    """weston on a private socket in a private XDG_RUNTIME_DIR: the X11 back end on ``xserver`` with an
    output of ``width`` x ``height`` device pixels at output scale ``scale``, or (``headless``) the headless
    back end. Fails the test with a clear message when weston is missing or does not come up."""
    exe = shutil.which("weston")
    if exe is None:
        pytest.fail("weston is not installed: run `scripts/setup.sh test` (apt-get install weston)")
    runtime = Path(tempfile.mkdtemp(prefix="kvmfr-weston-"))
    runtime.chmod(0o700)   # weston refuses a runtime folder others can read
    socket = "wl-kvmfr-test"
    log = runtime / "weston.log"
    # --width/--height are in the output's logical size: scale 2 makes the X window twice as big.
    # --debug: the weston_debug_v1 protocol, for Weston.scene_graph (tests only: any client may read it).
    argv = [exe, f"--socket={socket}", f"--log={log}", "--debug"]
    if headless:
        argv += ["--backend=headless-backend.so", f"--width={width}", f"--height={height}"]
    else:
        argv += ["--backend=x11-backend.so", "--use-pixman", f"--width={width // scale}",
                 f"--height={height // scale}", f"--scale={scale}"]
    env = xserver.env() if xserver is not None else dict(os.environ)
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    weston = Weston(socket, runtime, proc, log, None if headless else xserver, width, height, scale)
    # Ready when the socket exists and, with the X11 back end, its desktop shell has drawn the panel.
    deadline = time.monotonic() + timeout
    marker = "launching '/usr/lib/x86_64-linux-gnu/weston-desktop-shell'" if not headless else None
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if (runtime / socket).exists() and (marker is None or marker in text or "desktop-shell" in text):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc, read_output=False)
            shutil.rmtree(runtime, ignore_errors=True)
            pytest.fail(f"weston did not start within {timeout} s (exit {proc.returncode}):\n{text[-2000:]}")
        time.sleep(0.05)
    return weston
