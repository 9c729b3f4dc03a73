"""The window over a KVMFR 34 (Looking Glass master) host: frames built in a child process and handed to the
real viewer through a fake session (tests/viewer/fake_session_child.py), so the viewer's side of what
KVMFR 34 adds is checked without the producer: the host's stage timings in --stats-json and
--timings-json, the protocol in the title and stats, win:setGuestRes at connect and after a resize (the
guest then sends frames at the new size), and the HDR facts in the mapping."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from kvmfr_client.viewer import hdr
from tests.viewer.fake_session_child import colour_for
from tests.viewer.helpers import REPO
from tests.viewer.test_keys import find_window, xdotool


def _run(xserver, tmp_path, seconds: float, *options: str, resize_to=None, hdr_frames: bool = False):
    out, stats_path, snap = tmp_path / "child.json", tmp_path / "stats.json", tmp_path / "snap.npy"
    timings = tmp_path / "timings.json"
    cmd = [sys.executable, "-m", "tests.viewer.fake_session_child", str(out), *(["--hdr"] if hdr_frames else []),
           "--exit-after", str(seconds), "--stats-json", str(stats_path), "--snapshot", str(snap),
           "--timings-json", str(timings), "win:position=0,0", *options]
    proc = subprocess.Popen(cmd, cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path / "xdg")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    resized_at = None
    try:
        if resize_to is not None:
            wid = find_window(xserver, "^kvmfr-view - Windows")   # connected
            time.sleep(0.8)
            xdotool(xserver, "windowsize", wid, str(resize_to[0]), str(resize_to[1]))
            resized_at = time.monotonic()
        output, _ = proc.communicate(timeout=seconds + 40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    return (json.loads(out.read_text()), json.loads(stats_path.read_text()), np.load(snap),
            json.loads(timings.read_text()), resized_at)


def test_host_timings_protocol_and_the_window_size_round_trip(xserver, tmp_path):
    child, stats, snap, timings, _ = _run(xserver, tmp_path, 5.0, "win:size=320x240", resize_to=(400, 300))
    # the title and the stats name the protocol
    assert stats["title"].endswith("- Looking Glass master (LGMP 12 / KVMFR 34)"), stats["title"]
    assert stats["protocol"] == {"lgmp": 12, "kvmfr": 34, "name": "master"}
    # win:setGuestRes: the window's size at connect, then the new size once after the resize settled
    sizes = [tuple(s[:2]) for s in child["set_window_size"]]
    assert sizes == [(320, 240), (400, 300)], child
    assert stats["guest_res_sent"] == [[320, 240], [400, 300]] and stats["guest_res_errors"] == 0
    # ... and the guest's frames at the new size fill the window, pixel-exact
    assert stats["frame"] == [400, 300] and stats["window"] == [400, 300], stats
    assert child["frames"]["400x300"] > 10
    assert (snap[..., :3] == colour_for((400, 300))).all()
    # the host's stage timings, per shown frame and summarised
    assert stats["host_timed_frames"] == stats["frames_shown"] > 50
    host = stats["host_stages_ms"]
    assert host["capture"] == {"p50": 1.25, "p95": 1.25, "max": 1.25}
    assert host["hold"]["p50"] == 4.0 and host["ready_lead"]["max"] == 0.5
    fields = timings["fields"]
    row = dict(zip(fields, timings["frames"][-1]))
    assert row["host_copy_ns"] == 2_500_000 and row["host_post_process_ns"] == 250_000


def test_the_option_off_sends_nothing(xserver, tmp_path):
    child, stats, _, _, _ = _run(xserver, tmp_path, 2.0, "win:size=320x240", "win:setGuestRes=no")
    assert child["set_window_size"] == [] and stats["frame"] == [320, 240]


def test_hdr_frames_are_mapped_with_their_own_sdr_white_and_maxcll(xserver, tmp_path):
    _, stats, snap, _, _ = _run(xserver, tmp_path, 1.5, "win:size=64x48", "win:setGuestRes=no", hdr_frames=True)
    assert stats["frame"] == [64, 48]
    # scRGB 2.0 = 160 nits, with the frame's SDR white 203 nits and MaxCLL 1000 (not egl:peakLuminance=250)
    expected = hdr.scrgb_to_srgb8(np.full((1, 1, 3), 2.0), 1000.0, True, 203.0)[0, 0]
    assert np.abs(snap[..., :3].astype(int) - expected.astype(int)).max() <= 2, (snap[0, 0], expected)
    assert np.abs(expected.astype(int) - hdr.scrgb_to_srgb8(np.full((1, 1, 3), 2.0), 250.0, True)[0, 0]).max() > 5
