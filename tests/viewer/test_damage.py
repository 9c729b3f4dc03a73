"""Uploading only damage rectangles gives the same picture as uploading whole frames."""

from __future__ import annotations

import numpy as np
import pytest

from kvmfr_client.core.formats import FrameType, bytes_per_pixel, decode, encode
from tests.viewer.helpers import Script, pattern, rgb_diff

W, H = 203, 131


def _sequence(n: int = 6):
    """Frames that each change a few rectangles of the previous one, with those rectangles."""
    rng = np.random.default_rng(7)
    frames, damages = [pattern(W, H, seed=11)], [None]
    for i in range(1, n):
        img = frames[-1].copy()
        rects = []
        for _ in range(3):
            w, h = int(rng.integers(1, 60)), int(rng.integers(1, 40))
            x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            img[y:y + h, x:x + w, :3] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            rects.append([x, y, w, h])
        frames.append(img)
        damages.append(rects)
    return frames, damages


FORMATS = [FrameType.BGRA, FrameType.RGBA10, FrameType.RGBA16F, FrameType.BGR_32, FrameType.RGB_24]


@pytest.fixture(scope="module")
def damage_shots(xserver, tmp_path_factory):
    """One window plays the damage sequence in every format (one GL start-up for all of them)."""
    frames, damages = _sequence()
    s = Script(tmp_path_factory.mktemp("damage"), (W, H))
    for ftype in FORMATS:
        for img, rects in zip(frames, damages):
            # The damage-only upload gets rows that hold the new frame only inside the rects (widened to
            # whole 32-bit texels for the packed kinds, as the wire format says) and garbage elsewhere:
            # whatever leaks from outside the rects would show.
            rows = encode(img, ftype)
            if rects:
                keep = np.zeros(rows.shape, bool)
                bpp = bytes_per_pixel(ftype)
                for x, y, w, h in rects:
                    if ftype in (FrameType.BGR_32, FrameType.RGB_24):
                        b0, b1 = (x * 3 // 4) * 4, (((x + w) * 3 + 3) // 4) * 4
                    else:
                        b0, b1 = x * bpp, (x + w) * bpp
                    keep[y:y + h, b0:b1] = True
                rows = np.where(keep, rows, np.uint8(0x5A))
            s.raw_frame(rows, ftype, W, H)
            s.steps[-1]["damage"] = rects
            s.draw()
    shots, _ = s.run(xserver)
    n = len(frames)
    return frames, {ftype: shots[i * n:(i + 1) * n] for i, ftype in enumerate(FORMATS)}


@pytest.mark.parametrize("ftype", FORMATS, ids=lambda t: t.name)
def test_damage_only_sequence_matches_full_frames(damage_shots, ftype):
    frames, shots_by_format = damage_shots
    tolerance = 1 if ftype == FrameType.RGBA16F else 0
    for i, (img, shot) in enumerate(zip(frames, shots_by_format[ftype])):
        expected = decode(encode(img, ftype), ftype, W)
        assert rgb_diff(shot, expected) <= tolerance, f"frame {i} differs after damage-only upload"
