"""A running `kvmfr-agent` whose shared memory is vandalised: it never hangs, keeps posting (after
re-initialising the region with a new session when needed) and ends within 1 s on SIGTERM.

Each case writes garbage into the words clients share with the producer (lock words, the queue count,
the header magic, subscriber bits, the client message ring) while a reader is connected, then checks
that the reader gets new frames again.
"""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

import kvmfr_client
from kvmfr_client.core.native import lib
from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for
from tests.support.shm import HEADER, Q_FRAME, Q_POINTER, Region, off

LGMP_MAGIC = lib.LGMP_PROTOCOL_MAGIC


def _running_agent(shm_path):
    agent = start_agent(shm_path, size=(160, 120), fps=60)
    try:
        wait_for(lambda: shm_path.exists() and shm_path.stat().st_size > 0, 20, "the agent to create its file")
        region = Region(str(shm_path))
        wait_for(lambda: region.u32(0) == LGMP_MAGIC, 20, "the agent to write its LGMP header")
    except BaseException:
        print(stop_process(agent, timeout=STOP_S))
        raise
    return agent, region


def _frames_flow(session, within: float, count: int = 3) -> bool:
    """Whether ``count`` new frames arrive within ``within`` seconds."""
    got = 0
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and got < count:
        got += session.next_frame(timeout=0.1) is not None
    return got >= count


# SIGTERM to exit, in the clean-up of these tests: they test the agent's recovery, and a CI machine running the
# soak beside them once took over 2 s (the 1 s bound on SIGTERM is test_producer_vandal's own test).
STOP_S = 5.0
def _queue_words(region: Region, field: str):
    """Where ``field`` is in each queue the table lists now. A queue can be missing for a moment (an earlier
    write broke the table and the agent is rebuilding it): the vandal then has nothing to write there."""
    words = []
    for q in (Q_FRAME, Q_POINTER):
        try:
            words.append(region.queue_field(q, field))
        except KeyError:
            pass
    return words


def _lock_words(r: Region) -> None:
    for at in _queue_words(r, "lock") + _queue_words(r, "cMsgLock"):
        r.set_u32(at, 0xDEADBEEF)


def _count(r: Region) -> None:
    for at in _queue_words(r, "count"):
        r.set_u32(at, 0x7FFFFFF0)


def _magic(r: Region) -> None:
    r.set_u32(0, 0x12345678)


def _subscriber_bits(r: Region) -> None:
    # Ghost subscribers that never finish anything (ON, not BAD): they must be timed out.
    for at in _queue_words(r, "subs"):
        r.mm[at:at + 8] = (r.u64(at) | 0xFFFF0000_00000000).to_bytes(8, "little")


def _client_messages(r: Region) -> None:
    try:
        at, avail, wpos = (r.queue_field(Q_POINTER, f) for f in ("cMsgs", "cMsgAvail", "cMsgWPos"))
    except KeyError:   # the pointer queue is not in the table right now (see _queue_words)
        return
    r.mm[at:at + 680] = bytes(random.Random(7).getrandbits(8) for _ in range(680))
    r.set_u32(avail, 0xFFFFFFFF)
    r.set_u32(wpos, 12345)


CASES = {"lock_words": _lock_words, "count": _count, "magic": _magic, "subscriber_bits": _subscriber_bits,
         "client_messages": _client_messages}


@pytest.mark.parametrize("case", sorted(CASES))
def test_agent_keeps_posting_after_garbage(case, shm_path):
    agent, region = _running_agent(shm_path)
    try:
        with kvmfr_client.open(str(shm_path), wait=10) as s:
            assert _frames_flow(s, 5), "no frames before the vandal"
            CASES[case](region)
            assert _frames_flow(s, 4), f"frames did not come back after garbage in {case}"
            assert agent.poll() is None, "the agent died"
    finally:
        out = stop_process(agent, timeout=STOP_S)
        region.close()
    assert agent.returncode == 0, out
    assert "Traceback" not in out, out


def test_agent_ends_within_a_second_on_sigterm_while_vandalised(shm_path):
    """Garbage thrown at every shared word the producer waits on, continuously; SIGTERM still ends the
    agent in under a second, with status 0 and no traceback."""
    agent, region = _running_agent(shm_path)
    stop = threading.Event()
    words = (_queue_words(region, "lock") + _queue_words(region, "cMsgLock") + _queue_words(region, "count")
             + _queue_words(region, "cMsgAvail") + [0, off(HEADER, "sessionID")])
    subs = _queue_words(region, "subs")
    rng = random.Random(99)

    def vandal():
        while not stop.is_set():
            region.set_u32(rng.choice(words), rng.choice((1, 0xFFFFFFFF, rng.getrandbits(32))))
            at = rng.choice(subs)
            region.mm[at:at + 8] = rng.getrandbits(64).to_bytes(8, "little")
            time.sleep(0.001)

    try:
        with kvmfr_client.open(str(shm_path), wait=10) as s:
            assert _frames_flow(s, 5)
            t = threading.Thread(target=vandal, daemon=True)
            t.start()
            end = time.monotonic() + 3
            while time.monotonic() < end:
                s.next_frame(timeout=0.05)
            assert agent.poll() is None, "the agent died under the vandal"
            t0 = time.monotonic()
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(5)
            finally:
                took = time.monotonic() - t0
            stop.set()
            t.join(2)
    finally:
        stop.set()
        out = stop_process(agent, timeout=STOP_S)
        region.close()
    assert took < 1.0, f"SIGTERM took {took:.2f} s to end the agent"
    assert agent.returncode == 0, out
    assert "Traceback" not in out, out


def test_agent_recovers_when_the_vandal_stops(shm_path):
    """Three seconds of garbage, then quiet: frames flow to the reader again within 2 s."""
    agent, region = _running_agent(shm_path)
    rng = random.Random(5)
    targets = [fn for fn in CASES.values()]
    try:
        with kvmfr_client.open(str(shm_path), wait=10) as s:
            assert _frames_flow(s, 5)
            end = time.monotonic() + 3
            while time.monotonic() < end:
                rng.choice(targets)(region)
                s.next_frame(timeout=0.02)
            assert _frames_flow(s, 2.5), "frames did not come back after the vandal stopped"
            assert agent.poll() is None
    finally:
        out = stop_process(agent, timeout=STOP_S)
        region.close()
    assert agent.returncode == 0, out
    assert "overwritten" in out, "the agent did not say it re-initialised the region"
