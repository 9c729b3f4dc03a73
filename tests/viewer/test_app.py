"""The real viewer window on the real guest agent: every frame shown, formats, damage, cursor, restart."""

from __future__ import annotations

import time

import numpy as np
import pytest

from guest_agent import cursor_animation
from kvmfr_client.core import testpattern
from kvmfr_client.core.cursor import CursorShape, CursorType, composite
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.testpattern import Pattern, PatternKind
from kvmfr_client.viewer import hdr
from tests.viewer.agent import ViewerRun, start_agent, stop, wait_viewer_watching, watch
from tests.viewer.helpers import rgb_diff

SIZE = (320, 240)


def expected_frame(snapshot: np.ndarray, ftype: FrameType, kind=PatternKind.MOVING) -> tuple[np.ndarray, int]:
    code = testpattern.read_code(snapshot)
    assert code is not None, "no test-pattern barcode in the window: the frame did not reach the screen"
    _, serial, t_us = code
    return Pattern(SIZE[0], SIZE[1], ftype, kind).render_rgba(serial, t_us), serial


@pytest.mark.parametrize("fmt", ["BGRA", "RGBA", "RGBA10", "RGBA16F", "BGR_32", "RGB_24"])
def test_agent_frames_reach_the_window_exactly(xserver, tmp_path, shm_path, fmt):
    agent = start_agent(shm_path, SIZE, fps=60, fmt=fmt, cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, f"win:size={SIZE[0]}x{SIZE[1]}")
    finally:
        stop(agent)
    assert stats["state"] == "CONNECTED" and stats["frames_received"] >= 20, stats
    assert stats["title"].startswith("kvmfr-view - ") and "(host kvmfr-agent 0.1)" in stats["title"], stats["title"]
    # every frame received was shown (a redraw happened after each upload)
    assert stats["frames_shown"] >= stats["frames_received"] - 1
    expected, serial = expected_frame(snap, FrameType[fmt])
    assert serial == stats["last_serial"], "the window must show the newest frame"
    if fmt == "RGBA16F":
        # The agent flags RGBA16F frames HDR (as Windows hosts do): they are tone-mapped with the
        # default egl:peakLuminance; compare with the numpy mirror of the shader (float16 rounding: 2).
        _, _, t_us = testpattern.read_code(snap)
        rows = Pattern(SIZE[0], SIZE[1], FrameType.RGBA16F).render_stored(serial, t_us)
        lin = rows.view("<f2").reshape(SIZE[1], SIZE[0], 4)[..., :3].astype(np.float64)
        assert rgb_diff(snap, hdr.scrgb_to_srgb8(lin, 250.0, True)) <= 2
    else:
        assert rgb_diff(snap, expected) == 0
    assert stats["paths"].get("blit", 0) >= stats["frames_shown"], "1:1 frames must be presented by a blit"
    assert stats["latency_samples"] >= 20 and 0 < stats["latency_ms_p50"] < 1000
    assert stats["upload_ms_p50"] is not None and stats["present_ms_p50"] is not None


def test_damage_source_uploads_rects_and_shows_the_same_picture(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, SIZE, fps=60, source="damage", cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, f"win:size={SIZE[0]}x{SIZE[1]}")
    finally:
        stop(agent)
    assert stats["damage_uploads"] >= stats["frames_received"] // 2, stats
    expected, _ = expected_frame(snap, FrameType.BGRA, PatternKind.DAMAGE)
    assert rgb_diff(snap, expected) == 0


def test_agent_cursor_is_drawn_over_the_frame(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, SIZE, fps=30, cursor=True)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, f"win:size={SIZE[0]}x{SIZE[1]}")
    finally:
        stop(agent)
    cur = stats["cursor"]
    assert cur["visible"] and cur["type"] is not None, stats
    expected, _ = expected_frame(snap, FrameType.BGRA)
    make = {0: cursor_animation.color_arrow, 1: cursor_animation.monochrome,
            2: cursor_animation.masked_color}[cur["type"]]
    ctype, w, h, pitch, hx, hy, data = make()
    vis_h = h // 2 if ctype == CursorType.MONOCHROME else h
    shape = CursorShape(ctype, w, vis_h, hx, hy, pitch, data)
    want = composite(expected, shape, cur["x"], cur["y"])
    assert rgb_diff(snap, want) <= 1
    assert rgb_diff(snap, expected) > 0, "the cursor must be visible in the window"


