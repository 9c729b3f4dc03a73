"""The harness itself: it notices a reader that stops, and Ctrl+C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tools.soak import vandal_soak
from tools.soak.rig import HeadlessLines, Reader
from tools.soak.tracks import FrameTrack

REPO = Path(__file__).resolve().parents[2]


class _Child:
    def alive(self):
        return True


def test_a_reader_that_stops_in_a_quiet_gap_is_reported_as_hung():
    live, stuck = FrameTrack("live"), FrameTrack("stuck")
    now = time.monotonic_ns()
    health = SimpleNamespace(healthy=lambda: True, healthy_since_ns=now - 10**9)
    rig = SimpleNamespace(agent=_Child(), health=health,
                          readers={n: SimpleNamespace(track=t, exit=None, child=_Child())
                                   for n, t in (("live", live), ("stuck", stuck))})
    stuck.frame(now, -1)                         # one frame, then nothing

    def feed(stop):
        while not stop.wait(0.03):
            live.frame(time.monotonic_ns(), -1)
    _judge_quiet_gap(rig, feed)


def _judge_quiet_gap(rig, feed) -> None:
    """Run one 2.8 s quiet gap of the vandal soak while ``feed(stop_event)`` plays the readers' side:
    "live" must pass and "stuck" be reported hung for longer than the hang limit."""
    stop = threading.Event()
    t = threading.Thread(target=feed, args=(stop,))
    t.start()
    hangs: dict = {}
    judged = {"gaps_judged": 0, "gaps_not_judged": 0}
    try:
        vandal_soak._quiet_gap(rig, 2.8, {}, judged, hangs, log=print)
    finally:
        stop.set()
        t.join()
    assert judged["gaps_judged"] == 1
    assert "live" not in hangs
    assert hangs["stuck"] and hangs["stuck"][0] > vandal_soak.HANG_S


def _progress(frames: int, new: int, first_ns, last_ns, errors=None) -> str:
    """A line as `kvmfr-view --headless --progress` prints it (docs/viewer.md)."""
    return json.dumps({"progress": True, "t_s": 1.0, "frames": frames, "last_serial": frames or None,
                       "state": "connected", "status": "connected to ...", "session_restarts": 0,
                       "data_errors": errors or {}, "pattern_errors": 0, "truncated_frames": 0, "cursor_updates": 0,
                       "new_frames": new, "new_first_ns": first_ns, "new_last_ns": last_ns})


def test_the_headless_readers_lines_give_its_frame_times_and_error_counts():
    track = FrameTrack("headless")
    reader = Reader("headless", child=_Child(), track=track, rss=None)
    lines = HeadlessLines(track)
    lines.reader = reader
    lines(0, _progress(0, 0, None, None))
    lines(1, _progress(30, 30, 1_000, 2_000))
    lines(2, "kvmfr-view: WARNING kvmfr_client.core.session: frame pitch 4 bytes does not fit rows of 256 bytes")
    lines(3, _progress(40, 10, 3_000, 3_000, {"FrameError": 2}))
    assert track.times_between(0, 10_000) == [1_000, 2_000, 3_000]   # first and last of each second, once each
    assert reader.frames() == 40
    assert reader.errors() == {"session: FrameError": 2}   # its own counts; the warning line is not parsed
    lines(4, "Traceback (most recent call last):")
    lines(5, json.dumps({"frames": 41, "data_errors": {"FrameError": 2, "ShmLost": 1}, "error": None}))
    assert reader.result["frames"] == 41 and reader.frames() == 41
    assert reader.errors() == {"session: FrameError": 2, "session: ShmLost": 1, "TRACEBACK": 1}


def test_the_windows_error_counts_come_from_its_stats_json():
    reader = Reader("window", child=_Child(), track=FrameTrack("window"), rss=None,
                    result={"frames_received": 10, "error_counts": {"CursorError": 1}})
    assert reader.errors() == {"session: CursorError": 1}


def test_a_headless_reader_whose_frames_stop_is_reported_as_hung():
    """The 2 s hang rule on the headless reader's progress lines: one that goes on printing lines without
    new frames (or stops printing) is hung; one whose lines carry frames is not."""
    now = time.monotonic_ns()
    health = SimpleNamespace(healthy=lambda: True, healthy_since_ns=now - 10**9)
    tracks = {n: FrameTrack(n) for n in ("live", "stuck")}
    feeds = {n: HeadlessLines(t) for n, t in tracks.items()}
    rig = SimpleNamespace(agent=_Child(), health=health,
                          readers={n: SimpleNamespace(track=t, exit=None, child=_Child()) for n, t in tracks.items()})
    feeds["stuck"](now, _progress(5, 5, now - 10**8, now))   # frames until now, then none

    def feed(stop):   # a line a second, as the reader prints them; sped up to a line every 0.25 s here
        last = time.monotonic_ns()
        while not stop.wait(0.25):
            t = time.monotonic_ns()
            feeds["live"](t, _progress(1, 7, last + 30_000_000, t))
            feeds["stuck"](t, _progress(5, 0, None, None))
            last = t
    _judge_quiet_gap(rig, feed)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(int(pid))
    return found


@pytest.mark.slow
def test_ctrl_c_stops_every_process_and_removes_the_shared_memory_file(tmp_path):
    figures = tmp_path / "figures.json"
    proc = subprocess.Popen([str(REPO / "scripts" / "soak.sh"), "vandal", "--seconds", "120", "--no-window",
                             "--json", str(figures)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:       # wait for the rounds to start: agent, readers and vandal all run
            lines.append(line)
            if line.startswith("soak vandal:"):
                break
        assert proc.poll() is None, "".join(lines)
        shm = f"/dev/shm/kvmfr-soak-{proc.pid}-"
        assert len(_processes_mentioning(shm)) >= 3       # agent, API reader, vandal (headless uses --shm too)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, "".join(lines) + out
    assert "interrupted" in out
    assert "Traceback" not in out
    assert not _processes_mentioning(shm)
    assert not [p for p in os.listdir("/dev/shm") if p.startswith(f"kvmfr-soak-{proc.pid}-")]
    assert json.loads(figures.read_text())["interrupted"] is True


@pytest.mark.slow
def test_a_stuck_agent_is_detected_killed_and_replaced_without_the_soak_hanging():
    from tools.soak.rig import Rig
    rig = Rig(warmup_s=1)
    try:
        rig.start_agent()
        rig.start_api_reader("api")
        rig.wait_first_frames(["api"])
        stuck_pid = rig.agent.pid
        os.kill(stuck_pid, signal.SIGSTOP)      # as an agent spinning on a garbage lock word: no heartbeat
        events = {"stuck": 0, "crashed": 0, "sigterm_obeyed": 0, "sigterm_ignored": 0, "restarts": 0}
        judged = {"gaps_judged": 0, "gaps_not_judged": 0}
        hangs: dict = {}
        t0 = time.monotonic()
        vandal_soak._quiet_gap(rig, 9.0, events, judged, hangs, log=print)
        assert time.monotonic() - t0 < 12
        assert events["stuck"] == 1 and events["sigterm_ignored"] == 1 and events["restarts"] == 1
        assert rig.agent.pid != stuck_pid and rig.agent.alive()
        frames = rig.readers["api"].track.frames
        time.sleep(1.0)
        assert rig.readers["api"].track.frames > frames, "the reader got no frame from the new agent"
    finally:
        rig.close()
