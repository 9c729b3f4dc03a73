"""The overlay UI (Dear ImGui, gui.py) in the real window: nothing made while nothing is shown, the stats
panel drawn in the proportional font when it is."""

from __future__ import annotations

from tests.viewer.agent import start_agent, stop, watch
from tests.viewer.test_app import SIZE, expected_frame
from tests.viewer.helpers import rgb_diff
from kvmfr_client.core.formats import FrameType


def test_hidden_overlay_makes_no_imgui_frame_and_leaves_the_picture_exact(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, SIZE, fps=60, cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.0, f"win:size={SIZE[0]}x{SIZE[1]}")
    finally:
        stop(agent)
    assert stats["frames_shown"] >= 20, stats
    # The waiting screen may have been drawn before the first frame; once frames show, no more ImGui
    # frames: at most the ones before the first frame (one per status change).
    assert stats["overlay_frames"] <= 4, stats["overlay_frames"]
    assert stats["overlay"] == {}, stats["overlay"]
    expected, _ = expected_frame(snap, FrameType.BGRA)
    assert rgb_diff(snap, expected) == 0


def test_stats_panel_is_drawn_over_the_picture(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, (640, 360), fps=60, cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, "win:size=640x360", "win:showFPS=yes")
    finally:
        stop(agent)
    drawn = stats["overlay"]["stats"]
    assert drawn["text"] and any(line.startswith("UPS") or "UPS" in line for line in drawn["text"]), drawn
    x, y, w, h = drawn["rect"]
    assert (x, y) == (8, 8) and w > 100 and h > 20 * len(drawn["text"]) * 0.8, drawn
    box = snap[y + 4:y + h - 4, x + 4:x + w - 4, :3]
    assert (box.max(axis=2) >= 200).sum() > 100, "no text in the stats panel"
    assert stats["overlay_frames"] >= 10, "the stats panel redraws as its numbers change"
