"""The vandal soak's writes, one kind at a time, into a running `kvmfr-agent` with a subscribed reader:
after each, the agent is healthy again (as the soak's watcher judges it: LGMP magic, same or new session,
heartbeat ticking, frames posted) within 1.5 s, repaired or re-initialised.

Each class below is every field the vandal writes in that place (tools/soak/vandal.py's own struct
fields) times its value classes (boundary values, small numbers, the file size +/- 64, random words);
tests/guest_agent/vandal_probe.py holds the rig and runs alone for a wider sweep.
"""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from tests.guest_agent import vandal_probe as vp


@pytest.mark.parametrize("field_class", sorted(vp.targets()))
def test_agent_healthy_again_after_each_vandal_write(field_class, tmp_path):
    rig = vp.Rig(tmp_path)
    rig.start()
    slow = []
    rng = random.Random(3)
    prev = "(none)"
    try:
        for t in vp.targets()[field_class]:
            for v in ([0] if t.whole else vp.values(rig.vandal.size)):
                try:
                    took = rig.probe(t, v, rng)
                except AssertionError:
                    took = float("inf")
                    what = f"before {t.name} = {v:#x}, after {prev}"
                else:
                    what = f"{t.name} = {v:#x}"
                if took is None:
                    continue
                prev = f"{t.name} = {v:#x}"
                if took > vp.RECOVER_S:
                    slow.append(f"{what}: {took:.2f} s")
                    rig.restart()
                assert rig.agent.poll() is None, f"the agent ended after {what}"
    finally:
        out = rig.stop()
    assert not slow, f"the agent stayed unhealthy over {vp.RECOVER_S} s after: " + "; ".join(slow)
    assert not rig.reader_errors, rig.reader_errors
    assert "Traceback" not in out, out[-3000:]


def test_sigterm_ends_an_agent_without_subscriber_slots(tmp_path):
    """The state the soak found stuck (every subscriber slot of the frame queue marked kicked, none on:
    no client can subscribe, so the agent idles without subscribers). The agent frees the slots itself
    within about a second; and while the vandal keeps writing that state, SIGTERM still ends the agent
    within a second, status 0."""
    rig = vp.Rig(tmp_path)
    rig.start()
    stop = threading.Event()
    subs = next(t for t in vp.targets()["frame_queue"] if t.name == "subs")
    try:
        took = rig.probe(subs, 0xFFFFFFFF, random.Random(1))
        assert took is not None and took <= vp.RECOVER_S, f"no frames for {took:.2f} s after subs = 0xffffffff"

        def keep_writing():
            while not stop.is_set():
                rig.write(subs, 0xFFFFFFFF, random.Random(1))
                time.sleep(0.001)

        t = threading.Thread(target=keep_writing, daemon=True)
        t.start()
        time.sleep(1.5)
        assert not rig.health.healthy(), "the agent posted although no client could subscribe"
        t0 = time.monotonic()
        rig.agent.send_signal(signal.SIGTERM)
        try:
            rig.agent.wait(5)
        finally:
            took = time.monotonic() - t0
            stop.set()
            t.join(2)
        rc = rig.agent.returncode
    finally:
        stop.set()
        out = rig.stop()
    assert took < 1.0, f"SIGTERM took {took:.2f} s to end the agent"
    assert rc == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
