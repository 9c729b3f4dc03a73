"""The frames thread's buffer and damage policy, against a scripted session (no window needed)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from kvmfr_client.core.formats import FrameType
from kvmfr_client.viewer.frame_pipeline import FramePipeline


@dataclass
class FakeFrame:
    serial: int
    width: int
    height: int
    pixels: np.ndarray
    damage_only: bool
    type: FrameType = FrameType.BGRA

    @property
    def pitch(self) -> int:
        return self.width * 4


class ScriptedSession:
    """Plays (serial, width, height, damage?) frames the way Session.next_frame would deliver them."""

    host = None

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[dict] = []
        self.done = threading.Event()

    def next_frame(self, timeout=0.1, out=None, allow_damage=False, newest=False):
        if not self.script:
            self.done.set()
            self.done.wait(timeout)
            return None
        serial, w, h, damage = self.script.pop(0)
        self.calls.append({"serial": serial, "out": out, "allow_damage": allow_damage})
        if out is not None and (out.shape[0] < h or out.shape[1] < w * 4):
            raise ValueError("out too small")
        if out is None:
            out = np.zeros((h, w * 4), np.uint8)
        return FakeFrame(serial, w, h, out[:h], damage_only=bool(damage and allow_damage))


def run_script(script):
    session = ScriptedSession(script)
    got = []
    pipe = FramePipeline(session, wake=lambda: None, read_timestamps=False)
    pipe.start()
    while not session.done.is_set() or pipe.take() is not None:
        ready = pipe.take()
        if ready is not None:
            got.append(ready.frame)
            pipe.release()
        else:
            session.done.wait(0.005)
    pipe.stop()
    return session, got, pipe


def test_one_buffer_reused_with_damage_and_gaps_counted_as_dropped():
    session, got, pipe = run_script([(1, 64, 32, False), (2, 64, 32, True), (3, 64, 32, True), (6, 64, 32, True)])
    assert [f.serial for f in got] == [1, 2, 3, 6]
    assert session.calls[0]["out"] is None and not session.calls[0]["allow_damage"]
    buffers = {id(c["out"].base if c["out"].base is not None else c["out"]) for c in session.calls[1:]}
    assert len(buffers) == 1, "every later frame is copied into the same buffer (it holds the previous frame)"
    assert all(c["allow_damage"] for c in session.calls[1:])
    assert pipe.dropped == 2     # serials 4 and 5 never arrived


def test_frame_that_outgrows_the_buffer_gets_a_fresh_one():
    session, got, _ = run_script([(1, 32, 16, False), (2, 64, 32, False), (3, 64, 32, False), (4, 64, 32, True)])
    # serial 2 did not fit: lost (the session raised), serial 3 is copied whole into a new buffer
    assert [f.serial for f in got] == [1, 3, 4]
    assert session.calls[2]["out"] is None and not session.calls[2]["allow_damage"]
    assert got[1].pixels.shape == (32, 256)


def test_pixel_buffer_destinations_from_the_gl_thread():
    """On the pixel-buffer path the GL thread hands a destination with each release: the next frame is
    copied there (damage allowed: the texture holds the frame before) and carries its slot; a frame too big
    for it falls back to a buffer of the frames thread's own, copied whole."""
    session = ScriptedSession([(1, 64, 32, False), (2, 64, 32, True), (3, 128, 64, False), (4, 128, 64, True),
                               (5, 128, 64, True)])
    pipe = FramePipeline(session, wake=lambda: None, read_timestamps=False)
    slots = iter(["slot-a", "slot-b", "slot-c", "slot-d"])
    got = []
    pipe.start()
    while not session.done.is_set() or pipe.take() is not None:
        ready = pipe.take()
        if ready is None:
            session.done.wait(0.005)
            continue
        got.append((ready.frame.serial, ready.slot, ready.frame.damage_only))
        f = ready.frame     # as the renderer does: a buffer with room for frames of the last one's size
        pipe.release((next(slots), np.zeros((f.height, f.width * 4), np.uint8)))
    pipe.stop()
    calls = {c["serial"]: c for c in session.calls}
    assert got[0] == (1, None, False)                     # before any upload: its own buffer
    assert got[1] == (2, "slot-a", True) and calls[2]["allow_damage"]
    # 3 did not fit slot-b (lost, as a frame that outgrows any buffer); 4 goes whole into a buffer of its own
    assert [g[0] for g in got] == [1, 2, 4, 5]
    assert calls[4]["out"] is None and not calls[4]["allow_damage"] and got[2] == (4, None, False)
    assert got[3] == (5, "slot-c", True) and calls[5]["allow_damage"]   # the buffers grew with the frames


def test_stop_of_threads_never_started_is_a_no_op():
    from kvmfr_client.viewer.frame_pipeline import CursorTracker
    # MultiViewer finishes viewers it never started when a later one cannot be made
    FramePipeline(ScriptedSession([]), wake=lambda: None, read_timestamps=False).stop()
    CursorTracker(ScriptedSession([]), wake=lambda: None).stop()


