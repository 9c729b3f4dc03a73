"""The benchmark's report with records whose frames carry the host's stage timings (KVMFR 34) and without."""

from __future__ import annotations

import json

from kvmfr_client.latency import report, stages
from kvmfr_client.viewer.stats import TimingRecorder

T0 = 1_000_000_000_000


def _report(tmp_path, host_timed: bool, protocol: dict | None):
    from kvmfr_client.core.session import HostTimings
    rec = TimingRecorder()
    posts, sightings = [], []
    for k in range(1, 41):
        cap = T0 + k * 16_666_667
        timings = (HostTimings(capture_ns=1_000_000 + 10_000 * k, post_process_ns=200_000, copy_ns=3_000_000,
                               ready_ns=100_000, hold_ns=2_000_000 * (k % 2), ready_lead_ns=500_000)
                   if host_timed else None)
        rec.frame_shown(k, cap // 1000, cap + 1_000_000, cap + 1_100_000, cap + 3_000_000, cap + 4_000_000,
                        cap + 4_500_000, cap + 6_000_000, timings)
        posts.append((k, cap // 1000, cap + 500_000, cap + 900_000))
        sightings.append((k, cap // 1000, cap + 6_500_000, cap + 7_000_000))
    rec.write(tmp_path / "timings.json")
    config = {"size": [320, 240], "fps": 60.0, "duration_s": 0.7, "warmup_s": 0.0, "display": ":9", "cores": 2,
              "loadavg_start": [0.1], "loadavg_end": [0.2], "private_agent": True}
    probe = {"window": "kvmfr-view", "sightings": sightings, "cpu_s": 0.1, "polls": 100, "undecoded": 0,
             "errors": 0, "poll_ms_p50": 1.0, "placement": None}
    viewer_stats = {"frames_received": 40, "frames_shown": 40, "superseded": 0, "dropped": 0, "protocol": protocol}
    rep = report.build_report(config, T0, T0 + 10**10, posts, stages.read_viewer_timings(tmp_path / "timings.json"),
                              viewer_stats, "w1", {}, {"w1": probe}, {"viewer": 0.2, "agent": 0.1}, [0.5], 320 * 240 * 4)
    json.dumps(rep)   # the report is written as JSON
    return rep, report.format_table(rep)


def test_host_stages_reach_the_json_and_the_table(tmp_path):
    rep, table = _report(tmp_path, True, {"lgmp": 12, "kvmfr": 34, "name": "master"})
    ours = rep["viewers"][0]
    host = ours["host_stages_ms"]
    assert list(host) == ["capture", "post_process", "copy", "ready", "hold", "ready_lead"]
    assert host["copy"] == {"n": 40, "p50": 3.0, "p95": 3.0, "max": 3.0}
    assert host["hold"]["max"] == 2.0 and host["capture"]["max"] == 1.4
    assert ours["host_stages_note"] is None and ours["protocol"]["kvmfr"] == 34
    assert rep["samples"]["kvmfr-view"][0]["host_ms"]["copy"] == 3.0
    assert "host stages (the host's own timers)" in table
    line = next(x for x in table.splitlines() if x.strip().startswith("copy "))
    assert line.split() == ["copy", "3.00", "3.00", "3.00", "40"], line
    # the viewer's own path is unchanged by them
    assert list(ours["stages_ms"]) == [f"{a}->{b}" for a, b in zip(stages.POINTS, stages.POINTS[1:])]


def test_without_host_timings_the_report_says_so(tmp_path):
    rep, table = _report(tmp_path, False, {"lgmp": 6, "kvmfr": 20, "name": "B7"})
    ours = rep["viewers"][0]
    assert ours["host_stages_ms"] is None
    assert ours["host_stages_note"] == "not given by this host (B7)"
    assert "  host stages: not given by this host (B7)" in table.splitlines()
