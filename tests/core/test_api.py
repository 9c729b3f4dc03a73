"""The Python API as a script uses it: open, wait, frames as arrays, clean close, GIL released."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import kvmfr_client
from kvmfr_client.core import errors
from kvmfr_client.core.formats import FrameType, encode
from guest_agent.producer import Producer


def test_no_host_gives_a_clear_error(shm_path):
    shm_path.write_bytes(bytes(1 << 20))
    with pytest.raises(errors.HostNotRunning, match="not running"):
        kvmfr_client.open(shm_path, wait=0.5)


def test_waits_for_the_file_then_connects(shm_path):
    session = kvmfr_client.open(shm_path)      # the VM is not started yet: no file at all
    assert session.next_frame(timeout=0.2) is None
    assert "waiting for" in session.status_message and str(shm_path) in session.status_message
    agent = subprocess.Popen([sys.executable, "-m", "guest_agent", "--shm", str(shm_path), "--size", "320x240"],
                             stderr=subprocess.DEVNULL)
    try:
        host = session.wait_connected(10)
        assert host.hostver == "kvmfr-agent 0.1" and host.capture == "testpattern"
        frame = None
        deadline = time.monotonic() + 10
        while frame is None and time.monotonic() < deadline:
            frame = session.next_frame(timeout=0.5)
        assert frame is not None
        assert isinstance(frame.pixels, np.ndarray) and frame.pixels.shape == (240, 320 * 4)
        assert frame.type is FrameType.BGRA and frame.width == 320
    finally:
        session.close()
        agent.terminate()
        agent.wait()
    assert session.state is kvmfr_client.SessionState.CLOSED
    assert session.next_frame(timeout=0.05) is None


def test_blocking_waits_release_the_gil(shm_path):
    """While next_frame blocks in C, other Python threads keep running."""
    with Producer(shm_path, create_size=8 << 20), kvmfr_client.open(shm_path, wait=5) as s:
        counter = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                counter[0] += 1

        t = threading.Thread(target=spin)
        t.start()
        time.sleep(0.05)
        before = counter[0]
        t0 = time.monotonic()
        assert s.next_frame(timeout=0.5) is None          # nothing posted: blocks the whole 0.5 s
        blocked = time.monotonic() - t0
        during = counter[0] - before
        stop.set()
        t.join()
    assert blocked >= 0.45
    assert during > 100_000, f"the other thread ran only {during} iterations while we waited"


def test_frames_into_the_callers_buffer(shm_path):
    with Producer(shm_path, create_size=8 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        rows = encode(np.arange(64 * 48 * 4, dtype=np.uint8).reshape(48, 64, 4), FrameType.RGBA)
        buf = np.zeros((48, 64 * 4 + 64), np.uint8)        # a wider pitch than the frame's
        time.sleep(0.05)
        prod.post_frame(1, FrameType.RGBA, rows, 64, 48)
        f = s.next_frame(timeout=1, out=buf)
        assert f is not None and np.shares_memory(f.pixels, buf)
        assert np.array_equal(buf[:, : 64 * 4], rows) and not buf[:, 64 * 4:].any()
        with pytest.raises(ValueError, match="writable uint8"):
            prod.post_frame(2, FrameType.RGBA, rows, 64, 48)
            s.next_frame(timeout=1, out=np.zeros((10, 10), np.uint8))


def test_damage_needs_the_callers_buffer(shm_path):
    """Without a buffer holding the previous frame, a damage frame is copied whole, never half-filled."""
    from kvmfr_client.core.testpattern import Pattern, PatternKind
    pattern = Pattern(320, 240, FrameType.BGRA, PatternKind.DAMAGE)
    with Producer(shm_path, create_size=8 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        time.sleep(0.05)
        for serial in (1, 2, 3):
            prod.begin_frame(serial, FrameType.BGRA, 320, 240, damage=pattern.damage(serial))
            prod.write_damage(pattern.render_stored(serial, 0))
            prod.end_frame()
            f = s.next_frame(timeout=1, allow_damage=True)      # no out: a fresh array every time
            assert f is not None and f.serial == serial and not f.damage_only
            assert np.array_equal(f.pixels, pattern.render_stored(serial, 0))