class PointerQueue:
    """Session.next_cursor over a list of queued events; records each call's timeout."""

    def __init__(self):
        self.queue: list = []
        self.timeouts: list[float] = []
        self.lock = threading.Lock()

    def push(self, x: int) -> None:
        from types import SimpleNamespace

        from kvmfr_client.core.cursor import CursorFlags
        with self.lock:
            self.queue.append(SimpleNamespace(flags=CursorFlags.POSITION, x=x, y=x, visible=True, shape=None,
                                              t_seen_ns=0, sdr_white_level=0))

    def next_cursor(self, timeout=0.0):
        with self.lock:
            self.timeouts.append(timeout)
            if self.queue:
                return self.queue.pop(0)
        time.sleep(min(timeout, 0.005))
        return None


class FrameClock:
    """What CursorTracker reads of a FramePipeline: when the next frame is late, and the arrival event. The
    test says when frames are late (FrameRhythm's own rule is tested apart), so a loaded machine's late
    sleeps cannot make frames late."""

    def __init__(self):
        self.late: float | None = None      # None: frames do not come steadily
        self.rhythm = self
        self.arrived = threading.Event()

    def late_at(self) -> float | None:
        return self.late

    def frame(self, late_after: float = 60.0) -> None:
        self.late = time.monotonic() + late_after
        self.arrived.set()


def _tracker(frames):
    from kvmfr_client.viewer.frame_pipeline import CursorTracker
    queue, wakes = PointerQueue(), []
    tracker = CursorTracker(queue, wake=lambda: wakes.append(time.monotonic()), frames=frames)
    return tracker, queue, wakes


def _until(cond, seconds=3.0):
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.002)
    return cond()


def test_cursor_while_frames_come_steadily_is_read_at_each_frame_without_waking_the_gl_thread():
    frames = FrameClock()
    frames.frame()
    tracker, queue, wakes = _tracker(frames)
    tracker.start()
    try:
        for k in range(20):
            queue.push(k)
            queue.push(k + 100)
            time.sleep(0.005)
            frames.frame()
        assert _until(lambda: tracker.events == 40)
        assert wakes == []                                   # each frame's redraw shows the cursor
        assert set(queue.timeouts) == {0.0}                  # never a polling wait while frames come
        assert len(queue.timeouts) <= 3 * 21                 # a read a frame, and one per event
        state = tracker.take()
        assert state is not None and (state.x, state.y) == (119, 119)
        # The frames stop: an event after the last frame is read, and the GL thread woken, when the next
        # frame is late, and from then on the queue is polled.
        frames.frame(late_after=0.4)
        time.sleep(0.05)                                     # the tracker back waiting for the next frame
        queue.push(7)
        time.sleep(0.05)
        assert tracker.events == 40 and wakes == []          # not before the next frame is late
        assert _until(lambda: tracker.events == 41 and len(wakes) == 1)
        assert _until(lambda: 0.1 in queue.timeouts)
    finally:
        tracker.stop()


def test_frame_rhythm_says_when_the_next_frame_is_late():
    from kvmfr_client.viewer.frame_pipeline import FrameRhythm
    r = FrameRhythm()
    assert r.late_at() is None
    r.frame(10.0)
    assert r.late_at() is None                               # one frame is no rhythm
    for k in range(1, 6):
        r.frame(10.0 + k * 0.016)
    assert abs(r.late_at() - (10.08 + 1.5 * 0.016)) < 1e-9
    r.frame(10.08 + 0.030)                                   # 30 ms apart: below 40 fps, not steady
    assert r.late_at() is None


def test_cursor_without_frames_is_polled_and_wakes_the_gl_thread_for_each_event():
    for frames in (None, FrameClock()):    # no pipeline, or one whose frames have not come
        tracker, queue, wakes = _tracker(frames)
        tracker.start()
        try:
            queue.push(1)
            queue.push(2)
            assert _until(lambda: tracker.events == 2 and len(wakes) == 2)
            assert 0.1 in queue.timeouts
        finally:
            tracker.stop()


def test_a_cursor_change_the_last_frames_redraw_missed_wakes_the_gl_thread_once_frames_are_late():
    """The GL thread took the cursor for the last frame before the cursor thread read that frame's event;
    then frames stop (a window drag ended). The change must not wait for the GL loop's idle timeout: once
    the next frame is late the GL thread is woken for it."""
    frames = FrameClock()
    frames.frame()
    tracker, queue, wakes = _tracker(frames)
    tracker.start()
    try:
        queue.push(1)
        frames.frame(late_after=0.3)      # the last frame: its event is read while paced, no wake
        assert _until(lambda: tracker.events == 1)
        assert wakes == []
        # (the GL thread's redraw for that frame ran before the read: it did not take the change)
        assert _until(lambda: len(wakes) >= 1, 2.0), "the pending change never woke the GL thread"
        state = tracker.take()
        assert state is not None and state.x == 1
    finally:
        tracker.stop()
