"""Hostile clients against the producer in master mode (LGMP 12): garbage in every client-writable field.

For each field of the LGMP 12 header and queue descriptors (taken from the C structs through cffi, so a
field added there is covered), and for the ring messages and client messages, a value class is written
while a client is subscribed. Every producer call must return within a bound (never a hang), the process
must not crash, and within a few seconds of ticks a (re-)subscribed client gets frames again.
"""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from guest_agent.producer import HostDescription, Producer
from kvmfr_client.core import errors
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.native import ffi, lib
from tests.guest_agent.master_region import (CMSG, FRAME_INDEX, HEADER, MESSAGE, POINTER_INDEX, QUEUE,
                                             MasterRegion, off, qbase)

SIZE = 4 << 20
W, H = 32, 24
CALL_BOUND_S = 1.0      # the agent's SIGTERM promise: no producer call may take longer
RECOVER_S = 3.0         # ghost subscribers time out after 1 s by the producer's clock
VALUES = (0xFFFFFFFF, 0x80000000, 1, 0)


def _fields(struct_name: str, skip=()):
    """(name, offset, bytes) of each field; arrays as a whole."""
    return [(name, f.offset, ffi.sizeof(f.type)) for name, f in ffi.typeof(struct_name).fields if name not in skip]


HEADER_FIELDS = _fields(HEADER, skip=("queues", "udata"))
QUEUE_FIELDS = _fields(QUEUE)
TARGETS = ([("header." + n, o, s) for n, o, s in HEADER_FIELDS]
           + [(f"queue{i}.{n}", qbase(i) + o, s) for i in (FRAME_INDEX, POINTER_INDEX) for n, o, s in QUEUE_FIELDS]
           + [("frame ring", None, 0), ("pointer ring", None, 0)])


def _bounded(fn, *a, **kw):
    t0 = time.monotonic()
    try:
        return fn(*a, **kw)
    except (errors.KvmfrTimeout, errors.QueueError):
        return None
    finally:
        took = time.monotonic() - t0
        assert took < CALL_BOUND_S + 0.3, f"{getattr(fn, '__name__', fn)} took {took:.2f} s"


def _consume(r: MasterRegion, slot: int = 0) -> int:
    """Be a well-behaved client in `slot`: finish every frame message pending for us; returns how many."""
    n = r.qu32(FRAME_INDEX, "numMessages")
    if n != 2:
        return 0
    ring = r.qu32(FRAME_INDEX, "messagesOffset")
    done = 0
    for _ in range(n):
        count, start = r.qu32(FRAME_INDEX, "count"), r.qu32(FRAME_INDEX, "start")
        if count == 0 or start >= n:
            break
        at = ring + start * ffi.sizeof(MESSAGE) + off(MESSAGE, "pendingSubs")
        done += bool(r.u32(at) & (1 << slot))
        r.set_u32(at, r.u32(at) & ~(1 << slot))
        if r.u32(at):
            break
        r.set_q(FRAME_INDEX, "start", (start + 1) % n)
        r.set_q(FRAME_INDEX, "count", count - 1)
    return done


