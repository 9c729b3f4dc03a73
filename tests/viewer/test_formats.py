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


def test_kvmfr34_hdr_facts_replace_peak_luminance(xserver, script):
    """A KVMFR 34 frame's SDR white level and MaxCLL (else mastering max luminance) drive the mapping
    instead of egl:peakLuminance; a frame without them is mapped by the option as before."""
    ramp = np.linspace(0.0, 12.0, 64, dtype=np.float32)
    lin = np.repeat(ramp[None, :, None], 8, axis=0).repeat(3, axis=2)
    rows = _scrgb_frame(lin)
    lin16 = lin.astype(np.float16).astype(np.float64)
    option = 250.0
    s = script((64, 8), peak_nits=option)
    s.raw_frame(rows, FrameType.RGBA16F, 64, 8, flags=FrameFlags.HDR | FrameFlags.HDR_METADATA,
                light={"sdr_white_level": 203, "max_cll": 1000, "max_luminance": 4000}).draw()
    s.raw_frame(rows, FrameType.RGBA16F, 64, 8, flags=FrameFlags.HDR | FrameFlags.HDR_METADATA,
                light={"sdr_white_level": 203, "max_cll": 0, "max_luminance": 600}).draw()
    s.raw_frame(rows, FrameType.RGBA16F, 64, 8, flags=FrameFlags.HDR).draw()
    (cll, mastering, plain), _ = s.run(xserver)
    assert rgb_diff(cll, hdr.scrgb_to_srgb8(lin16, 1000.0, True, 203.0)) <= 2
    assert rgb_diff(mastering, hdr.scrgb_to_srgb8(lin16, 600.0, True, 203.0)) <= 2
    assert rgb_diff(plain, hdr.scrgb_to_srgb8(lin16, option, True)) <= 2
    # What a person sees: the guest's SDR white (203 nits = scRGB 2.54) is no longer pushed to the top
    # of the roll-off, and highlights up to MaxCLL keep their steps instead of clipping.
    x_sdr = int(np.argmin(np.abs(ramp - 203 / 80)))
    assert cll[4, x_sdr, 0] < plain[4, x_sdr, 0] - 5
    over = ramp > 203 / 80
    assert (np.diff(cll[4, over, 0].astype(int)) >= 0).all() and cll[4, -1, 0] > cll[4, x_sdr, 0] + 10


def test_light_for_uses_frame_facts_only_when_plausible():
    from types import SimpleNamespace as NS
    assert hdr.light_for(250.0) == hdr.Light(250.0, 80.0, "egl:peakLuminance")
    assert hdr.light_for(250.0, 203) == hdr.Light(250.0, 203.0, "egl:peakLuminance")
    meta = NS(max_cll=1000, max_luminance=4000.0)
    assert hdr.light_for(250.0, 203, meta) == hdr.Light(1000.0, 203.0, "MaxCLL")
    assert hdr.light_for(250.0, 0, NS(max_cll=0, max_luminance=600.0)).source == "mastering max luminance"
    # values a hostile or broken host may write: out of 1..10000 nits, they are not used
    assert hdr.light_for(250.0, 4_000_000_000, NS(max_cll=70000, max_luminance=0.0)) == hdr.Light(250.0)
    assert hdr.light_for(250.0, 203, NS(max_cll=0, max_luminance=float("nan"))).source == "egl:peakLuminance"


def test_cursor_white_only_for_a_level_on_a_mapped_frame():
    assert hdr.cursor_white(203, True) == 203 / 80
    assert hdr.cursor_white(0, True) == 0.0            # B7 cursor
    assert hdr.cursor_white(203, False) == 0.0         # SDR frame, or egl:mapHDRtoSDR=no
    assert hdr.cursor_white(70000, True) == 0.0        # not a luminance
