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
