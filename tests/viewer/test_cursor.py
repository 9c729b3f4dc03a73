"""Each cursor type over a known background at known positions, against cursor.composite()."""

from __future__ import annotations

import numpy as np
import pytest

from kvmfr_client.core.cursor import CursorShape, CursorType, composite
from kvmfr_client.core.formats import FrameType
from tests.viewer.helpers import Script, pattern, rgb_diff

W, H = 120, 90


def color_shape(w=13, h=11):
    rgba = np.random.default_rng(5).integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[0, :, 3] = 0          # fully transparent row
    rgba[1, :, 3] = 255        # fully opaque row
    bgra = rgba[..., [2, 1, 0, 3]]
    return CursorType.COLOR, w, h, w * 4, bgra.tobytes()


def mono_shape(w=16, h=12):
    """AND/XOR masks giving all four results: transparent, black, white, invert (quadrants)."""
    pitch = (w + 7) // 8
    and_m = np.zeros((h, w), bool)
    xor_m = np.zeros((h, w), bool)
    and_m[: h // 2, : w // 2] = True                       # transparent: AND 1, XOR 0
    # black: AND 0, XOR 0 (top right)
    xor_m[h // 2:, : w // 2] = True                        # white: AND 0, XOR 1 (bottom left)
    and_m[h // 2:, w // 2:] = xor_m[h // 2:, w // 2:] = True   # invert (bottom right)
    pack = lambda m: np.packbits(m, axis=1, bitorder="big")[:, :pitch]
    return CursorType.MONOCHROME, w, h, pitch, pack(and_m).tobytes() + pack(xor_m).tobytes()


def masked_shape(w=10, h=10):
    rng = np.random.default_rng(9)
    px = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    px[..., 3] = np.where(np.arange(w)[None, :] % 2 == 0, 0, 0xFF)   # alternate opaque / XOR columns
    return CursorType.MASKED_COLOR, w, h, w * 4, px.tobytes()


SHAPES = {"color": color_shape, "monochrome": mono_shape, "masked": masked_shape}
POSITIONS = [(10, 20), (50, 40), (W - 5, H - 4), (-4, -3)]   # includes partly off-screen


@pytest.fixture(scope="module")
def cursor_shots(xserver, tmp_path_factory):
    """One window draws every shape at every position, then hidden (one GL start-up for all)."""
    bg = pattern(W, H, seed=21)
    s = Script(tmp_path_factory.mktemp("cursor"), (W, H)).frame(bg, FrameType.BGRA)
    for make in SHAPES.values():
        ctype, w, h, pitch, data = make()
        s.cursor_shape(ctype, w, h, pitch, data, hx=3, hy=2)
        for x, y in POSITIONS:
            s.cursor(x, y).draw()
        s.cursor(10, 20, visible=False).draw()
    shots, result = s.run(xserver)
    n = len(POSITIONS) + 1
    return bg, result, {name: shots[i * n:(i + 1) * n] for i, name in enumerate(SHAPES)}


@pytest.mark.parametrize("name", list(SHAPES))
def test_cursor_types_match_reference(cursor_shots, name):
    bg, result, by_shape = cursor_shots
    ctype, w, h, pitch, data = SHAPES[name]()
    shape = CursorShape(ctype, w, h, 3, 2, pitch, data)
    assert set(result["paths"]) == {"blit"}, "a 1:1 BGRA frame must take the blit path even with a cursor"
    shots = by_shape[name]
    for (x, y), shot in zip(POSITIONS, shots):
        expected = composite(bg, shape, x, y)
        # straight-alpha blending rounds in the GPU: 1 step; opaque, transparent and XOR are exact
        assert rgb_diff(shot, expected) <= 1, f"cursor at {x},{y}"
        if ctype != CursorType.COLOR:
            assert rgb_diff(shot, expected) == 0
    assert rgb_diff(shots[-1], bg) == 0, "a hidden cursor must leave the frame untouched"


def test_monochrome_invert_really_inverts(xserver, script):
    bg = np.zeros((H, W, 4), np.uint8)
    bg[..., :3] = (200, 30, 90)
    bg[..., 3] = 255
    ctype, w, h, pitch, data = mono_shape()
    shots, _ = script((W, H)).frame(bg).cursor_shape(ctype, w, h, pitch, data).cursor(20, 30).draw().run(xserver)
    shot = shots[0]
    assert tuple(shot[30 + 1, 20 + 1, :3]) == (200, 30, 90)        # transparent quadrant
    assert tuple(shot[30 + 1, 20 + w - 2, :3]) == (0, 0, 0)         # black
    assert tuple(shot[30 + h - 2, 20 + 1, :3]) == (255, 255, 255)   # white
    assert tuple(shot[30 + h - 2, 20 + w - 2, :3]) == (55, 225, 165)  # invert


def test_cursor_scales_with_frame_and_screen(xserver, script):
    """Window 2x the frame: the cursor is drawn 2x too, at 2x its guest position."""
    bg = np.zeros((40, 60, 4), np.uint8)
    bg[..., 3] = 255
    white = np.full((4, 4, 4), 255, np.uint8)
    shots, _ = (script((120, 80), filter="nearest").frame(bg)
                .cursor_shape(CursorType.COLOR, 4, 4, 16, white.tobytes()).cursor(10, 5).draw().run(xserver))
    ys, xs = np.nonzero(shots[0][..., 0] == 255)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 27, 10, 17)


def test_cursor_white_matches_the_hdr_frames_sdr_white(xserver, script):
    """KVMFR 34: over a tone-mapped HDR frame a cursor with an SDR white level goes through the frame's
    mapping, so a white cursor over a white (SDR content) window is the same white; without a level (B7)
    its colours stay as they are."""
    from kvmfr_client.core.formats import FrameFlags
    from kvmfr_client.viewer import hdr
    w, h = 48, 32
    lin = np.zeros((h, w, 4), np.float16)
    lin[..., :3] = 203 / 80          # the guest's SDR white on a Windows HDR desktop (scRGB)
    lin[..., 3] = 1.0
    rows = lin.view(np.uint8).reshape(h, w * 8)
    facts = {"sdr_white_level": 203, "max_cll": 1000}
    cw, ch = 8, 6
    white = np.full((ch, cw, 4), 255, np.uint8).tobytes()
    grey = np.full((ch, cw, 4), 255, np.uint8)
    grey[..., :3] = 128
    s = script((w, h), peak_nits=250.0)
    s.raw_frame(rows, FrameType.RGBA16F, w, h, flags=FrameFlags.HDR | FrameFlags.HDR_METADATA, light=facts)
    s.cursor_shape(CursorType.COLOR, cw, ch, cw * 4, white).cursor(10, 10, True, 203).draw()
    s.cursor(10, 10, True, 0).draw()                                   # a B7 cursor: no level
    s.cursor_shape(CursorType.COLOR, cw, ch, cw * 4, grey.tobytes()).cursor(10, 10, True, 203).draw()
    (leveled, plain, grey_shot), _ = s.run(xserver)
    light = hdr.light_for(250.0, 203, type("M", (), {"max_cll": 1000, "max_luminance": 0})())
    frame_white = leveled[0, 0, :3]
    assert rgb_diff(leveled[10:16, 10:18], np.broadcast_to(frame_white, (ch, cw, 3))) <= 2
    assert 230 < int(frame_white[0]) < 250                              # below the top: the roll-off
    assert (plain[10:16, 10:18, :3] == 255).all()
    expected = hdr.cursor_srgb8(np.array([128, 128, 128], np.uint8), light, hdr.cursor_white(203, True))
    assert rgb_diff(grey_shot[10:16, 10:18], np.broadcast_to(expected, (ch, cw, 3))) <= 2
    assert rgb_diff(grey_shot[20:, 30:], leveled[20:, 30:]) == 0       # the frame itself is untouched
