"""Hosts that put the viewer into its error states, run as a subprocess by test_states.py.

    python -m tests.viewer.fake_host truncated|incompatible SHM_PATH SECONDS
"""

from __future__ import annotations

import sys
import time

import numpy as np

from kvmfr_client.core.native import lib
from kvmfr_client.core.cursor import CursorType
from kvmfr_client.core.formats import FrameFlags, FrameType, encode
from guest_agent.producer import Producer
from tests.support.shm import HEADER, Region, off

W, H, ROWS_THAT_FIT = 320, 240, 100


def truncated(path: str, seconds: float) -> None:
    """Frames whose bottom rows did not fit: TRUNCATED flag, data_height < height."""
    img = np.zeros((H, W, 4), np.uint8)
    img[..., 1] = 160
    img[..., 3] = 255
    rows = encode(img, FrameType.BGRA)
    prod = Producer(path, create_size=16 << 20)
    end = time.monotonic() + seconds
    serial = 1
    while time.monotonic() < end:
        prod.begin_frame(serial, FrameType.BGRA, W, H, flags=FrameFlags.TRUNCATED, data_height=ROWS_THAT_FIT)
        prod.write_rows(rows[:ROWS_THAT_FIT])
        prod.end_frame()
        if serial == 1:
            print("ready", flush=True)
        serial += 1
        time.sleep(0.05)
    prod.close()


def cursor_moves(path: str, seconds: float) -> None:
    """One frame, then only cursor moves (a masked-colour shape) every 20 ms, ending at (200, 100)."""
    img = np.zeros((H, W, 4), np.uint8)
    img[..., 0] = np.arange(W, dtype=np.uint8)[None, :]
    img[..., 2] = 90
    img[..., 3] = 255
    shape_px = np.zeros((8, 8, 4), np.uint8)
    shape_px[:, :4] = (0, 200, 255, 0)        # BGRA, mask 0: opaque orange
    shape_px[:, 4:] = (255, 255, 255, 255)    # mask set: invert
    shape = (CursorType.MASKED_COLOR, 8, 8, 32, 2, 3, shape_px.tobytes())
    prod = Producer(path, create_size=16 << 20)
    prod.post_frame(1, FrameType.BGRA, encode(img, FrameType.BGRA), W, H)
    while prod.subscribers(lib.LGMP_Q_POINTER) == 0:
        time.sleep(0.01)
    time.sleep(0.3)
    prod.post_cursor(10, 10, shape=shape)
    print("ready", flush=True)
    for i in range(40):
        time.sleep(0.02)
        prod.post_cursor(10 + 190 * (i + 1) // 40, 10 + 90 * (i + 1) // 40)
    print("done", flush=True)
    time.sleep(seconds)
    prod.close()


def resize_frames(path: str, seconds: float) -> None:
    """Frames that change size (small -> big -> small -> big, RGBA then BGR_32), the last one 320x240."""
    prod = Producer(path, create_size=16 << 20)
    while prod.subscribers(lib.LGMP_Q_FRAME) == 0:
        time.sleep(0.01)
    serial = 1
    for w, h, ftype in [(160, 120, FrameType.BGRA), (320, 240, FrameType.BGRA), (96, 64, FrameType.RGBA),
                        (320, 240, FrameType.BGR_32)]:
        img = resize_image(w, h)
        for _ in range(5):
            prod.post_frame(serial, ftype, encode(img, ftype), w, h)
            serial += 1
            time.sleep(0.05)
    print("done", flush=True)
    time.sleep(seconds)
    prod.close()


def resize_image(w: int, h: int) -> np.ndarray:
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 0] = (np.arange(w) * 255 // max(w - 1, 1)).astype(np.uint8)[None, :]
    img[..., 1] = (np.arange(h) * 255 // max(h - 1, 1)).astype(np.uint8)[:, None]
    img[..., 2] = w % 256
    img[..., 3] = 255
    return img


def incompatible(path: str, seconds: float) -> None:
    """A live host (heartbeat running) whose header says LGMP version 7."""
    prod = Producer(path, create_size=16 << 20)
    prod.stop_ticker()
    region = Region(path)
    region.set_u32(off(HEADER, "version"), 7)
    ts_at = off(HEADER, "timestamp")
    region.mm[ts_at:ts_at + 8] = (time.monotonic_ns() // 1_000_000).to_bytes(8, "little")
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        region.mm[ts_at:ts_at + 8] = (time.monotonic_ns() // 1_000_000).to_bytes(8, "little")
        time.sleep(0.01)
    region.close()


if __name__ == "__main__":
    {"truncated": truncated, "incompatible": incompatible, "cursor": cursor_moves,
     "resize": resize_frames}[sys.argv[1]](sys.argv[2], float(sys.argv[3]))
