"""States are shown in the window in words, never as a black mystery."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest

from kvmfr_client.core.session import recommended_shm_size
from tests.support.agent import running_agent
from tests.support.process import stop_process
from tests.viewer.agent import ViewerRun, wait_viewer_watching, watch
from tests.viewer.helpers import REPO


@contextmanager
def fake_host(mode: str, shm_path, ready: bool = True):
    """tests/viewer/fake_host.py in a subprocess, killed on exit. With ``ready`` it is yielded once it has
    set up the shared memory; the modes that wait for a viewer first are yielded at once."""
    host = subprocess.Popen([sys.executable, "-m", "tests.viewer.fake_host", mode, str(shm_path), "60"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        if ready:
            line = host.stdout.readline()
            assert line.strip() == "ready", f"fake host {mode} did not start (exit {host.poll()})"
        yield host
    finally:
        stop_process(host, sig=signal.SIGKILL)


def drawn_panel(stats: dict, snap: np.ndarray, name: str, lines: list[str]) -> np.ndarray:
    """The window region of overlay panel ``name``, after checking the overlay says it drew exactly
    ``lines`` there and that the region holds text: a dark box with light ink, in rows that match the
    number of lines."""
    drawn = stats["overlay"].get(name)
    assert drawn is not None, f"the overlay drew no {name} panel: {stats['overlay']}"
    assert drawn["text"] == lines, (drawn["text"], lines)
    x, y, w, h = drawn["rect"]
    assert w > 50 and h > 20 and x >= 0 and y >= 0, drawn
    region = snap[y:y + h, x:x + w, :3].astype(int)
    light = region.max(axis=2) >= 180      # white text, or the amber headline of a problem
    assert light.sum() > 20 * len(lines), f"no text drawn in the {name} panel at {drawn['rect']}"
    ink_rows = np.flatnonzero(light.any(axis=1))
    bands = 1 + int((np.diff(ink_rows) > 1).sum())   # runs of rows holding ink: one per text line
    assert bands >= len(lines), f"{name}: {bands} lines of ink for {len(lines)} lines of text"
    return region


def assert_text_centred(stats: dict, snap: np.ndarray) -> np.ndarray:
    region = drawn_panel(stats, snap, "status", stats["status"])
    x, y, w, h = stats["overlay"]["status"]["rect"]
    sh, sw = snap.shape[:2]
    assert abs((x + w / 2) - sw / 2) <= 2 and abs((y + h / 2) - sh / 2) <= 2, (x, y, w, h)
    return region


# (file size to make, or None for no file; the headline; a line the screen must also say)
WAITING_SCREENS = {
    "missing": (None, "The shared-memory file does not exist", "Start the VM"),
    "empty": (0, "The shared-memory file is empty", "Set its size to 32 MiB"),
    "too-small": (4096, "The shared-memory file is too small", "It is 4096 bytes; set it to 32 MiB"),
    "no-host": (32 << 20, "Waiting for the host", "No Looking Glass host is running"),
}


@pytest.mark.parametrize("case", WAITING_SCREENS)
def test_waiting_screens_say_what_is_wrong_in_words(xserver, tmp_path, shm_path, case):
    size, headline, detail = WAITING_SCREENS[case]
    if size is not None:
        with open(shm_path, "wb") as f:
            f.truncate(size)
    stats, snap = ViewerRun(xserver, tmp_path, shm_path, 1.5, "win:size=800x360").wait()
    assert stats["state"] == "WAITING"
    assert stats["status"][0] == headline, stats["status"]
    assert f"Shared memory: {shm_path}" in stats["status"]
    assert any(line.startswith(detail) for line in stats["status"]), stats["status"]
    assert stats["overlay_font"] and stats["overlay_font"].endswith(".ttf"), stats["overlay_font"]
    assert_text_centred(stats, snap)
    # the rest of the screen is black: the panel is all that was drawn
    x, y, w, h = stats["overlay"]["status"]["rect"]
    outside = snap[..., :3].copy()
    outside[y:y + h, x:x + w] = 0
    assert not outside.any()


def test_incompatible_host_says_which_version(xserver, tmp_path, shm_path):
    with fake_host("incompatible", shm_path):
        stats, snap = ViewerRun(xserver, tmp_path, shm_path, 2.5, "win:size=900x360").wait()
    assert stats["state"] == "INCOMPATIBLE", stats
    assert stats["status"][0] == "The host speaks another version"
    assert any("7" in line for line in stats["status"][1:]), stats["status"]
    assert_text_centred(stats, snap)


def test_truncated_frames_ask_for_bigger_shared_memory(xserver, tmp_path, shm_path):
    with fake_host("truncated", shm_path):
        stats, snap = watch(xserver, tmp_path, shm_path, 1.0, "win:size=640x480")
    assert stats["state"] == "CONNECTED" and stats["frames_received"] > 0, stats
    banner = stats["banner"]
    assert banner and "too small" in banner[0] and "100 of 240" in banner[0], banner
    need = recommended_shm_size(320, 240) >> 20      # the B7 sizing rule
    assert f"size to {need} MiB" in banner[1], banner
    drawn_panel(stats, snap, "banner", banner)
    # the frame rows that fitted are shown (green), the rest black
    assert tuple(snap[50, 20, :3]) == (0, 160, 0)


def test_host_lost_is_shown_and_the_last_frame_kept(xserver, tmp_path, shm_path):
    with (running_agent(shm_path, (320, 240), fps=30, cursor=False) as agent,
          ViewerRun(xserver, tmp_path, shm_path, 60.0, "win:size=640x360") as viewer):
        wait_viewer_watching(shm_path)
        time.sleep(1.0)
        stop_process(agent)
        time.sleep(2.0)           # B7 declares a host dead after ~1 s without a heartbeat
        stats, snap = viewer.finish()
    assert stats["state"] in ("LOST", "WAITING"), stats
    assert stats["status"][0] in ("Host lost - reconnecting", "Waiting for the host"), stats["status"]
    assert_text_centred(stats, snap)
    assert stats["frames_received"] > 0


def test_redraws_only_on_change_unless_fps_min(xserver, tmp_path, shm_path):
    idle, _ = ViewerRun(xserver, tmp_path / "a", shm_path, 2.0, "win:size=320x200").wait()
    timed, _ = ViewerRun(xserver, tmp_path / "b", shm_path, 2.0, "win:size=320x200", "win:fpsMin=25").wait()
    assert idle["redraws"] <= 5, f"nothing changes while waiting: {idle['redraws']} redraws"
    assert timed["redraws"] >= 25, f"win:fpsMin=25 for ~1.5 s: {timed['redraws']} redraws"


def test_cursor_moves_redraw_without_reuploading_the_frame(xserver, tmp_path, shm_path):
    from kvmfr_client.core.cursor import CursorShape, CursorType, composite
    from tests.viewer.fake_host import H, W
    # The cursor host says "ready" only once a viewer watches it.
    with fake_host("cursor", shm_path, ready=False) as host, \
            ViewerRun(xserver, tmp_path, shm_path, 60.0, f"win:size={W}x{H}") as viewer:
        assert host.stdout.readline().strip() == "ready"
        assert host.stdout.readline().strip() == "done"
        time.sleep(0.5)
        stats, snap = viewer.finish()
    assert stats["frames_received"] == 1, "cursor moves must not bring frames"
    assert stats["cursor_events"] >= 41
    assert stats["redraws"] >= 20, f"each cursor move (at most 120/s) redraws: {stats['redraws']}"
    assert stats["cursor"]["x"] == 200 and stats["cursor"]["y"] == 100
    img = np.zeros((H, W, 4), np.uint8)
    img[..., 0] = np.arange(W, dtype=np.uint8)[None, :]
    img[..., 2] = 90
    img[..., 3] = 255
    px = np.zeros((8, 8, 4), np.uint8)
    px[:, :4] = (0, 200, 255, 0)
    px[:, 4:] = (255, 255, 255, 255)
    shape = CursorShape(CursorType.MASKED_COLOR, 8, 8, 2, 3, 32, px.tobytes())
    assert np.array_equal(snap[..., :3], composite(img, shape, 200, 100)[..., :3])


def test_frame_size_and_format_changes_with_auto_resize(xserver, tmp_path, shm_path):
    from tests.viewer.fake_host import resize_image
    with fake_host("resize", shm_path, ready=False) as host, \
            ViewerRun(xserver, tmp_path, shm_path, 60.0, "win:size=200x100", "win:autoResize=yes") as viewer:
        assert host.stdout.readline().strip() == "done"
        time.sleep(0.5)
        stats, snap = viewer.finish()
    assert stats["frame"] == [320, 240] and stats["window"] == [320, 240], stats
    assert stats["frames_received"] >= 15, stats     # the size changes lost at most a frame each
    assert np.array_equal(snap[..., :3], resize_image(320, 240)[..., :3])
