"""Every KVMFR frame type reaches the window exactly (HDR mapping within a stated tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

from kvmfr_client.core.formats import FrameFlags, FrameType, decode, encode, linear_to_srgb, row_bytes
from kvmfr_client.viewer import hdr
from tests.viewer.helpers import pattern, rgb_diff

W, H = 161, 97   # odd sizes: packed 24-bit rows end mid-texel, rows are not power-of-two aligned


@pytest.mark.parametrize("force_shader", [False, True], ids=["blit", "shader"])
def test_each_format_exact_at_1to1(xserver, script, force_shader):
    img = pattern(W, H, seed=3)
    s = script((W, H), force_shader=force_shader)
    for ftype in FrameType:
        # a padded pitch, as producers align rows
        pitch = (row_bytes(ftype, W) + 63) // 64 * 64
        s.frame(img, ftype, pitch=pitch).draw()
    shots, result = s.run(xserver)
    assert result["paths"] == ["shader" if force_shader else "blit"] * len(FrameType)
    for ftype, shot in zip(FrameType, shots):
        expected = decode(encode(img, ftype), ftype, W)
        # RGBA16F goes through float16 and back: 1 step of rounding; the rest are exact.
        tolerance = 1 if ftype == FrameType.RGBA16F else 0
        assert rgb_diff(shot, expected) <= tolerance, f"{ftype.name} differs"
        assert (shot[..., 3] == 255).all(), f"{ftype.name}: window alpha must stay opaque"


def test_truncated_frame_shows_rows_present_and_black_below(xserver, script):
    img = pattern(64, 48, seed=4)
    rows = encode(img, FrameType.BGRA)[:30]           # the host had room for 30 of 48 rows
    shots, _ = script((64, 48)).raw_frame(rows, FrameType.BGRA, 64, 48, flags=FrameFlags.TRUNCATED).draw().run(xserver)
    assert rgb_diff(shots[0][:30], img[:30]) == 0
    assert (shots[0][30:, :, :3] == 0).all()


def _scrgb_frame(lin: np.ndarray) -> np.ndarray:
    h, w, _ = lin.shape
    half = np.empty((h, w, 4), "<f2")
    half[..., :3] = lin
    half[..., 3] = 1.0
    return half.view(np.uint8).reshape(h, w * 8)


def test_rgba16f_hdr_is_tone_mapped_not_clipped(xserver, script):
    # A ramp from black to 12x SDR white (960 nits) in each channel.
    ramp = np.linspace(0.0, 12.0, 64, dtype=np.float32)
    lin = np.zeros((16, 64, 3), np.float32)
    lin[0:5, :, 0] = ramp
    lin[5:10, :, 1] = ramp
    lin[10:16, :, :] = ramp[None, :, None]
    rows = _scrgb_frame(lin)
    peak = 1000.0
    s = script((64, 16), peak_nits=peak)
    s.raw_frame(rows, FrameType.RGBA16F, 64, 16, flags=FrameFlags.HDR).draw()
    s.raw_frame(rows, FrameType.RGBA16F, 64, 16, flags=0).draw()
    (mapped, plain), _ = s.run(xserver)
    lin16 = lin.astype(np.float16).astype(np.float64)
    # Tolerance 2: float16 input and GPU pow() differ from numpy's float64 by a little.
    assert rgb_diff(mapped, np.dstack([hdr.scrgb_to_srgb8(lin16, peak, True), np.full((16, 64), 255)])) <= 2
    # Highlights keep detail: mapped white ramp rises strictly until the peak (12.5 = 1000/80) ...
    white = mapped[12, :, 0].astype(int)
    assert (np.diff(white[ramp <= 12.0]) >= 0).all() and white[-1] > white[20] > white[8]
    # ... while without the HDR flag everything over 1.0 clips to 255.
    assert (plain[12, ramp >= 1.0, 0] == 255).all()
    # SDR range below the knee is untouched by the mapping.
    low = ramp < hdr.KNEE
    expected_low = np.round(linear_to_srgb(lin16[12, low, 0]) * 255)
    assert np.abs(mapped[12, low, 0] - expected_low).max() <= 1


def test_rgba10_hdr_pq_is_decoded_and_mapped(xserver, script):
    # PQ code values 0..1023 along x, grey.
    codes = np.linspace(0, 1023, 128).round().astype(np.uint32)
    word = codes | (codes << 10) | (codes << 20) | (3 << 30)
    rows = np.repeat(word[None, :], 8, axis=0).astype("<u4").view(np.uint8)
    shots, _ = script((128, 8), peak_nits=600.0).raw_frame(
        rows, FrameType.RGBA10, 128, 8, flags=FrameFlags.HDR | FrameFlags.HDR_PQ).draw().run(xserver)
    e = np.repeat((codes / 1023.0)[:, None], 3, axis=1)
    expected = hdr.scrgb_to_srgb8(hdr.pq_to_scrgb(e), 600.0, True)
    assert np.abs(shots[0][4, :, :3].astype(int) - expected.astype(int)).max() <= 3
    # 100 nits (PQ ~0.508) is a little above SDR white (80 nits): bright but not clipped
    i = int(np.argmin(np.abs(codes / 1023.0 - 0.508)))
    assert 230 < shots[0][4, i, 0] < 255
