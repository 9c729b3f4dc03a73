"""Scaling, letterbox, integer scaling, don't-upscale and rotation, read back from real windows."""

from __future__ import annotations

import numpy as np

from kvmfr_client.viewer import layout
from tests.viewer.helpers import pattern, rgb_diff

W, H = 64, 48


def up(img, k):
    return np.kron(img, np.ones((k, k, 1), np.uint8))


def test_keep_aspect_letterbox_and_nearest_2x(xserver, script):
    img = pattern(W, H, seed=2)
    # 160x96 window: aspect 5:3 vs 4:3 -> 128x96 picture, 16-pixel black bars left and right
    shots, result = script((160, 96), filter="nearest").frame(img).draw().run(xserver)
    shot = shots[0]
    assert result["paths"] == ["shader"]
    assert rgb_diff(shot[:, 16:144], up(img, 2)) == 0
    assert (shot[:, :16, :3] == 0).all() and (shot[:, 144:, :3] == 0).all()


def test_stretch_without_keep_aspect_fills_window(xserver, script):
    img = pattern(W, H, seed=2)
    shots, _ = script((128, 144), filter="nearest", keep_aspect=False).frame(img).draw().run(xserver)
    # 2x horizontally, 3x vertically
    expected = np.repeat(np.repeat(img, 3, axis=0), 2, axis=1)
    assert rgb_diff(shots[0], expected) == 0


def test_integer_upscale_and_dont_upscale(xserver, script, tmp_path):
    img = pattern(W, H, seed=8)
    # 230x170 would allow 3.54x; integer scaling gives 3x = 192x144 centred at (19, 13)
    shots, result = script((230, 170), int_upscale=True, filter="linear").frame(img).draw().run(xserver)
    shot = shots[0]
    assert rgb_diff(shot[13:157, 19:211], up(img, 3)) == 0, "integer scaling must be sharp (nearest)"
    assert (shot[:13, :, :3] == 0).all() and (shot[:, :19, :3] == 0).all()


def test_dont_upscale_shows_1to1_centred_with_blit(xserver, tmp_path):
    from tests.viewer.helpers import Script
    img = pattern(W, H, seed=8)
    shots, result = Script(tmp_path, (100, 80), dont_upscale=True).frame(img).draw().run(xserver)
    assert result["paths"] == ["blit"]
    assert rgb_diff(shots[0][16:64, 18:82], img) == 0
    assert (shots[0][:16, :, :3] == 0).all()


def test_downscale_linear_averages(xserver, script):
    img = pattern(W, H, seed=9)
    shots, _ = script((W // 2, H // 2), filter="linear").frame(img).draw().run(xserver)
    avg = img.reshape(H // 2, 2, W // 2, 2, 4).astype(float).mean(axis=(1, 3))
    assert rgb_diff(shots[0], np.round(avg).astype(np.uint8)) <= 2


def test_rotation_option_and_frame_rotation(xserver, script):
    img = pattern(W, H, seed=12)
    s = script((H, W), filter="nearest")
    s.frame(img, rotation=1).draw()                    # host says 90
    s.frame(img, rotation=3).draw()                    # host says 270
    shots, result = s.run(xserver)
    assert rgb_diff(shots[0], np.rot90(img, k=-1)) == 0, "90 degrees must turn the picture clockwise"
    assert rgb_diff(shots[1], np.rot90(img, k=1)) == 0


def test_rotate_180_by_option(xserver, tmp_path):
    from tests.viewer.helpers import Script
    img = pattern(W, H, seed=12)
    shots, result = Script(tmp_path, (W, H), filter="nearest", rotate=180).frame(img).draw().run(xserver)
    assert result["paths"] == ["shader"]
    assert rgb_diff(shots[0], img[::-1, ::-1]) == 0


def test_cursor_follows_rotation(xserver, tmp_path):
    from kvmfr_client.core.cursor import CursorType
    from tests.viewer.helpers import Script
    bg = np.zeros((H, W, 4), np.uint8)
    bg[..., 3] = 255
    white = np.full((2, 3, 4), 255, np.uint8)     # 3 wide, 2 tall
    shots, _ = (Script(tmp_path, (H, W), filter="nearest").frame(bg, rotation=1)
                .cursor_shape(CursorType.COLOR, 3, 2, 12, white.tobytes()).cursor(5, 10).draw().run(xserver))
    expected = np.zeros((H, W), bool)
    expected[10:12, 5:8] = True
    ys, xs = np.nonzero(shots[0][..., 0] == 255)
    ey, ex = np.nonzero(np.rot90(expected, k=-1))
    assert sorted(zip(ys, xs)) == sorted(zip(ey, ex))


def test_layout_math():
    pol = layout.Policy(keep_aspect=True)
    assert layout.place(1920, 1080, 1920, 1080, 0, pol).fills == (0, 0, 1920, 1080)
    assert layout.place(1920, 1080, 1000, 1000, 0, pol).fills == (0, 219, 1000, 562)
    assert layout.place(100, 50, 1000, 1000, 90, pol).fills == (250, 0, 500, 1000)
    assert layout.place(100, 50, 1000, 1000, 0, layout.Policy(dont_upscale=True)).fills == (450, 475, 100, 50)
    pl = layout.place(100, 50, 200, 100, 0, pol)
    assert layout.window_to_frame(100, 50, 100, 50, 200, 100, pl) == (50.0, 25.0)
