"""The upload paths (egl:upload): pixel buffers show exactly what the direct path shows, for whole frames and
for damage rectangles; the automatic choice picks a path, says why, and the window reports it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kvmfr_client.core.formats import FrameType, encode
from kvmfr_client.core.testpattern import PatternKind
from kvmfr_client.viewer import upload
from tests.viewer.agent import start_agent, stop, watch
from tests.viewer.helpers import REPO, pattern, rgb_diff
from tests.viewer.test_app import SIZE, expected_frame

W, H = 203, 131


def _sequence(n: int = 7):
    """BGRA rows of frames that each change a few rectangles of the one before (the first and the fifth
    whole), with those rectangles (x, y, w, h; zero rows = whole frame)."""
    rng = np.random.default_rng(5)
    img = pattern(W, H, seed=3)
    rows, damage = [], np.zeros((n, 8, 4), np.int32)
    for i in range(n):
        if i:
            img = img.copy()
            for j in range(3):
                w, h = int(rng.integers(1, 70)), int(rng.integers(1, 50))
                x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
                img[y:y + h, x:x + w, :3] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                damage[i, j] = (x, y, w, h)
        if i == 4:
            damage[i] = 0     # a whole frame between damage frames
        rows.append(encode(img, FrameType.BGRA))
    return np.stack(rows), damage


@pytest.fixture(scope="module")
def upload_shots(xserver, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("upload")
    rows, damage = _sequence()
    np.savez(tmp / "frames.npz", rows=rows, damage=damage)
    proc = subprocess.run([sys.executable, "-m", "tests.viewer.upload_child", str(tmp / "frames.npz"),
                           str(tmp / "shots.npz")], cwd=REPO, env=xserver.env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"upload child failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    shots = np.load(tmp / "shots.npz")
    return rows, damage, {k: shots[k] for k in shots.files}, json.loads((tmp / "result.json").read_text())


@pytest.mark.parametrize("path", ["pbo-persistent", "pbo-classic"])
def test_pixel_buffer_paths_show_every_frame_exactly(upload_shots, path):
    rows, damage, shots, result = upload_shots
    assert result["paths"][path]["reported"].startswith("pbo"), result
    kinds = result["paths"][path]["kinds"]
    assert kinds == ["full" if not damage[i].any() or i == 0 else "damage" for i in range(len(rows))], kinds
    for i, shot in enumerate(shots[path.replace("-", "_")]):
        expected = rows[i].reshape(H, W, 4)[..., [2, 1, 0, 3]]
        assert rgb_diff(shot, expected) == 0, f"{path}: frame {i} ({kinds[i]}) differs from what was sent"
        assert np.array_equal(shot, shots["direct"][i]), f"{path}: frame {i} differs from the direct path"


def test_automatic_choice_and_its_reason(upload_shots):
    *_, result = upload_shots
    # This machine renders with Mesa llvmpipe: measured there, the direct path is faster (docs/viewer.md).
    assert result["auto"] == "direct" and "llvmpipe" in result["auto_reason"], result
    assert upload.choose("auto", "NVIDIA GeForce RTX 3060/PCIe/SSE2", (4, 6), set()) == (
        "pbo-persistent", "auto: a GPU renderer")
    assert upload.choose("auto", "AMD Radeon (radeonsi)", (3, 3), set())[0] == "pbo-classic"
    assert upload.choose("auto", "AMD Radeon (radeonsi)", (3, 3), {"GL_ARB_buffer_storage"})[0] == "pbo-persistent"
    assert upload.choose("direct", "NVIDIA", (4, 6), set())[0] == "direct"
    assert upload.choose("pbo", "llvmpipe (LLVM 15.0.6, 256 bits)", (4, 5), set())[0] == "pbo-persistent"


def test_viewer_on_pixel_buffers_shows_the_agents_damage_frames_exactly(xserver, tmp_path, shm_path):
    """The real agent's damage source through the window's frames thread into the pixel-buffer ring: the
    stats report the path, damage frames went up as rectangles, and the picture is exact."""
    agent = start_agent(shm_path, SIZE, fps=60, source="damage", cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, f"win:size={SIZE[0]}x{SIZE[1]}", "egl:upload=pbo")
    finally:
        stop(agent)
    assert stats["upload_path"] == "pbo-persistent" and stats["upload_reason"] == "egl:upload=pbo", stats
    assert stats["frames_shown"] >= 20 and stats["damage_uploads"] >= stats["frames_received"] // 2, stats
    expected, _ = expected_frame(snap, FrameType.BGRA, PatternKind.DAMAGE)
    assert rgb_diff(snap, expected) == 0


def test_prerendered_source_sends_whole_frames_that_are_each_exact(shm_path):
    """``--source prerendered`` (the 2160p60 feeder): every frame reaches a reader whole (no damage
    rectangles, so a viewer copies and uploads every pixel) and exact in each of the two frame slots, though
    the agent rewrote only the barcode and the square there; a resize starts over with whole writes."""
    import time

    import kvmfr_client
    from guest_agent.producer import Producer
    from guest_agent.sources.synthetic import PatternSource
    from kvmfr_client.core.testpattern import Pattern

    src = PatternSource(320, 240, FrameType.BGRA, PatternKind.MOVING, prerendered=True)
    assert src.capture_name == "testpattern-prerendered"
    with Producer(shm_path, create_size=8 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        time.sleep(0.05)
        for serial in range(1, 9):
            if serial == 6:
                src.resize(256, 200)
            t_us = src.post(prod, serial)
            f = s.next_frame(timeout=1, allow_damage=True, out=None)
            assert f is not None and f.serial == serial and f.damage == () and not f.damage_only
            want = Pattern(f.width, f.height, FrameType.BGRA, PatternKind.DAMAGE).render_stored(serial, t_us)
            assert np.array_equal(f.pixels, want), f"frame {serial} ({f.width}x{f.height}) is not the pattern"


def test_a_fence_not_signalled_keeps_its_buffer_and_the_frame_goes_to_the_threads_own(monkeypatch):
    from types import SimpleNamespace

    from kvmfr_client.viewer import upload
    answer = [0x911B]    # GL_TIMEOUT_EXPIRED
    deleted: list[object] = []
    fake = SimpleNamespace(GL_ALREADY_SIGNALED=0x911A, GL_TIMEOUT_EXPIRED=0x911B, GL_CONDITION_SATISFIED=0x911C,
                           GL_WAIT_FAILED=0x911D, GL_SYNC_FLUSH_COMMANDS_BIT=1,
                           glClientWaitSync=lambda fence, flags, ns: answer[0], glDeleteSync=deleted.append)
    monkeypatch.setattr(upload, "GL", fake)
    buffers = upload.PixelBuffers(persistent=True)
    buffers.size = 64
    buffers.slots = [upload.Slot(i, 64, address=1, fence=f"fence{i}", flat=np.zeros(64, np.uint8)) for i in range(3)]
    for status in (0x911B, 0x911D):           # timed out, wait failed: no buffer, the fence kept
        answer[0] = status
        assert buffers.handout(4, 16) is None
        assert buffers.slots[0].fence == "fence0" and not deleted and buffers._next == 0
    answer[0] = 0x911C                        # signalled: the buffer is handed out, its fence deleted
    slot, rows = buffers.handout(4, 16)
    assert slot is buffers.slots[0] and rows.shape == (4, 16) and deleted == ["fence0"] and slot.fence is None


def test_an_upload_that_fails_still_unbinds_its_pixel_buffer(monkeypatch):
    from types import SimpleNamespace

    from OpenGL import GL as real

    from kvmfr_client.viewer import hdr, renderer
    calls: list[str] = []
    unpack: dict[int, int] = {}      # the unpack state the fake GL holds (GL's default: every value 0)

    def tex_sub_image(*args):
        raise RuntimeError("GL_INVALID_OPERATION")

    def store(pname, value):
        calls.append(f"store {value}")
        unpack[pname] = value
    fake = SimpleNamespace(**{name: getattr(real, name) for name in dir(real) if name.startswith("GL_")})
    fake.glBindTexture = lambda *a: None
    fake.glPixelStorei = store
    fake.glTexSubImage2D = tex_sub_image
    monkeypatch.setattr(renderer, "GL", fake)
    r = renderer.Renderer.__new__(renderer.Renderer)
    r.ftype, r.width, r.height, r.has_frame, r._src_tex = FrameType.BGRA, 4, 4, True, 1
    r.options, r.light = SimpleNamespace(peak_nits=100.0), hdr.Light(100.0)
    r.pixel_buffers = SimpleNamespace(bind=lambda slot: calls.append("bind") or 0,
                                      uploaded=lambda slot: calls.append("uploaded"))
    # a whole frame, and a damage rectangle away from (0, 0) (which sets the unpack skips)
    for damage in (None, [(1, 2, 2, 2)]):
        calls.clear()
        with pytest.raises(RuntimeError, match="INVALID_OPERATION"):
            r.upload(FrameType.BGRA, 4, 4, np.zeros((4, 16), np.uint8), damage=damage, slot="slot")
        assert "bind" in calls and calls[-1] == "uploaded", calls
        assert unpack and set(unpack.values()) == {0}, unpack   # later uploads read with the default state
    assert unpack.keys() == {real.GL_UNPACK_ROW_LENGTH, real.GL_UNPACK_SKIP_PIXELS, real.GL_UNPACK_SKIP_ROWS}