def _write(r: MasterRegion, target, value: int, rng: random.Random) -> None:
    name, at, size = target
    if at is None:   # a ring: random bytes over all its messages
        index = FRAME_INDEX if name.startswith("frame") else POINTER_INDEX
        ring = r.qu32(index, "messagesOffset")
        n = r.qu32(index, "numMessages") * ffi.sizeof(MESSAGE)
        r.mm[ring:ring + n] = bytes(rng.getrandbits(8) for _ in range(n))
        return
    if size <= 8:
        r.mm[at:at + size] = (value if value else 0).to_bytes(8, "little")[:size] if value != 1 else \
            (1).to_bytes(size, "little")
        if value == 0xFFFFFFFF:
            r.mm[at:at + size] = b"\xff" * size
    else:            # an array or padding: one value class in every word
        word = value.to_bytes(4, "little")
        r.mm[at:at + size] = (word * (size // 4 + 1))[:size]


def _frames_flow(prod: Producer, r: MasterRegion, serial: int) -> bool:
    """Within RECOVER_S of ticks, a subscribed client in slot 0 gets a new frame message."""
    deadline = time.monotonic() + RECOVER_S
    rows = np.zeros((H, W * 4), np.uint8)
    while time.monotonic() < deadline:
        _bounded(prod.tick)
        if not r.qu32(FRAME_INDEX, "subs") & (1 << 16):   # a new session, or our slot freed: subscribe again
            r.subscribe(0, 1)
        _consume(r)
        before = (r.u32(off(HEADER, "sessionID")), r.qu32(FRAME_INDEX, "position"))
        if _bounded(prod.begin_frame, serial, FrameType.BGRA, W, H, timeout=0.05):
            _bounded(prod.write_rows, rows)
            _bounded(prod.end_frame)
            pos = r.qu32(FRAME_INDEX, "position")
            if (r.u32(off(HEADER, "sessionID")), pos) != (before[0], (before[1] + 1) % 2):
                continue   # not posted to this session (dropped: nobody active), or a new session
            newest = r.message(FRAME_INDEX, (pos - 1) % 2)
            if (newest["pendingSubs"] & 1 and r.u32(lib.LGMP12_MAGIC_OFFSET) == lib.LGMP_PROTOCOL_MAGIC
                    and r.frame_u32(newest["offset"], "frameSerial") == serial):
                return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("target", TARGETS, ids=[t[0] for t in TARGETS])
def test_garbage_in_a_client_writable_field_never_hangs_and_frames_come_back(target, tmp_path):
    prod = Producer(str(tmp_path / "shm"), create_size=SIZE, host=HostDescription(protocol="master"), tick_ms=0)
    r = MasterRegion(str(tmp_path / "shm"))
    rng = random.Random(hash(target[0]) & 0xFFFF)
    try:
        r.subscribe(0, 1)
        assert _frames_flow(prod, r, 1)
        serial = 2
        for value in VALUES + (rng.getrandbits(32),):
            _write(r, target, value, rng)
            r.send(rng.randrange(lib.LGMP12_MSGS_MAX), rng.getrandbits(32), bytes(rng.getrandbits(8) for _ in range(12)))
            _bounded(prod.tick)
            _bounded(prod.post_cursor, 1, 2, timeout=0.05)
            _bounded(prod.next_message)
            assert _frames_flow(prod, r, serial), f"no frames after {target[0]} = {value:#x}"
            serial += 1
    finally:
        r.close()
        prod.close()


def test_client_message_ring_garbage_is_bounded(tmp_path):
    """Random bytes over all 16 client messages, with cMsgAvail/WPos claiming everything: each drain
    takes at most one ring's worth, sizes are clamped to 64, and nobody's id matches: all discarded."""
    prod = Producer(str(tmp_path / "shm"), create_size=SIZE, host=HostDescription(protocol="master"), tick_ms=0)
    r = MasterRegion(str(tmp_path / "shm"))
    try:
        r.subscribe(0, 0xABCDEF01)
        at = r.q(POINTER_INDEX, "cMsgs")
        n = lib.LGMP12_MSGS_MAX * ffi.sizeof(CMSG)
        r.mm[at:at + n] = bytes(random.Random(3).getrandbits(8) for _ in range(n))
        r.set_q(POINTER_INDEX, "cMsgAvail", 0)
        _bounded(prod.tick)
        got = 0
        while _bounded(prod.next_message) is not None:
            got += 1
        assert got == 0 and prod.discarded_messages == lib.LGMP12_MSGS_MAX
        assert r.qu32(POINTER_INDEX, "cMsgRSerial") == lib.LGMP12_MSGS_MAX
    finally:
        r.close()
        prod.close()


def test_master_agent_recovers_from_a_vandal_and_ends_within_a_second_on_sigterm(tmp_path):
    """`kvmfr-agent --protocol master` with a subscribed client, 3 s of garbage in the words the producer
    waits on (locks, counts, subscriber bits, client message ring, session id): it keeps running, posts
    to the client again once the vandal stops, and SIGTERM ends it in under a second with status 0."""
    import signal
    import subprocess
    import sys

    from tests.support.process import stop_process, wait_for

    shm = tmp_path / "shm"
    agent = subprocess.Popen([sys.executable, "-m", "guest_agent", "--shm", str(shm), "--size", "160x120",
                              "--fps", "60", "--protocol", "master"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    r = None
    try:
        wait_for(lambda: shm.exists() and shm.stat().st_size > lib.LGMP12_HEADER_SIZE, 20, "the agent's file")
        r = MasterRegion(str(shm))
        wait_for(lambda: r.u32(lib.LGMP12_MAGIC_OFFSET) == lib.LGMP_PROTOCOL_MAGIC, 20, "the master header")
        words = [r.q(i, f) for i in (FRAME_INDEX, POINTER_INDEX)
                 for f in ("lock", "cMsgLock", "count", "cMsgAvail", "subs", "start", "position")]
        words.append(off(HEADER, "sessionID"))
        rng = random.Random(17)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            r.set_u32(rng.choice(words), rng.choice((1, 0xFFFFFFFF, rng.getrandbits(32))))
            if rng.random() < 0.05:
                r.subscribe(0, 1)
            time.sleep(0.001)
        assert agent.poll() is None, "the agent died under the vandal"

        def posting() -> bool:
            """Frame messages carrying our pending bit arrive (and we finish them)."""
            got = 0
            for _ in range(20):
                if not r.qu32(FRAME_INDEX, "subs") & (1 << 16):
                    r.subscribe(0, 1)
                got += _consume(r)
                time.sleep(0.01)
            return got >= 3
        wait_for(posting, 5, "frames for the client after the vandal stopped")

        t0 = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        agent.wait(5)
        took = time.monotonic() - t0
    finally:
        out = stop_process(agent, timeout=2)
        if r is not None:
            r.close()
    assert took < 1.0, f"SIGTERM took {took:.2f} s"
    assert agent.returncode == 0, out
    assert "Traceback" not in out and "overwritten" in out, out
