"""The picture filter chain, read back from real windows (Xvfb + llvmpipe), each filter against its numpy
reference (tests/viewer/filter_refs.py).

Tolerances (8-bit steps, per RGB channel), also in docs/filters.md:
- night vision, colour-blind modes, CAS, Lanczos downscale: at most 1 (float32 on the GPU vs float64 in
  numpy, one 8-bit rounding per pass); measured: 0 on these pictures, 1 on noise;
- the edge-adaptive upscaler: at most 2, mean below 0.05 (a pixel whose gradient sits on the direction
  threshold may take the other branch); measured: max 1;
- the user shader fixture: at most 2 (llvmpipe's bilinear weights are fixed point); measured: max 1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kvmfr_client.viewer import filters as flt
from tests.viewer import filter_refs as ref
from tests.viewer.helpers import REPO, Script, pattern, rgb_diff

W, H = 64, 48
FIXTURE = REPO / "tests" / "viewer" / "data" / "mini_anime4k.glsl"


def smooth(w: int, h: int, seed: int = 5) -> np.ndarray:
    """A picture with edges and gradients (random noise is all edges; real pictures are not)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 4), np.uint8)
    img[..., 0] = (127 + 120 * np.sin(x / 5.0 + y / 9.0)).astype(np.uint8)
    img[..., 1] = np.where((x // 8 + y // 6) % 2, 220, 30).astype(np.uint8)
    img[..., 2] = np.clip(x * 255 // max(w - 1, 1) + rng.integers(-10, 10, (h, w)), 0, 255).astype(np.uint8)
    img[..., 3] = 255
    return img


def expect8(f: np.ndarray) -> np.ndarray:
    return np.round(ref.to8(f) * 255).astype(np.uint8)


@pytest.fixture
def run_one(xserver, tmp_path):
    """run_one(img, win, chain, **RenderOptions) -> (the window's pixels, the render child's result)."""
    def run(img, win, filters, **options):
        sub = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
        sub.mkdir()
        shots, result = Script(sub, win, filters=filters, **options).frame(img).draw().run(xserver)
        return shots[0], result
    return run


def test_nightvision_gain(run_one):
    img = pattern(W, H, seed=21)
    shot, result = run_one(img, (W, H), [{"filter": "nightvision", "gain": 2}])
    assert result["paths"] == ["filter+blit"], "a 1:1 filtered picture is still blitted"
    assert rgb_diff(shot, expect8(ref.nightvision(ref.rgb(img), 2))) <= 1


@pytest.mark.parametrize("mode", [1, 2, 3])
@pytest.mark.parametrize("simulate", [False, True], ids=["correct", "simulate"])
def test_colorblind_modes(run_one, mode, simulate):
    img = pattern(W, H, seed=22)
    shot, _ = run_one(img, (W, H), [{"filter": "colorblind", "mode": mode, "simulate": simulate}])
    want = expect8(ref.colorblind(ref.rgb(img), mode, simulate))
    assert rgb_diff(shot, want) <= 1
    assert rgb_diff(shot, img) > 20, "the mode must change the picture"


def test_cas_sharpens_like_reference(run_one):
    img = smooth(W, H)
    shot, _ = run_one(img, (W, H), [{"filter": "cas", "sharpness": 0.8}])
    assert rgb_diff(shot, expect8(ref.cas(ref.rgb(img), 0.8))) <= 1
    assert rgb_diff(shot, img) > 5


@pytest.mark.parametrize("frame, win, kernel", [((96, 72), (40, 30), "lanczos"), ((200, 150), (50, 37), "lanczos"),
                                               ((96, 72), (40, 30), "linear"), ((96, 72), (40, 30), "nearest")],
                         ids=["2.4x", "4x", "linear", "nearest"])
def test_downscale_kernels(run_one, frame, win, kernel):
    """eglFilter:downscaleFilter 2 (Lanczos-3, our default), 1 (linear), 0 (nearest)."""
    img = smooth(*frame)
    shot, result = run_one(img, win, [{"filter": "downscale", "kernel": kernel}], keep_aspect=False)
    assert result["paths"] == ["filter+blit"]
    assert rgb_diff(shot, expect8(ref.downscale(ref.rgb(img), *win, kernel))) <= 1


@pytest.mark.parametrize("kernel, size, hoffset, voffset", [("nearest", 2, 0.25, -0.5), ("lanczos", 2, 0.3, 0.0),
                                                            ("linear", 3, 0.0, 0.4)])
def test_downscale_pixel_size_and_offsets(run_one, kernel, size, hoffset, voffset):
    """Looking Glass's eglFilter:downscalePixelSize / HOffset / VOffset: N x N frame pixels become one,
    sampled at the shifted grid, whatever the window's size."""
    img = smooth(96, 72)
    out = (96 // size, 72 // size)
    spec = {"filter": "downscale", "kernel": kernel, "pixel_size": size, "hoffset": hoffset, "voffset": voffset}
    want = expect8(ref.downscale(ref.rgb(img), *out, kernel, hoffset, voffset))
    shot, result = run_one(img, out, [spec], keep_aspect=False)
    assert result["paths"] == ["filter+blit"]
    assert rgb_diff(shot, want) <= 1
    if hoffset or voffset:
        assert rgb_diff(shot, expect8(ref.downscale(ref.rgb(img), *out, kernel))) > 2, "the offsets must move the grid"
    # In a window as large as the frame the pixel-size downscaler still halves it (the picture mode would
    # not run at all); shown back at 2x with nearest scaling, each output pixel is a 2 x 2 block.
    if size == 2 and kernel == "nearest":
        shot, _ = run_one(img, (96, 72), [spec], keep_aspect=False, filter="nearest")
        assert rgb_diff(shot, want.repeat(2, axis=0).repeat(2, axis=1)) <= 1


def test_edge_adaptive_upscale(run_one):
    img = smooth(32, 24)
    shot, result = run_one(img, (80, 60), [{"filter": "easu"}])
    assert result["paths"] == ["filter+blit"]
    want = expect8(ref.easu(ref.rgb(img), 80, 60))
    d = np.abs(shot[..., :3].astype(int) - want[..., :3].astype(int))
    assert d.max() <= 2 and d.mean() < 0.05, f"max {d.max()}, mean {d.mean():.3f}"
    # and it is not plain bilinear: edges stay sharper
    assert rgb_diff(shot, img.repeat(3, 0).repeat(3, 1)[:60, :80]) > 0


def test_chain_runs_once_per_frame_not_per_redraw(xserver, tmp_path):
    """A cursor-only redraw shows the kept output; a new frame runs the chain again."""
    from kvmfr_client.core.cursor import CursorType
    img = pattern(W, H, seed=27)
    s = Script(tmp_path, (W, H), filters=[{"filter": "nightvision", "gain": 1}]).frame(img).draw()
    s.cursor_shape(CursorType.COLOR, 2, 2, 8, bytes([255] * 16)).cursor(5, 5).draw().cursor(9, 9).draw()
    s.frame(pattern(W, H, seed=28)).draw()
    shots, result = s.run(xserver)
    assert result["chain_runs"] == 2, result
    want = expect8(ref.nightvision(ref.rgb(img), 1))
    assert rgb_diff(shots[2][20:, 20:], want[20:, 20:]) <= 1, "the kept output is still the picture"
    assert (shots[2][9:11, 9:11, :3] == 255).all(), "with the cursor moved on top"


def test_no_filter_is_the_plain_path(xserver, tmp_path):
    img = pattern(W, H, seed=29)
    shots, result = Script(tmp_path, (W, H)).frame(img).draw().run(xserver)
    assert result["paths"] == ["blit"] and result["chain_runs"] is None and rgb_diff(shots[0], img) == 0


def test_resamplers_skip_when_not_needed(run_one):
    img = pattern(W, H, seed=23)
    shot, result = run_one(img, (W, H), [{"filter": "downscale"}, {"filter": "easu"}])
    assert result["paths"] == ["filter+blit"] and rgb_diff(shot, img) == 0


def test_chain_order_matters(run_one, tmp_path):
    img = pattern(W, H, seed=24)
    a = [{"filter": "nightvision", "gain": 3}, {"filter": "colorblind", "mode": 3}]
    shot_a, _ = run_one(img, (W, H), a)
    shot_b, _ = run_one(img, (W, H), a[::-1])
    src = ref.rgb(img)
    want_a = expect8(ref.colorblind(ref.to8(ref.nightvision(src, 3)), 3))
    want_b = expect8(ref.nightvision(ref.to8(ref.colorblind(src, 3)), 3))
    assert rgb_diff(shot_a, want_a) <= 1 and rgb_diff(shot_b, want_b) <= 1
    assert rgb_diff(shot_a, shot_b) > 20


def test_filter_with_scaling_and_rotation(run_one):
    img = pattern(W, H, seed=25)
    # night vision, then the usual nearest 2x present, rotated 90 degrees
    shot, result = run_one(img, (2 * H, 2 * W), [{"filter": "nightvision", "gain": 1}],
                           filter="nearest", rotate=90)
    assert result["paths"] == ["filter+shader"]
    want = expect8(ref.nightvision(ref.rgb(img), 1))
    assert rgb_diff(shot, np.rot90(want.repeat(2, 0).repeat(2, 1), k=-1)) <= 1


def _fixture_ref(img8: np.ndarray) -> np.ndarray:
    src = ref.rgb(img8)
    h, w, _ = src.shape
    lum = src @ np.array([0.299, 0.587, 0.114])

    def sh(a, dx, dy):
        hh, ww = a.shape[:2]
        return a[np.clip(np.arange(hh) + dy, 0, hh - 1)][:, np.clip(np.arange(ww) + dx, 0, ww - 1)]
    grad = np.stack([sh(lum, 1, 0) - sh(lum, -1, 0), sh(lum, 0, 1) - sh(lum, 0, -1), np.zeros((h, w))], -1)
    py, px = np.mgrid[0:2 * h, 0:2 * w]
    pos_x, pos_y = (px + 0.5) / (2 * w), (py + 0.5) / (2 * h)
    c = ref.bilinear(src, pos_x, pos_y)
    g = ref.bilinear(grad, pos_x, pos_y)
    up = np.clip(c + 0.25 * (g[..., :1] + g[..., 1:2]), 0, 1)
    return 0.25 * sh(up, -1, 0) + 0.5 * up + 0.25 * sh(up, 1, 0)


def test_user_shader_from_file(run_one):
    img = smooth(32, 24)
    shot, result = run_one(img, (64, 48), [{"filter": "glsl", "path": str(FIXTURE)}])
    assert result["filter_errors"] == []
    assert result["paths"] == ["filter+shader"], "16-bit float output is drawn, not blitted"
    assert rgb_diff(shot, expect8(_fixture_ref(img))) <= 2


ANIME4K_LIKE = REPO / "tests" / "viewer" / "data" / "anime4k_like.glsl"


def _anime4k_like_ref(img8: np.ndarray) -> np.ndarray:
    """tests/viewer/data/anime4k_like.glsl in numpy, its weights read from the file: two 3x3 convolutions
    (the second over a CReLU) kept in 16-bit float, a 2x depth-to-space added to the bilinear 2x picture,
    a pass skipped by its //!WHEN, and a sharpen through HOOKED_pt."""
    import re
    text = ANIME4K_LIKE.read_text()
    passes = text.split("//!DESC")[1:]
    num = r"(-?[0-9.]+)"
    tap = re.compile(rf"mat4\(([^)]*)\) \* go_(\d)\({num}, {num}\)")
    bias = re.compile(r"result \+= vec4\(([^)]*)\);")
    src = np.concatenate([ref.rgb(img8), np.ones(img8.shape[:2] + (1,))], axis=-1)
    h, w, _ = src.shape

    def sh(a, dx, dy):
        return a[np.clip(np.arange(h) + dy, 0, h - 1)][:, np.clip(np.arange(w) + dx, 0, w - 1)]

    def conv(block, inputs):
        out = np.zeros((h, w, 4))
        for m, which, dx, dy in tap.findall(block):
            weights = np.array([float(v) for v in m.split(",")]).reshape(4, 4).T   # GLSL mat4: columns
            out += sh(inputs[int(which)], int(float(dx)), int(float(dy))) @ weights.T
        out += np.array([float(v) for v in bias.search(block).group(1).split(",")])
        return out.astype(np.float16).astype(np.float64)     # the saved texture is 16-bit float

    f1 = conv(passes[0], [src])
    f2 = conv(passes[1], [np.maximum(f1, 0), np.maximum(-f1, 0)])
    py, px = np.mgrid[0:2 * h, 0:2 * w]
    up = ref.bilinear(src, (px + 0.5) / (2 * w), (py + 0.5) / (2 * h))
    residual = f2[py // 2, px // 2, (py % 2) * 2 + px % 2]
    out3 = (up[..., :3] + 0.2 * residual[..., None]).astype(np.float16).astype(np.float64)

    def sh2(a, dx, dy):
        hh, ww = a.shape[:2]
        return a[np.clip(np.arange(hh) + dy, 0, hh - 1)][:, np.clip(np.arange(ww) + dx, 0, ww - 1)]
    blur = 0.25 * (sh2(out3, 1, 0) + sh2(out3, -1, 0) + sh2(out3, 0, 1) + sh2(out3, 0, -1))
    return np.clip(out3 + 0.5 * (out3 - blur), 0, 1)


def test_anime4k_style_shader_matches_numpy(run_one):
    """The constructs Anime4K's files use (see the fixture's header), in one multi-pass file, against numpy;
    its //!WHEN over OUTPUT runs the upscaling passes at 2x and skips the one asking for 3x."""
    img = smooth(32, 24)
    shot, result = run_one(img, (64, 48), [{"filter": "glsl", "path": str(ANIME4K_LIKE)}])
    assert result["filter_errors"] == [] and result["paths"] == ["filter+shader"], result
    want = expect8(_anime4k_like_ref(img))
    d = np.abs(shot[..., :3].astype(int) - want[..., :3].astype(int))
    assert d.max() <= 2, f"max {d.max()}, mean {d.mean():.3f}"
    assert (shot[..., 0] > 200).mean() < 0.5, "the pass whose //!WHEN asks for 3x must not run"


@pytest.mark.parametrize("text,says", [
    ("//!HOOK MAIN\n//!BIND HOOKED\nvec4 hook() { return HOOKED_tex(HOOKED_pos) }\n", "does not compile"),
    ("//!HOOK CHROMA\nvec4 hook() { return vec4(1.0); }\n", "only the picture's hooks"),
    ("//!HOOK MAIN\n//!BIND NOPE\nvec4 hook() { return vec4(1.0); }\n", "no earlier pass saves NOPE"),
    ("//!HOOK MAIN\n//!TEXTURE LUT\nvec4 hook() { return vec4(1.0); }\n", "not supported"),
    ("//!HOOK MAIN\n//!BIND HOOKED\n//!WIDTH HOOKED.w 0 /\nvec4 hook() { return vec4(1.0); }\n", "division by zero"),
], ids=["compile", "hook", "bind", "texture", "width"])
def test_bad_user_shader_is_one_line_and_left_out(run_one, tmp_path, text, says):
    bad = tmp_path / "bad.glsl"
    bad.write_text(text)
    img = pattern(W, H, seed=26)
    chain = [{"filter": "glsl", "path": str(bad)}, {"filter": "nightvision", "gain": 1}]
    shot, result = run_one(img, (W, H), chain)
    errors = result["filter_errors"]
    assert len(errors) == 1 and "\n" not in errors[0] and says in errors[0], errors
    assert errors[0].startswith(f"kvmfr-view: eglFilter:glslPath {bad}: ") and "going on without it" in errors[0]
    assert rgb_diff(shot, expect8(ref.nightvision(ref.rgb(img), 1))) <= 1, "the rest of the chain still runs"


def test_preset_saved_and_restored(run_one, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    chain = [{"filter": "cas", "sharpness": 0.3}, {"filter": "colorblind", "mode": 2, "simulate": True}]
    path = flt.save_preset("sharp cb", chain)
    assert path == tmp_path / "cfg" / "kvmfr-client" / "presets" / "sharp cb.json"
    assert json.loads(path.read_text())["passes"] == chain
    from kvmfr_client.config import load
    cfg = load(["egl:preset=sharp cb", "egl:nvGain=1"], user_file=False)
    restored = flt.from_config(cfg)
    assert restored == chain, "a preset replaces the chain the options build"
    img = smooth(W, H)
    shot, _ = run_one(img, (W, H), restored)
    want = expect8(ref.colorblind(ref.to8(ref.cas(ref.rgb(img), 0.3)), 2, True))
    assert rgb_diff(shot, want) <= 1


def test_options_build_the_chain():
    from kvmfr_client.config import load
    cfg = load(["eglFilter:ffxCAS=yes", "eglFilter:ffxCASSharpness=0.7", "egl:nvGain=2", "egl:nvGainMax=4",
                "egl:cbMode=1", "eglFilter:downscale=yes", "eglFilter:order=ffxCAS,downscale"], user_file=False)
    assert flt.from_config(cfg) == [{"filter": "cas", "sharpness": 0.7}, {"filter": "downscale", "kernel": "lanczos"},
                                    {"filter": "nightvision", "gain": 2.0},
                                    {"filter": "colorblind", "mode": 1, "simulate": False}]
    assert flt.from_config(load([], user_file=False)) == [], "no filter by default: the plain 1:1 path"
    fsr = flt.from_config(load(["eglFilter:ffxFSR=yes", "eglFilter:ffxFSRSharpness=0.4"], user_file=False))
    assert fsr == [{"filter": "easu"}, {"filter": "cas", "sharpness": 0.4}]
    # Looking Glass's eglFilter:downscaleFilter numbers: 0 nearest, 1 linear, 2 Lanczos
    for number, kernel in (("0", "nearest"), ("1", "linear"), ("2", "lanczos")):
        cfg = load(["eglFilter:downscale=yes", f"eglFilter:downscaleFilter={number}"], user_file=False)
        assert flt.from_config(cfg) == [{"filter": "downscale", "kernel": kernel}]
    cfg = load(["eglFilter:downscale=yes", "eglFilter:downscalePixelSize=2", "eglFilter:downscaleHOffset=0.25",
                "eglFilter:downscaleVOffset=-0.5"], user_file=False)
    assert flt.from_config(cfg) == [{"filter": "downscale", "kernel": "lanczos", "hoffset": 0.25, "voffset": -0.5,
                                     "pixel_size": 2.0}]
