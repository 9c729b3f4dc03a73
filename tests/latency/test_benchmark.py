"""``kvmfr-view --benchmark`` end to end under Xvfb: real agent, real viewer window, real probe."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kvmfr_client.latency.stages import POINTS
from tests.support.agent import start_agent
from tests.support.process import stop_process

REPO = Path(__file__).resolve().parents[2]


def _bench(xserver, tmp_path, *extra, timeout=150):
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--benchmark", "--json", str(out_json),
                           "--plot", str(out_png), *extra],
                          cwd=REPO, env=xserver.env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, json.loads(out_json.read_text()), out_png


def test_benchmark_5s_stages_are_ordered_and_add_up(xserver, tmp_path):
    table, report, png = _bench(xserver, tmp_path, "--duration", "5")
    ours = report["viewers"][0]
    assert ours["name"] == "kvmfr-view" and report["clock_trusted"]
    frames = ours["frames"]
    # 60 fps for 5 s; a loaded 2-core machine produces and shows fewer, but far from none.
    assert 100 <= frames["produced"] <= 310, frames
    assert frames["shown"] >= 0.3 * frames["produced"] and frames["on_screen"] >= 0.8 * frames["shown"], frames
    assert frames["dropped"] == frames["produced"] - frames["shown"]

    records = report["samples"]["kvmfr-view"]
    assert len(records) == frames["shown"]
    t0, t1 = report["interval_ns"]
    for r in records:
        assert t0 <= r["capture"] < t1
        times = [r[p] for p in POINTS[:-1]]        # every point our own timers took, in path order
        assert all(t is not None for t in times), r
        assert all(b >= a for a, b in zip(times, times[1:])), r
        assert times[-1] > times[0], r
        if r["on_screen"] is not None:
            # The image reaches the X server inside the swap: never before the draw calls returned.
            assert r["on_screen"] > r["draw_end"], r
            assert r["on_screen_after"] < r["on_screen"]

    stages_ms = ours["stages_ms"]
    assert list(stages_ms) == [f"{a}->{b}" for a, b in zip(POINTS, POINTS[1:])]
    ours_sum = sum(stages_ms[f"{a}->{b}"]["p50"] for a, b in zip(POINTS[:-2], POINTS[1:-1]))
    e2e = ours["e2e_ms"]
    assert e2e["n"] >= 0.8 * frames["shown"]
    assert 0 < ours_sum <= e2e["p50"] <= e2e["p99"] <= e2e["max"], (ours_sum, e2e)
    e2e_samples = [(r["on_screen"] - r["capture"]) / 1e6 for r in records if r["on_screen"]]
    assert e2e["p50"] == pytest.approx(float(np.median(e2e_samples)), abs=0.002)

    cpu = ours["cpu_ms_per_frame"]
    assert cpu["viewer"] > 0 and cpu["agent"] > 0
    assert 0 < report["memcpy_ms"]["p50"] < 100 and report["frame_bytes"] == 1920 * 1080 * 4

    assert "END TO END capture->on_screen" in table and "memcpy of one frame" in table
    assert f"produced {frames['produced']}, shown {frames['shown']}" in table
    # the private agent speaks B7, which has no host stage timings: the report says so instead of zeros
    assert ours["protocol"] == {"lgmp": 6, "kvmfr": 20, "name": "B7"} and ours["host_stages_ms"] is None
    assert "  host stages: not given by this host (B7)" in table.splitlines()

    from PIL import Image
    img = Image.open(png)
    assert img.size == (1400, 980)
    pixels = np.asarray(img.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= 8    # bars in several stage colours, not blank


def test_probe_window_measures_another_viewer_on_the_same_memory(xserver, tmp_path, shm_path):
    """--shm with a producer already running, plus a second viewer window probed by name."""
    size = "640x360"
    agent = start_agent(shm_path, (640, 360), fps=30, cursor=False, env=xserver.env(), log=tmp_path / "agent.log")
    other = None
    try:
        time.sleep(0.5)
        with open(tmp_path / "other.log", "wb") as log:
            other = subprocess.Popen(
                [sys.executable, "-m", "kvmfr_client.cli.view", "--shm", str(shm_path), "--exit-after", "90",
                 f"win:size={size}", "win:position=700,0", "win:borderless=yes", "win:title=other-viewer"],
                cwd=REPO, env=xserver.env(), stdout=log, stderr=subprocess.STDOUT)
        table, report, _ = _bench(xserver, tmp_path, "--duration", "3", "--size", size, "--fps", "30",
                                  "--shm", str(shm_path), "--probe-window", "other-viewer")
    finally:
        if other is not None:
            stop_process(other, timeout=10)
        stop_process(agent, timeout=10)
    assert report["clock_trusted"] and not report["config"]["private_agent"]
    ours, theirs = report["viewers"]
    assert ours["name"] == "kvmfr-view" and theirs["name"].startswith("other-viewer")
    # No agent log with --shm: the capture -> seen stage stands for the agent's write and post.
    assert list(ours["stages_ms"])[0] == "capture->seen"
    assert theirs["probe"]["placement"] == {"x0": 0, "y0": 0, "scale": 1.0}
    assert theirs["frames"]["on_screen"] >= 30 and theirs["e2e_ms"]["n"] == theirs["frames"]["on_screen"]
    assert 0 < theirs["e2e_ms"]["p50"] < 5000
    assert len(report["samples"][theirs["name"]]) == theirs["frames"]["on_screen"]
    assert "other-viewer" in table
