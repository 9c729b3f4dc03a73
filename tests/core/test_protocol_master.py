"""What only master (LGMP 12 / KVMFR 34) has, end to end in separate processes, and a host that changes
protocol under a running reader: the window-size message, the host's stage timings, B7 -> master -> B7.

The B7 side of each case is here too: what a B7 host cannot do is said, not guessed.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import kvmfr_client
from guest_agent.producer import HostDescription, Producer, stage_timings
from kvmfr_client.core import errors
from kvmfr_client.core.formats import FrameType, encode
from kvmfr_client.core.native import lib
from kvmfr_client.core.session import SessionState
from kvmfr_client.core.testpattern import Pattern, read_stored_code
from tests.core.test_protocol import PY, WIRE, agent_pool, frames
from tests.guest_agent.master_region import FRAME_INDEX, MasterRegion
from tests.support.process import stop_process


@pytest.fixture
def agents():
    """Start agents (test_protocol.agent_pool): ``agents(shm, protocol, *args)``; all stopped at the end."""
    with agent_pool() as start:
        yield start


# ---- a host that changes protocol --------------------------------------------------------------

class ProgressReader:
    """``kvmfr-view --headless --progress --json`` in its own process; its lines on a queue."""

    def __init__(self, shm):
        self.proc = subprocess.Popen([PY, "-m", "kvmfr_client.cli.view", "--shm", str(shm), "--headless",
                                      "--frames", "1000000", "--timeout", "120", "--progress", "--json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._pump, name="reader-stdout", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def wait_for(self, what: str, ok, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the reader ended while waiting for {what}: {self.proc.stderr.read()[-2000:]}")
            seen = line
            if ok(line):
                return line
        raise AssertionError(f"no progress line with {what} within {timeout} s; last: {seen}")

    def finish(self) -> dict:
        """SIGTERM: the reader prints its results so far and ends (exit 143)."""
        self.proc.send_signal(signal.SIGTERM)
        self._thread.join(10)
        self.proc.wait(10)
        last = None
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None and not line.get("progress"):
                last = line
        assert last is not None, "the reader printed no results"
        return last


def test_b7_host_replaced_by_master_and_back(shm_path, agents):
    """One reader runs throughout; the host on the same file goes B7 -> master (the old one killed) ->
    B7 (the old one stopped). Each switch is followed like a restart, with frames right after it, and the
    reader names the protocol it now speaks."""
    reader = ProgressReader(shm_path)
    try:
        host = None
        for restarts, (protocol, stop_sig) in enumerate((("b7", signal.SIGKILL), ("master", signal.SIGTERM),
                                                         ("b7", None))):
            label = "Looking Glass {}: LGMP {lgmp} / KVMFR {kvmfr}".format(
                "master" if protocol == "master" else "B7", **WIRE[protocol])
            t_start = time.monotonic()
            host = agents(shm_path, protocol)
            first = reader.wait_for(f"the {label} host connected", lambda ln: ln["session_restarts"] == restarts
                                    and ln["state"] == "connected" and label in ln["status"], 20)
            reader.wait_for(f"30 frames from the {label} host",
                            lambda ln: ln["session_restarts"] == restarts and ln["frames"] >= first["frames"] + 30, 10)
            switch_s = time.monotonic() - t_start
            assert switch_s < 8, f"frames from the new {protocol} host only after {switch_s:.1f} s"
            if stop_sig is not None:
                host.send_signal(stop_sig)
                host.wait(5)
        result = reader.finish()
    finally:
        stop_process(reader.proc)
    assert result["protocol"] == WIRE["b7"] and result["session_restarts"] == 2
    assert result["pattern_errors"] == 0 and result["frames"] >= 90 and result["pattern_frames"] == result["frames"]


# ---- the window-size message (Looking Glass's win:setGuestRes) ---------------------------------

def test_window_size_round_trip_on_a_master_host(shm_path, agents):
    agent = agents(shm_path, "master", "-v")
    with kvmfr_client.open(shm_path, wait=10) as s:
        assert s.host.can_set_window_size
        assert [(f.width, f.height) for f in frames(s, 3)] == [(320, 240)] * 3
        s.set_window_size(400, 304)
        deadline = time.monotonic() + 5
        resized = []
        while len(resized) < 10 and time.monotonic() < deadline:
            resized += [f for f in frames(s, 1, timeout=0.2) if (f.width, f.height) == (400, 304)]
        assert len(resized) == 10, "the guest's frames did not come back at the window's size"
        pattern = Pattern(400, 304, FrameType.BGRA)
        for f in resized:
            assert f.pitch == pattern.pitch and pattern.verify(f.pixels, f.serial) == []
        # A size the shared memory cannot hold is refused by the guest, which keeps its resolution.
        s.set_window_size(16000, 16000)
        later = frames(s, 20, timeout=5)
        assert len(later) == 20 and {(f.width, f.height) for f in later} == {(400, 304)}
        assert s.state is SessionState.CONNECTED and s.session_restarts == 0 and s.errors_by_kind() == {}
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=10)
    assert "client asked for a 400x304 display: frames are now that size" in err
    assert "client asked for a 16000x16000 display; ignored" in err


def test_window_size_on_a_b7_host_is_a_clear_no(shm_path, agents):
    agents(shm_path, "b7")
    with kvmfr_client.open(shm_path, wait=10) as s:
        assert not s.host.can_set_window_size
        with pytest.raises(errors.KvmfrError, match="cannot resize the guest display") as exc:
            s.set_window_size(400, 304)
        assert "master host" in str(exc.value)
        got = frames(s, 5)
        assert len(got) == 5 and {(f.width, f.height) for f in got} == {(320, 240)}


# ---- the host's stage timings ------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["b7", "master"])
def test_host_stage_timings_come_with_master_frames_only(shm_path, agents, protocol):
    agents(shm_path, protocol)
    with kvmfr_client.open(shm_path, wait=10) as s:
        got = frames(s, 30)
    assert len(got) == 30
    if protocol == "b7":
        assert all(f.host_timings is None and f.sdr_white_level == 0 for f in got)
        return
    # Every frame of our agent carries its own: rendering the pattern (capture) and writing it into shared
    # memory (copy) took some time but well under a frame period at 320x240; it schedules nothing.
    for f in got:
        t = f.host_timings
        assert t is not None, f"frame {f.serial} came without the host's timings"
        assert 0 < t.capture_ns < 100_000_000 and 0 < t.copy_ns < 100_000_000
        assert t.post_process_ns == t.ready_ns == t.hold_ns == t.ready_lead_ns == 0 and not t.phase_valid
        assert f.sdr_white_level == lib.KVMFR_SDR_WHITE_LEVEL_DEFAULT
        assert read_stored_code(f.pixels, f.type, f.width)[1] == f.serial


def test_timings_for_another_frame_are_not_trusted(shm_path):
    """KVMFR 34's rule: timings count only when timingValid is set and timingSerial is this frame's."""
    rows = encode(np.full((64, 64, 4), 9, np.uint8), FrameType.BGRA)
    given = stage_timings(capture_ns=2_000_000, copy_ns=300_000, post_process_ns=40_000)
    with Producer(shm_path, create_size=16 << 20, host=HostDescription(protocol="master")) as prod, \
            kvmfr_client.open(shm_path, wait=5) as s:
        time.sleep(0.05)
        prod.begin_frame(1, FrameType.BGRA, 64, 64, pitch=rows.shape[1])
        prod.write_rows(rows)
        prod.end_frame(given)
        f = s.next_frame(timeout=1)
        assert f.serial == 1 and f.host_timings == given
        prod.post_frame(2, FrameType.BGRA, rows, 64, 64)            # no timings for this one
        f = s.next_frame(timeout=1)
        assert f.serial == 2 and f.host_timings is None
        # A host that marks frame 3's block valid, but with frame 2's serial (a stale slot).
        prod.begin_frame(3, FrameType.BGRA, 64, 64, pitch=rows.shape[1])
        prod.write_rows(rows)
        r = MasterRegion(str(shm_path))
        try:
            n = r.qu32(FRAME_INDEX, "numMessages")
            block = r.message(FRAME_INDEX, (r.qu32(FRAME_INDEX, "position") - 1) & (n - 1))["offset"]
            assert r.frame_u32(block, "frameSerial") == 3
            r.set_u32(block + _frame_off("timingSerial"), 2)
            r.set_u32(block + _frame_off("timingValid"), 1)
        finally:
            r.close()
        prod.end_frame()
        f = s.next_frame(timeout=1)
        assert f.serial == 3 and f.host_timings is None and np.array_equal(f.pixels, rows)


def _frame_off(field: str) -> int:
    from tests.support.shm import off
    return off("struct kvmfr34_frame", field)
