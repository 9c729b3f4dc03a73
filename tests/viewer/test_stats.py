"""The window's ``--stats-json``: the session's errors by kind, as a script or a soak reads them."""

from __future__ import annotations

import time
import tracemalloc

from kvmfr_client.viewer.stats import Series, Stats
from tests.support.agent import running_agent
from tests.support.process import wait_for
from tests.viewer.agent import ViewerRun, wait_viewer_watching, watch


def test_timing_samples_cost_no_memory_per_frame_and_stop_at_their_cap():
    # The 60-minute vandal soak saw the window's memory creep up by a list entry per frame and series;
    # samples now fill an array reserved up front, and stop at the cap.
    series = Series()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(150_000):
            series.add(i % 17 / 10)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes for 150000 samples"
    assert len(series.values) == 100_000
    assert series.p(50) == 0.8 and series.recent_avg() is not None


def test_the_summary_holds_the_error_counts_given_to_it():
    stats = Stats()
    assert stats.summary()["error_counts"] == {}
    counts = {"FrameError": 3, "ShmLost": 1}
    stats.error_counts = counts
    summary = stats.summary()
    assert summary["error_counts"] == {"FrameError": 3, "ShmLost": 1}
    counts["FrameError"] = 99   # a copy: what was written does not change afterwards
    assert summary["error_counts"]["FrameError"] == 3


def test_a_clean_run_counts_no_errors(xserver, tmp_path, shm_path):
    with running_agent(shm_path, (320, 240), fps=30, cursor=False):
        stats, _ = watch(xserver, tmp_path, shm_path, 0.5, "win:size=320x240")
    assert stats["frames_received"] > 0 and stats["error_counts"] == {}, stats


def test_the_file_removed_under_the_window_is_counted(xserver, tmp_path, shm_path):
    """The shared-memory file removed while the window shows frames: the window waits for it, the agent
    creates it again, frames come back, and --stats-json counts the loss once (ShmLost)."""
    with (running_agent(shm_path, (320, 240), fps=30, cursor=False),
          ViewerRun(xserver, tmp_path, shm_path, 60.0, "win:size=320x240", flags=("-v",)) as viewer):
        wait_viewer_watching(shm_path)
        shm_path.unlink()
        wait_for(shm_path.exists, 10, "the agent to create the file again")
        wait_viewer_watching(shm_path)   # the window took up the new session
        time.sleep(0.5)
        stats, _ = viewer.finish()
    assert stats["error_counts"] == {"ShmLost": 1}, stats
    assert stats["state"] == "CONNECTED" and stats["sessions"] >= 2, stats


def _timings(scale: int = 1):
    from kvmfr_client.core.session import HostTimings
    return HostTimings(capture_ns=2_000_000 * scale, post_process_ns=500_000 * scale, copy_ns=3_000_000 * scale,
                       ready_ns=250_000 * scale, hold_ns=4_000_000 * scale, ready_lead_ns=1_000_000 * scale)


def test_host_stage_timings_reach_the_summary_and_one_overlay_line():
    stats = Stats()
    assert stats.summary()["host_stages_ms"] is None and stats.summary()["host_timed_frames"] == 0
    assert not any(line.startswith("host:") for line in stats.overlay_lines())
    now = time.monotonic()
    for k in range(1, 101):
        stats.host_frame_shown(_timings(1 if k < 100 else 3), now)
    summary = stats.summary()
    assert summary["host_timed_frames"] == 100
    host = summary["host_stages_ms"]
    assert list(host) == ["capture", "post_process", "copy", "ready", "hold", "ready_lead"]
    assert host["capture"] == {"p50": 2.0, "p95": 2.0, "max": 6.0}
    assert host["hold"]["p50"] == 4.0 and host["ready"]["max"] == 0.75
    lines = [line for line in stats.overlay_lines() if line.startswith("host:")]
    assert len(lines) == 1 and lines[0].startswith("host: capture 2.") and "hold 4." in lines[0], lines
    # a host that stops giving them (a B7 host after a restart): the line goes after a while
    stats.t_host_timed = now - 10
    assert not any(line.startswith("host:") for line in stats.overlay_lines())


def test_timing_rows_carry_the_host_stages_or_minus_one(tmp_path):
    import json
    from kvmfr_client.latency import stages
    from kvmfr_client.viewer.stats import TimingRecorder
    rec = TimingRecorder()
    rec.frame_shown(1, 10, 100, 110, 120, 130, 140, 150, _timings())
    rec.frame_shown(2, 20, 200, 210, 220, 230, 240, 250)
    rec.write(tmp_path / "t.json")
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["fields"][-6:] == ["host_capture_ns", "host_post_process_ns", "host_copy_ns", "host_ready_ns",
                                   "host_hold_ns", "host_ready_lead_ns"]
    rows = stages.read_viewer_timings(tmp_path / "t.json")
    assert rows[1]["host_copy_ns"] == 3_000_000 and rows[2]["host_copy_ns"] == -1
