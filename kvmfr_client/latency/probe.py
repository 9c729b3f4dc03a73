"""The screen probe: find a window on the X server and read the test pattern's barcode back from it.

Each poll is one X ``GetImage`` of only the barcode strip of the window (the top
``testpattern.code_rows(width)`` frame rows, scaled when the window scales the frame), so a poll costs
well under a millisecond and the probe can poll about every millisecond. When a serial shows up for
the first time the probe keeps both ends of the interval in which it appeared on screen:

* ``t_before_ns``: when the previous poll's request was sent (the serial was not yet visible when the
  server answered that poll, which it did after this moment), and
* ``t_seen_ns``: when the reply of the first poll that showed it came back (it was visible by then).

Both are CLOCK_MONOTONIC, the clock the guest agent writes into the pattern, so capture -> screen is
one subtraction on one clock. The report uses ``t_seen_ns`` (the late end: latency is never
under-stated) and gives the poll interval as the resolution.

python-xlib talks the X protocol directly (pure Python, no C library to match); ``GetImage`` on the
window returns what the X server shows there, after any presentation path the viewer took.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from kvmfr_client.core import testpattern

log = logging.getLogger(__name__)


class ProbeError(RuntimeError):
    """The probe could not find or read the window; the message says what to check."""


@dataclass
class Sighting:
    serial: int
    t_capture_us: int        # from the barcode (agent's CLOCK_MONOTONIC, microseconds, low 48 bits)
    t_before_ns: int         # previous poll's request time: not yet visible before this
    t_seen_ns: int           # reply time of the first poll that showed it


@dataclass
class Placement:
    """Where the frame lies in the window: top-left (x0, y0) and scale (window pixels per frame pixel)."""

    x0: int
    y0: int
    scale: float
    frame_w: int

    def strip(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the window area holding the barcode rows."""
        w = int(round(self.frame_w * self.scale))
        h = int(np.ceil(testpattern.code_rows(self.frame_w) * self.scale))
        return self.x0, self.y0, w, max(1, h)


def _connect(display: str | None):
    try:
        from Xlib import display as xdisplay
        from Xlib.error import DisplayError
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ProbeError("python-xlib is not installed: pip install python-xlib") from exc
    try:
        return xdisplay.Display(display)
    except DisplayError as exc:
        raise ProbeError(f"cannot open X display {display or '(DISPLAY)'}: {exc}; the probe needs X11 "
                         "(Xvfb or Xorg; under Wayland run the viewer on XWayland)") from exc


