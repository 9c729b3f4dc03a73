"""Runs the real viewer (kvmfr-view's window mode) over a fake KVMFR 34 session whose frames are built
here, as a Looking Glass master host would send them: host stage timings, SDR white level, HDR metadata,
a host that takes the window-size message and then sends frames at the size asked for.

    python -m tests.viewer.fake_session_child OUT.json [--hdr] [kvmfr-view arguments...]

OUT.json: the window-size messages the session got (``set_window_size``: [[w, h, t_s], ...], t_s since the
child started) and the frames it sent (``frames``: count per size).
"""

from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np

from kvmfr_client.core.formats import FrameFlags, FrameType, Rotation, encode
from kvmfr_client.core.native import lib
from kvmfr_client.core.session import Frame, HdrMetadata, HostInfo, HostTimings, SessionState

T_START = time.monotonic()
TIMINGS = HostTimings(capture_ns=1_250_000, post_process_ns=250_000, copy_ns=2_500_000, ready_ns=125_000,
                      hold_ns=4_000_000, ready_lead_ns=500_000, phase_valid=True)
METADATA = HdrMetadata(primaries=((0.708, 0.292), (0.17, 0.797), (0.131, 0.046)), white_point=(0.3127, 0.329),
                       max_luminance=4000.0, min_luminance=0.005, max_cll=1000, max_fall=400)



def colour_for(size: tuple[int, int]) -> tuple[int, int, int]:
    """Each frame size has its own colour, so a snapshot shows which size is on screen."""
    w, h = size
    return (w * 7) % 200 + 40, (h * 13) % 200 + 40, 90


class FakeSession:
    """What the viewer uses of :class:`kvmfr_client.core.session.Session`, with a KVMFR 34 host."""

    def __init__(self, size: tuple[int, int], hdr: bool) -> None:
        self.state = SessionState.CONNECTED
        self.host = HostInfo(session_id=41, hostver="B7-123-g8cb6a687", features=lib.KVMFR_FEATURE_WINDOWSIZE, capture="IDD",
                             os=2, os_name="Windows", cpus=4, cores=4, sockets=1, model="fake", uuid=bytes(16),
                             lgmp_version=12, kvmfr_version=34)
        self.status_message = ""
        self.shm_size = 64 << 20
        self.session_restarts = 0
        self.size = size
        self.hdr = hdr
        self.serial = 0
        self.window_sizes: list[list] = []
        self.frames: dict[str, int] = {}
        self._lock = threading.Lock()

    def errors_by_kind(self) -> dict:
        return {}

    def close(self) -> None:
        pass

    def set_window_size(self, w: int, h: int) -> None:
        with self._lock:
            self.window_sizes.append([w, h, round(time.monotonic() - T_START, 3)])
            self.size = (w, h)   # the guest follows: the next frames come at the new size

    def set_cursor_pos(self, x, y, timeout=0.5) -> None:
        pass

    def next_cursor(self, timeout: float = 0.1):
        time.sleep(timeout)
        return None

    def next_frame(self, timeout: float = 0.1, out=None, newest: bool = False, allow_damage: bool = True):
        time.sleep(1 / 60)
        with self._lock:
            w, h = self.size
        self.serial += 1
        key = f"{w}x{h}"
        self.frames[key] = self.frames.get(key, 0) + 1
        if self.hdr:
            lin = np.zeros((h, w, 4), np.float16)
            lin[..., :3] = 2.0                       # twice scRGB white: 160 nits
            lin[..., 3] = 1.0
            rows = lin.view(np.uint8).reshape(h, w * 8)
            ftype, flags = FrameType.RGBA16F, FrameFlags.HDR | FrameFlags.HDR_METADATA
        else:
            img = np.empty((h, w, 4), np.uint8)
            img[..., :3] = colour_for((w, h))
            img[..., 3] = 255
            rows = encode(img, FrameType.BGRA)
            ftype, flags = FrameType.BGRA, FrameFlags(0)
        now = time.monotonic_ns()
        return Frame(serial=self.serial, type=ftype, format_ver=1, width=w, height=h, screen_width=w,
                     screen_height=h, data_width=w, data_height=h, pitch=rows.shape[1], stride=w,
                     rotation=Rotation(0), flags=flags, damage=(), pixels=rows, t_seen_ns=now,
                     t_copy_start_ns=now, t_copy_end_ns=now + 1000, sdr_white_level=203 if self.hdr else 0,
                     host_timings=TIMINGS, hdr_metadata=METADATA if self.hdr else None)


def main() -> int:
    out = sys.argv[1]
    argv = sys.argv[2:]
    hdr = argv[:1] == ["--hdr"]
    if hdr:
        argv = argv[1:]
    import kvmfr_client
    from kvmfr_client.cli.view import parse_command_line
    from kvmfr_client.viewer import run
    args, cfg = parse_command_line(argv)
    session = FakeSession(cfg["win:size"], hdr)
    kvmfr_client.open = lambda *a, **kw: session
    rc = run(cfg, args)
    with open(out, "w") as f:
        json.dump({"rc": rc, "set_window_size": session.window_sizes, "frames": session.frames}, f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