def test_scaled_window_uses_shader_path_and_letterboxes(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, SIZE, fps=60, cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, "win:size=800x480", "win:filter=nearest")
    finally:
        stop(agent)
    # 320x240 into 800x480: 2x -> 640x480 centred, 80-pixel bars
    assert snap.shape[:2] == (480, 800)
    assert stats["paths"].get("shader", 0) >= stats["frames_shown"]
    assert (snap[:, :80, :3] == 0).all() and (snap[:, 720:, :3] == 0).all()
    code = testpattern.read_code(snap[:, 80:720], scale=2.0)
    assert code is not None
    expected = Pattern(SIZE[0], SIZE[1], FrameType.BGRA).render_rgba(code[1], code[2])
    assert rgb_diff(snap[:, 80:720], np.kron(expected, np.ones((2, 2, 1), np.uint8))) == 0


def test_window_survives_producer_restart_and_shows_new_session(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, SIZE, fps=30, cursor=False)
    # win:alerts=no: the picture is compared exactly, so no "host restarted" alert over it (test_overlay.py)
    viewer = ViewerRun(xserver, tmp_path, shm_path, 60.0, f"win:size={SIZE[0]}x{SIZE[1]}", "win:alerts=no")
    try:
        wait_viewer_watching(shm_path)
        time.sleep(1.0)
        stop(agent)                       # the host goes away ...
        time.sleep(1.0)
        t_restart_us = testpattern.now_us()
        agent = start_agent(shm_path, SIZE, fps=30, cursor=False)   # ... and a new session starts
        wait_viewer_watching(shm_path)    # the viewer found the new session by itself
        time.sleep(1.0)
        stats, snap = viewer.finish()
    finally:
        stop(agent)
        viewer.proc.kill()
    assert stats["state"] == "CONNECTED", stats
    assert stats["sessions"] == 2, f"expected a reconnect to the new session: {stats}"
    code = testpattern.read_code(snap)
    assert code is not None and code[2] > t_restart_us, "the window must show frames of the new session"
    expected = Pattern(SIZE[0], SIZE[1], FrameType.BGRA).render_rgba(code[1], code[2])
    assert rgb_diff(snap, expected) == 0


def test_filter_options_reach_the_window(xserver, tmp_path, shm_path):
    """egl:nvGain through kvmfr-view's own configuration: the window shows the frame with the gain applied
    (the test pattern's barcode is black and white, which the gain keeps), still by a blit."""
    from tests.viewer import filter_refs as ref
    agent = start_agent(shm_path, SIZE, fps=60, fmt="BGRA", cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, f"win:size={SIZE[0]}x{SIZE[1]}",
                            "egl:nvGainMax=3", "egl:nvGain=2")
    finally:
        stop(agent)
    expected, serial = expected_frame(snap, FrameType.BGRA)
    want = np.round(ref.to8(ref.nightvision(ref.rgb(expected), 2)) * 255).astype(np.uint8)
    assert rgb_diff(snap, want) <= 1
    assert stats["paths"].get("filter+blit", 0) >= stats["frames_shown"] > 0, stats["paths"]


def test_finish_cleans_up_when_writing_the_stats_fails_and_skips_outputs_of_a_viewer_never_started():
    import threading
    from types import SimpleNamespace

    from kvmfr_client.viewer.app import _Viewer
    done: list[str] = []

    def part(name):
        return SimpleNamespace(stop=lambda: done.append(f"{name}.stop"), close=lambda: done.append(f"{name}.close"),
                               destroy=lambda: done.append(f"{name}.destroy"), thread=threading.main_thread())

    def viewer(started: bool):
        v = _Viewer.__new__(_Viewer)
        v.args = SimpleNamespace(snapshot=None, stats_json="/nonexistent/dir/s.json", timings_json=None)
        v.frames, v.cursor, v.session, v.gui = part("frames"), part("cursor"), part("session"), part("gui")
        v.renderer, v.inhibitor, v.win = part("renderer"), part("inhibitor"), part("win")
        v.timings, v.overlay_mode = None, False
        if started:
            v._started = True

        def write(path, thread_cpu):
            done.append("stats")
            raise OSError("no such folder")
        v._write_stats_json = write
        return v

    with pytest.raises(OSError):
        viewer(True)._finish()
    assert done == ["frames.stop", "cursor.stop", "stats", "session.close", "gui.close", "renderer.close",
                    "inhibitor.close", "win.destroy"]
    done.clear()
    viewer(False)._finish()     # never started (MultiViewer could not make a later display): no stats
    assert done == ["frames.stop", "cursor.stop", "session.close", "gui.close", "renderer.close",
                    "inhibitor.close", "win.destroy"]
