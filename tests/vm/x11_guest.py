"""X screens inside the tiny test guest, for the agent's ``--source x11`` on the device path: one Xvfb (the
host's, over the 9p share) with a screen per display, each painted its own solid colour by xsetroot before
the agents start, so the host can tell every display's pixels from the others'.

Used by the two-display VM boot (tests/vm/test_lifecycle.py) and ``benchmarks/vm.py --x11``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

X_DISPLAY = ":1"
X_SOCKETS = Path("/tmp/.X11-unix")   # where X clients look for the server's socket
# screen n's colour as (R, G, B): distinct in every channel, none black (an unpainted screen) or white
COLOURS = ((0xC0, 0x20, 0x30), (0x20, 0xB0, 0x40), (0x30, 0x40, 0xD0), (0xD0, 0xC0, 0x20),
           (0x90, 0x20, 0xA0), (0x20, 0xA0, 0xA0), (0x80, 0x80, 0x80), (0xF0, 0x70, 0x10))


def missing_x_tools() -> str:
    """What the guest's X screens need from the host's tree (the guest runs it over 9p) and it lacks: a line
    saying what to install, or "" when nothing is missing."""
    missing = [pkg for tool, pkg in (("Xvfb", "xvfb"), ("xsetroot", "x11-xserver-utils")) if not shutil.which(tool)]
    return (f"the X screens in the guest need {' and '.join(missing)}: run `scripts/setup.sh test` (apt-get "
            f"install {' '.join(missing)})") if missing else ""


def x_screens(sizes: list[tuple[int, int]], then: list[str]) -> str:
    """Guest shell that starts one Xvfb with a screen per size, waits for its socket, paints screen n
    COLOURS[n], then starts the commands ``then`` side by side (last in a guest command: it ends in one).
    The guest's root is the host's, read-only: Xvfb's socket folder and compiled keymaps get a tmpfs each
    (not all of /tmp: the host's checkout, the agent's Python with it, may live there), -nolock (no lock
    file in /tmp). The socket folder is made here on the host if missing, so the guest can mount over it.
    -noreset keeps the colours: without it the server resets (to black) when xsetroot, its only client,
    leaves."""
    screens = " ".join(f"-screen {n} {w}x{h}x24" for n, (w, h) in enumerate(sizes))
    paint = "; ".join(f"DISPLAY={X_DISPLAY}.{n} xsetroot -solid rgb:{r:02x}/{g:02x}/{b:02x}"
                      for n, (r, g, b) in enumerate(COLOURS[:len(sizes)]))
    X_SOCKETS.mkdir(mode=0o1777, exist_ok=True)
    return (f"mount -t tmpfs tmpfs {X_SOCKETS}; mount -t tmpfs tmpfs /var/lib/xkb; "
            f"Xvfb {X_DISPLAY} {screens} -nolisten tcp -noreset -nolock & "
            f"while [ ! -S {X_SOCKETS}/X{X_DISPLAY[1:]} ]; do sleep 0.1; done; {paint}; " + " & ".join(then))


def x11_agent(display: int, screen: int, *args: str) -> str:
    """Our agent for ``display`` capturing X screen ``screen`` (no --shm: it finds its device by its label)."""
    return " ".join([f"DISPLAY={X_DISPLAY}.{screen}", sys.executable, "-m", "guest_agent", "--source", "x11",
                     "--display", str(display), *args])


def frame_colour_errors(frame, screen: int) -> int:
    """How many of the frame's pixels are not screen ``screen``'s colour (the frame is BGRA)."""
    rows = frame.pixels[:frame.height, :frame.width * 4].reshape(frame.height, frame.width, 4)
    r, g, b = COLOURS[screen]
    return int(np.count_nonzero(np.any(rows[..., :3] != np.array([b, g, r], np.uint8), axis=2)))


def window_shows_colour(x_display: str, wid: str, screen: int) -> bool:
    """Whether 16x16 pixels a quarter of the way into X window ``wid`` (a viewer's window on the host's X
    server) are screen ``screen``'s colour: what the user sees of that display. Not the middle: the guest's
    X cursor sits there, drawn over the picture by the viewer."""
    from Xlib import X, display
    conn = display.Display(x_display)
    try:
        window = conn.create_resource_object("window", int(wid))
        geo = window.get_geometry()
        image = window.get_image(geo.width // 4, geo.height // 4, 16, 16, X.ZPixmap, 0xFFFFFFFF)
    finally:
        conn.close()
    pixels = np.frombuffer(image.data, np.uint8).reshape(16, 16, 4)   # depth 24 ZPixmap: B, G, R, pad
    r, g, b = COLOURS[screen]
    return bool(np.all(pixels[..., :3] == np.array([b, g, r], np.uint8)))


def read_frames(session, count: int, timeout: float) -> list:
    """Up to ``count`` new frames within ``timeout`` seconds (``next_frame`` also returns None for a frame
    re-posted for a new reader, so None alone does not mean the agent stopped)."""
    import time
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frame = session.next_frame(timeout=min(5.0, max(0.01, deadline - time.monotonic())))
        if frame is not None:
            frames.append(frame)
    return frames
