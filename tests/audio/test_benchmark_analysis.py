"""The audio benchmark's attribution of underruns to the machine (benchmarks/audio.py): its figures
in the closing notes rest on these functions, so they are checked on hand-made probe logs."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("audio_benchmark", Path(__file__).parents[2] / "benchmarks" / "audio.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_stalls_a_moment_apart_are_one_span():
    # (when the probe woke, ms late): 12 ms late at t=10.013, then 1 ms of running, then 8 ms late again
    spans = bench.stall_spans([(10.013, 12.0), (10.023, 8.0), (11.0, 6.0)])
    assert len(spans) == 2
    assert spans[0] == (pytest.approx(10.0), 10.023)
    assert spans[1] == (pytest.approx(10.993), 11.0)


def test_whole_machine_pause_is_where_every_cpu_stalled():
    cpu0 = [(10.020, 19.0)]  # stopped 10.000 - 10.020
    cpu1 = [(10.025, 14.0), (20.0, 30.0)]  # stopped 10.010 - 10.025, and alone at 19.969 - 20.0
    stalls, pauses = bench.machine_stalls([cpu0, cpu1])
    assert sorted(round(ms, 3) for _, ms in stalls) == [15.0, 20.0, 31.0]
    assert [(when, round(ms, 3)) for when, ms in pauses] == [(10.020, 10.0)]


def test_underrun_is_judged_against_the_audio_ahead_before_it():
    stats = [{"t": 9.9, "ahead_ms": 19.0}, {"t": 10.05, "ahead_ms": 2.0}]
    underrun = [(10.03, 5.0, 2.0)]  # seen at 10.03 after a 5 ms gap; 2 ms ahead once it was seen
    pause = [(10.02, 18.0)]
    judged = bench.classify_underruns(underrun, stats, pause, pause, [], device_ms=2.0)[0]
    assert judged["ahead_before_ms"] == 19.0
    assert judged["machine_pause_exceeds_queue"]  # 18 + 2 >= 19
    assert not judged["sender_late_exceeds_queue"]
    shorter = bench.classify_underruns(underrun, stats, [(10.02, 12.0)], [(10.02, 12.0)], [(10.025, 9.0)], 2.0)[0]
    assert not shorter["machine_pause_exceeds_queue"] and not shorter["machine_stall_exceeds_queue"]
    assert shorter["sender_late_ms"] == 9.0
