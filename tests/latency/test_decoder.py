"""The barcode decoder and the probe's pieces, on known images (no viewer)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from kvmfr_client.core import testpattern
from kvmfr_client.latency import stages
from kvmfr_client.latency.probe import Placement, WindowProbe
from kvmfr_client.latency.report import png_bytes
from kvmfr_client.core.testpattern import PatternKind

CASES = [(1920, 1, 1), (1920, 0xFFFFFFFF, (1 << 48) - 1), (1280, 123456, 987654321012), (640, 7, 0), (64, 42, 5)]


@pytest.mark.parametrize("width,serial,t_us", CASES)
def test_reads_back_exactly(width, serial, t_us):
    img = testpattern.render_code(width, PatternKind.MOVING, serial, t_us)
    assert testpattern.read_code(img) == (PatternKind.MOVING, serial, t_us)
    # As X sends a 24-bit window: B, G, R, pad byte (0), not RGBA.
    bgrx = img[..., [2, 1, 0, 3]].copy()
    bgrx[..., 3] = 0
    assert testpattern.read_code(bgrx) == (PatternKind.MOVING, serial, t_us)


@pytest.mark.parametrize("scale", [2, 3])
def test_reads_back_upscaled_and_offset(scale):
    code = testpattern.render_code(640, PatternKind.DAMAGE, 99, 123_456_789)
    big = np.repeat(np.repeat(code, scale, 0), scale, 1)
    canvas = np.zeros((big.shape[0] + 50, big.shape[1] + 30, 4), np.uint8)   # letterbox bars around it
    canvas[20:20 + big.shape[0], 30:] = big
    assert testpattern.read_code(canvas, x0=30, y0=20, scale=scale) == (PatternKind.DAMAGE, 99, 123_456_789)


def test_reads_back_downscaled_by_half():
    code = testpattern.render_code(1920, PatternKind.MOVING, 31337, 42_000_000)
    small = code.reshape(code.shape[0] // 2, 2, 960, 2, 4).mean(axis=(1, 3)).astype(np.uint8)
    assert testpattern.read_code(small, scale=0.5) == (PatternKind.MOVING, 31337, 42_000_000)


@pytest.mark.parametrize("width,serial,t_us", CASES)
def test_stored_rows_read_as_the_decoded_frame(width, serial, t_us):
    """read_stored_code samples BGRA/RGBA rows as stored (the viewer's per-frame read): the same answer as
    decoding the rows first, on the code, on noise, and with a pitch wider than the row."""
    from kvmfr_client.core.formats import FrameType, decode, encode
    rng = np.random.default_rng(width)
    n = testpattern.code_rows(width)
    for ftype in (FrameType.BGRA, FrameType.RGBA):
        code = testpattern.render_code(width, PatternKind.DAMAGE, serial, t_us)
        noise = rng.integers(0, 256, (n, width, 4), dtype=np.uint8)
        for img, expected in ((code, (PatternKind.DAMAGE, serial, t_us)), (noise, None)):
            stored = np.zeros((n + 2, width * 4 + 64), np.uint8)
            stored[:n, : width * 4] = encode(img, ftype).reshape(n, -1)
            assert testpattern.read_code(decode(stored[:n], ftype, width)) == expected
            assert testpattern.read_stored_code(stored, ftype, width) == expected
        assert testpattern.read_stored_code(stored[: n - 1], ftype, width) is None   # too few rows


def test_a_damaged_code_reads_as_nothing():
    img = testpattern.render_code(1280, PatternKind.MOVING, 5, 6)
    img[0:8, 8 * 20:8 * 21, :3] ^= 0xFF      # flip one block (one payload bit)
    assert testpattern.read_code(img) is None
    assert testpattern.read_code(np.zeros_like(img)) is None


def test_strip_covers_the_scaled_code_rows():
    assert Placement(0, 0, 1.0, 1920).strip() == (0, 0, 1920, testpattern.code_rows(1920))
    x, y, w, h = Placement(10, 60, 0.5, 1920).strip()
    assert (x, y, w) == (10, 60, 960) and h * 2 >= testpattern.code_rows(1920)


def test_stage_samples_merge_a_point_no_record_has():
    recs = [{"capture": 0, "post": None, "seen": 2_000_000, "copy_start": 3_000_000, "copy_end": 5_000_000,
             "upload_end": 6_000_000, "draw_end": 7_000_000, "swap_end": 9_000_000, "on_screen": 10_000_000}]
    per = stages.stage_samples(recs)
    assert list(per)[0] == "capture->seen" and per["capture->seen"] == [2.0]
    assert sum(v[0] for v in per.values()) == pytest.approx(10.0)    # the stages add up to end to end


def test_png_writer_round_trips_through_pillow():
    from PIL import Image
    rgb = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    back = np.asarray(Image.open(io.BytesIO(png_bytes(rgb))).convert("RGB"))
    assert np.array_equal(back, rgb)


def test_probe_reads_a_real_x_window(xserver):
    """A plain X window holding a known pattern: the probe finds it by name and polls it exactly."""
    from Xlib import X, display as xdisplay
    d = xdisplay.Display(xserver.display)
    try:
        screen = d.screen()
        win = screen.root.create_window(40, 30, 640, 360, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                        background_pixel=screen.black_pixel)
        win.set_wm_name("probe-unit-window")
        win.map()
        gc = win.create_gc()
        d.sync()
        frame = testpattern.Pattern(640, 360, testpattern.FrameType.BGRA).render_rgba(4242, 77_000_111)
        bgrx = frame[..., [2, 1, 0, 3]].copy()
        deadline = time.monotonic() + 5
        while True:   # a fresh window may not be viewable yet
            for y in range(0, 360, 16):    # one request holds at most 256 KiB
                win.put_image(gc, 0, y, 640, 16, X.ZPixmap, 24, 0, bgrx[y:y + 16].tobytes())
            d.sync()
            try:
                probe = WindowProbe("probe-unit-window", (640, 360), xserver.display)
                probe.locate(timeout=1)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
        try:
            assert (probe.placement.x0, probe.placement.y0, probe.placement.scale) == (0, 0, 1.0)
            serial, t_us, t_req, t_rep = probe.poll()
            assert (serial, t_us) == (4242, 77_000_111) and t_req <= t_rep
            res = probe.run(time.monotonic_ns() + 50_000_000)
            assert list(res.seen) == [4242] and res.polls >= 10 and res.undecoded == 0
        finally:
            probe.close()
        win.destroy()
    finally:
        d.close()
