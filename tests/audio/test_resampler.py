"""The native drift resampler (native/resample.c) against the numpy version it replaced, kept here as the
reference: same output for any chunking, ratio changes between calls, channel counts and gain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kvmfr_client.audio.drift import DriftResampler


class NumpyResampler:
    """The player's resampler before it moved to C (kvmfr_client/audio/drift.py until 2026-11-30)."""

    def __init__(self, channels: int):
        self._hist = np.zeros((3, channels), dtype=np.float32)
        self._pos = 1.0

    def process(self, frames: np.ndarray, ratio: float) -> np.ndarray:
        buf = np.concatenate([self._hist, frames.astype(np.float32, copy=False)])
        limit = len(buf) - 2
        count = max(0, math.ceil((limit - self._pos) / ratio))
        p = self._pos + ratio * np.arange(count)
        i = np.floor(p).astype(np.int64)
        t = (p - i).astype(np.float32)[:, None]
        y0, y1, y2, y3 = buf[i - 1], buf[i], buf[i + 1], buf[i + 2]
        out = y1 + 0.5 * t * (y2 - y0 + t * (2 * y0 - 5 * y1 + 4 * y2 - y3 + t * (3 * (y1 - y2) + y3 - y0)))
        self._pos += ratio * count
        keep_from = int(math.floor(self._pos)) - 1
        self._hist = buf[keep_from:].copy()
        self._pos -= keep_from
        return out


@pytest.mark.parametrize("channels", [1, 2, 6, 8])
def test_native_resampler_matches_the_numpy_reference(channels):
    rng = np.random.default_rng(channels)
    x = rng.uniform(-1, 1, (48000, channels)).astype(np.float32)
    ours, ref = DriftResampler(channels), NumpyResampler(channels)
    got, want = [], []
    k = 0
    while k < len(x):
        n = int(rng.choice([0, 1, 2, 5, 288, 480, 1000]))
        ratio = float(rng.choice([1.0, 1.002, 0.998, 1.0000371, 0.9999]))
        gain = float(rng.choice([1.0, 0.5, 0.0]))
        chunk = x[k:k + n]
        k += n
        a, b = ours.process(chunk, ratio, gain), ref.process(chunk, ratio) * np.float32(gain)
        assert a.shape == b.shape
        got.append(a)
        want.append(b)
    got, want = np.concatenate(got), np.concatenate(want)
    assert len(got) > 40000
    assert np.max(np.abs(got - want)) < 2e-6


def test_bad_ratio_channels_and_shapes_are_refused():
    with pytest.raises(ValueError):
        DriftResampler(9)
    r = DriftResampler(2)
    with pytest.raises(ValueError):
        r.process(np.zeros((10, 2), np.float32), 3.0)
    with pytest.raises(ValueError):
        r.process(np.zeros((10, 3), np.float32), 1.0)
    assert len(r.process(np.zeros((288, 2), np.float32), 1.0)) == 288  # the refused calls changed nothing