def _window_name(d, win) -> str:
    from Xlib import Xatom
    from Xlib.error import XError
    try:
        net = win.get_full_property(d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"))
        if net is not None and net.value:
            v = net.value
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        prop = win.get_full_property(Xatom.WM_NAME, 0)
        if prop is not None and prop.value:
            v = prop.value
            return v.decode("latin-1") if isinstance(v, bytes) else str(v)
    except XError:
        pass
    return ""


def _named_windows(d):
    from Xlib import X
    from Xlib.error import XError
    out = []
    stack = [d.screen().root]
    while stack:
        win = stack.pop()
        try:
            children = win.query_tree().children
        except XError:
            continue
        stack.extend(children)
        name = _window_name(d, win)
        if not name:
            continue
        try:
            if win.get_attributes().map_state != X.IsViewable:
                continue
            g = win.get_geometry()
        except XError:
            continue
        out.append((win, name, g))
    return out


def find_window(d, name_or_id: str | int):
    """The window with this id (decimal or 0x hex), or the largest viewable one whose title contains it."""
    if isinstance(name_or_id, int) or str(name_or_id).lower().startswith("0x") or str(name_or_id).isdigit():
        wid = name_or_id if isinstance(name_or_id, int) else int(str(name_or_id), 0)
        return d.create_resource_object("window", wid)
    matches = [(g.width * g.height, w) for w, name, g in _named_windows(d) if name_or_id in name]
    if not matches:
        names = sorted({name for _, name, _ in _named_windows(d)})
        raise ProbeError(f"no viewable window whose title contains {name_or_id!r}; windows: {names}")
    return max(matches, key=lambda m: m[0])[1]


class WindowProbe:
    """Reads the barcode strip of one window. ``frame_size``: the frame's (width, height), to place it."""

    def __init__(self, window: str | int, frame_size: tuple[int, int], display: str | None = None):
        self.display = _connect(display)
        self.window = find_window(self.display, window)
        self.frame_w, self.frame_h = frame_size
        self.placement: Placement | None = None
        self.name = _window_name(self.display, self.window) or hex(self.window.id)

    def close(self) -> None:
        self.display.close()

    def current_name(self) -> str:
        return _window_name(self.display, self.window) or hex(self.window.id)

    def window_size(self) -> tuple[int, int]:
        g = self.window.get_geometry()
        return g.width, g.height

    def grab(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """(h, w, 4) uint8 of the window area (bytes as the server sends them: B, G, R, X on 24-bit)."""
        from Xlib import X
        reply = self.window.get_image(x, y, w, h, X.ZPixmap, 0xFFFFFFFF)
        data = reply.data
        bpp = len(data) // (w * h) if w * h else 4
        if bpp != 4:
            raise ProbeError(f"window depth {reply.depth} ({bpp} bytes a pixel) is not supported; use a 24/32-bit X screen")
        return np.frombuffer(data, np.uint8).reshape(h, w, 4)

    def candidates(self) -> list[Placement]:
        ww, wh = self.window_size()
        fw, fh = self.frame_w, self.frame_h
        out = [Placement(0, 0, 1.0, fw)]
        s = min(ww / fw, wh / fh)                      # keep aspect, letterboxed, centred
        out.append(Placement(int(round((ww - fw * s) / 2)), int(round((wh - fh * s) / 2)), s, fw))
        if ww >= fw and wh >= fh:                      # not scaled, centred
            out.append(Placement((ww - fw) // 2, (wh - fh) // 2, 1.0, fw))
        return out

    def locate(self, timeout: float = 10.0) -> Placement:
        """Find where the frame's barcode is in the window (polls until one decodes or ``timeout``)."""
        from Xlib.error import XError
        deadline = time.monotonic() + timeout
        last_err = None
        while True:
            for pl in self.candidates():
                x, y, w, h = pl.strip()
                ww, wh = self.window_size()
                if x < 0 or y < 0 or x + w > ww or y + h > wh:
                    continue
                try:
                    if testpattern.read_code(self.grab(x, y, w, h), 0, 0, pl.scale) is not None:
                        self.placement = pl
                        return pl
                except XError as exc:
                    last_err = exc
            if time.monotonic() >= deadline:
                raise ProbeError(f"window {self.name!r} shows no test-pattern barcode for a {self.frame_w}x"
                                 f"{self.frame_h} frame (window {self.window_size()}); is it on screen, unscaled "
                                 f"or letterboxed, and not covered? {last_err or ''}".strip())
            time.sleep(0.02)

    def poll(self) -> tuple[int, int, int, int] | None:
        """One poll: (serial, t_capture_us, t_request_ns, t_reply_ns), or None when no code decodes."""
        pl = self.placement or self.locate()
        x, y, w, h = pl.strip()
        t_req = time.monotonic_ns()
        img = self.grab(x, y, w, h)
        t_rep = time.monotonic_ns()
        code = testpattern.read_code(img, 0, 0, pl.scale)
        if code is None:
            return None
        return code[1], code[2], t_req, t_rep

    def run(self, until_ns: int, interval_s: float = 0.001, stop=None) -> "ProbeResult":
        """Poll until CLOCK_MONOTONIC ``until_ns`` (or ``stop.is_set()``); one Sighting per new serial."""
        from Xlib.error import XError
        res = ProbeResult(window=self.name, placement=self.placement)
        last_serial = None
        prev_req: int | None = None     # request time of the previous poll, decoded or not
        while time.monotonic_ns() < until_ns and not (stop is not None and stop.is_set()):
            t0 = time.monotonic_ns()
            try:
                got = self.poll()
            except XError as exc:
                res.errors += 1
                if res.errors > 1000:
                    raise ProbeError(f"window {self.name!r} can no longer be read: {exc}") from exc
                got = None
            res.polls += 1
            if got is None:
                res.undecoded += 1
            else:
                serial, t_cap, t_req, t_rep = got
                if serial != last_serial and serial not in res.seen:
                    res.seen[serial] = Sighting(serial, t_cap, prev_req if prev_req is not None else t_req, t_rep)
                last_serial = serial
                res.poll_ns.append(t_rep - t_req)
            prev_req = t0
            sleep = interval_s - (time.monotonic_ns() - t0) / 1e9
            if sleep > 0:
                time.sleep(sleep)
        res.placement = self.placement
        return res


@dataclass
class ProbeResult:
    window: str
    placement: Placement | None
    polls: int = 0
    undecoded: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self.seen: dict[int, Sighting] = {}
        self.poll_ns: list[int] = []

    def to_json(self) -> dict:
        pl = self.placement
        return {
            "window": self.window,
            "placement": None if pl is None else {"x0": pl.x0, "y0": pl.y0, "scale": pl.scale},
            "polls": self.polls, "undecoded": self.undecoded, "errors": self.errors,
            "poll_ms_p50": round(float(np.median(self.poll_ns)) / 1e6, 4) if self.poll_ns else None,
            "sightings": [[s.serial, s.t_capture_us, s.t_before_ns, s.t_seen_ns] for s in self.seen.values()],
        }
