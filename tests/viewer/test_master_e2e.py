"""The real viewer window on the real guest agent speaking Looking Glass master (``--protocol master``:
LGMP 12 / KVMFR 34): its pattern pixel-exact, the host's stage timings in --stats-json and in
``kvmfr-view --benchmark``'s JSON, and the window-size round trip (the window is resized, the agent's
frames come back at the new size)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from guest_agent.sources.synthetic import HDR_TEST_METADATA
from kvmfr_client.core import testpattern
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.native import lib
from kvmfr_client.core.testpattern import Pattern
from kvmfr_client.viewer import hdr
from tests.viewer.agent import ViewerRun, stop, wait_viewer_watching, watch
from tests.viewer.helpers import REPO, rgb_diff
from tests.viewer.test_keys import find_window, xdotool

SIZE = (320, 240)
TITLE_END = "- Looking Glass master (LGMP 12 / KVMFR 34)"


def start_master_agent(shm, size=SIZE, fps: float = 60, fmt: str = "BGRA", cursor: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "guest_agent", "--protocol", "master", "--shm", str(shm), "--size",
           f"{size[0]}x{size[1]}", "--fps", str(fps), "--format", fmt, "--source", "testpattern",
           *([] if cursor else ["--no-cursor"])]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _pattern_in(snap: np.ndarray, size, ftype: FrameType):
    code = testpattern.read_code(snap)
    assert code is not None, "no test-pattern barcode in the window: the frame did not reach the screen"
    _, serial, t_us = code
    return Pattern(size[0], size[1], ftype), serial, t_us


@pytest.mark.parametrize("fmt", ["BGRA", "RGBA16F"])
def test_master_agent_frames_reach_the_window_with_the_hosts_timings(xserver, tmp_path, shm_path, fmt):
    agent = start_master_agent(shm_path, fmt=fmt)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, f"win:size={SIZE[0]}x{SIZE[1]}")
    finally:
        stop(agent)
    assert stats["state"] == "CONNECTED" and stats["frames_received"] >= 20, stats
    assert stats["protocol"] == {"lgmp": 12, "kvmfr": 34, "name": "master"}, stats["protocol"]
    assert stats["title"].endswith(TITLE_END), stats["title"]
    pattern, serial, t_us = _pattern_in(snap, SIZE, FrameType[fmt])
    assert serial == stats["last_serial"]
    if fmt == "BGRA":
        assert rgb_diff(snap, pattern.render_rgba(serial, t_us)) == 0
    else:
        # HDR frames with the host's SDR white level and HDR metadata: mapped by them, not egl:peakLuminance
        light = hdr.light_for(250.0, lib.KVMFR_SDR_WHITE_LEVEL_DEFAULT, HDR_TEST_METADATA)
        assert light.source == "MaxCLL"
        rows = pattern.render_stored(serial, t_us)
        lin = rows.view("<f2").reshape(SIZE[1], SIZE[0], 4)[..., :3].astype(np.float64)
        assert rgb_diff(snap, hdr.scrgb_to_srgb8(lin, light.peak_nits, True, light.sdr_white_nits)) <= 2
    # the agent times its capture and copy for every frame and publishes them after the copy; a frame the
    # reader takes before they are published comes without (about 1 in 10 here), the others carry them
    assert stats["frames_shown"] >= 20 and stats["host_timed_frames"] >= stats["frames_shown"] // 2, stats
    host = stats["host_stages_ms"]
    assert 0 < host["capture"]["p50"] <= host["capture"]["max"] < 1000, host
    assert 0 < host["copy"]["p50"] <= host["copy"]["max"] < 1000, host


def test_master_cursor_is_drawn_over_the_frame(xserver, tmp_path, shm_path):
    """KVMFR 34 cursor messages (28-byte header, VISIBLE_VALID): shown where and as the agent says."""
    from guest_agent import cursor_animation
    from kvmfr_client.core.cursor import CursorShape, CursorType, composite
    agent = start_master_agent(shm_path, fps=30, cursor=True)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, f"win:size={SIZE[0]}x{SIZE[1]}")
    finally:
        stop(agent)
    cur = stats["cursor"]
    assert stats["protocol"]["kvmfr"] == 34 and cur["visible"] and cur["type"] is not None, stats
    pattern, serial, t_us = _pattern_in(snap, SIZE, FrameType.BGRA)
    expected = pattern.render_rgba(serial, t_us)
    make = {0: cursor_animation.color_arrow, 1: cursor_animation.monochrome,
            2: cursor_animation.masked_color}[cur["type"]]
    ctype, w, h, pitch, hx, hy, data = make()
    shape = CursorShape(ctype, w, h // 2 if ctype == CursorType.MONOCHROME else h, hx, hy, pitch, data)
    assert rgb_diff(snap, composite(expected, shape, cur["x"], cur["y"])) <= 1
    assert rgb_diff(snap, expected) > 0, "the cursor must be visible in the window"


def test_the_window_size_goes_to_the_master_agent_and_its_frames_come_back_resized(xserver, tmp_path, shm_path):
    agent = start_master_agent(shm_path, fps=30)
    try:
        with ViewerRun(xserver, tmp_path, shm_path, 60.0, f"win:size={SIZE[0]}x{SIZE[1]}", "win:position=0,0",
                       flags=("-v",)) as viewer:
            wait_viewer_watching(shm_path)
            wid = find_window(xserver, "Looking Glass master")
            xdotool(xserver, "windowsize", wid, "400", "300")
            time.sleep(2.5)     # the 0.3 s debounce, the agent's next frames, a few of them shown
            stats, snap = viewer.finish()
    finally:
        out = stop(agent)
    # at connect the window's size, after the resize the new one; the agent's frames follow
    assert stats["guest_res_sent"] == [[320, 240], [400, 300]] and stats["guest_res_errors"] == 0, stats
    assert stats["window"] == [400, 300] and stats["frame"] == [400, 300], (stats, out[-2000:])
    pattern, serial, t_us = _pattern_in(snap, (400, 300), FrameType.BGRA)
    assert rgb_diff(snap, pattern.render_rgba(serial, t_us)) == 0


def test_benchmark_json_carries_the_master_hosts_stages(xserver, tmp_path):
    """The benchmark's own agent in master mode (--protocol master): its stage timings reach the JSON and table."""
    out_json = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--benchmark", "--protocol", "master",
                           "--size", f"{SIZE[0]}x{SIZE[1]}", "--fps", "30", "--duration", "2", "--warmup", "0.5",
                           "--json", str(out_json)],
                          cwd=REPO, env=xserver.env(), capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ours = json.loads(out_json.read_text())["viewers"][0]
    assert ours["protocol"]["name"] == "master" and ours["host_stages_note"] is None, ours["protocol"]
    host = ours["host_stages_ms"]
    assert list(host) == ["capture", "post_process", "copy", "ready", "hold", "ready_lead"]
    assert host["copy"]["n"] >= 0.8 * ours["frames"]["shown"] > 0 and host["copy"]["p50"] > 0, host
    assert "host stages (the host's own timers)" in proc.stdout, proc.stdout
