"""Hostile shared memory: one bad value per case, run in a child process by test_hostile.py.

    python -m tests.core.hostile_cases CASE SHM_PATH

Prints one JSON object: the error the client reported (class, field, message), the session state,
and whether the client recovered (went on with the next good frame, or reconnected to a fresh host).
A crash shows as a non-zero exit status.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time

import numpy as np

import kvmfr_client
from kvmfr_client.core import errors
from kvmfr_client.core.native import ffi, lib
from kvmfr_client.core.formats import FrameType, encode
from guest_agent.producer import Producer
from tests.support.shm import CURSOR, FRAME, HEADER, MESSAGE, Q_FRAME, Q_POINTER, Region, off

ROWS = encode(np.full((48, 64, 4), 200, np.uint8), FrameType.BGRA)


def describe(exc) -> dict:
    if exc is None:
        return {"error": None}
    return {"error": type(exc).__name__, "field": getattr(exc, "field", ""), "value": getattr(exc, "value", 0),
            "message": str(exc)}


# ---- header cases: corrupt, then connect; then a fresh host must be accepted -------------------

def header_case(prod: Producer, region: Region, corrupt) -> dict:
    # The host itself writes the bad value: our producer would repair its region at the next tick
    # (new session), so only a heartbeat is kept going, as a host that means it.
    beat = threading.Event()
    prod.stop_ticker()
    ts_at = off(HEADER, "timestamp")

    def heartbeat():
        while not beat.wait(0.01):
            region.mm[ts_at:ts_at + 8] = (time.monotonic_ns() // 1_000_000).to_bytes(8, "little")
    threading.Thread(target=heartbeat, daemon=True).start()
    corrupt(region)
    s = kvmfr_client.open(prod.path)
    try:
        s.wait_connected(1.5)
        result = {"error": None}
    except errors.KvmfrError as exc:
        result = describe(s.last_error or exc)
        result["raised"] = type(exc).__name__
        result["raised_message"] = str(exc)
    result["state"] = s.state.name
    beat.set()
    prod.start()    # a valid host comes back: the client must connect to it
    try:
        s.wait_connected(5)
        result["recovered"] = s.host is not None and s.host.session_id == prod.session_id
    except errors.KvmfrError:
        result["recovered"] = False
    s.close()
    return result


HEADER_CASES = {
    "magic": lambda r: r.set_u32(0, 0x12345678),
    "lgmp_version": lambda r: r.set_u32(off(HEADER, "version"), 7),
    "numQueues": lambda r: r.set_u32(off(HEADER, "numQueues"), 9),
    "udataSize": lambda r: r.set_u32(off(HEADER, "udataSize"), 0x7FFFFFFF),
    "kvmfr_magic": lambda r: r.mm.__setitem__(slice(lib.LGMP_UDATA_OFFSET, lib.LGMP_UDATA_OFFSET + 8), b"GARBAGE!"),
    "kvmfr_version": lambda r: r.set_u32(lib.LGMP_UDATA_OFFSET + 8, 19),
    "ring_slots": lambda r: r.set_u32(r.queue_field(Q_FRAME, "numMessages"), 100000),
    "ring_offset": lambda r: r.set_u32(r.queue_field(Q_FRAME, "messagesOffset"), r.size - 8),
    "queue_lock_held": lambda r: r.set_u32(r.queue_field(Q_FRAME, "lock"), 1),
}


def lgmp_v10(r: Region) -> None:
    """A post-B7 host: magic no longer at offset 0 (the timestamp lives there), LGMP 10 / KVMFR 30."""
    r.mm[0:8] = (123456789).to_bytes(8, "little")
    r.set_u32(lib.LGMP_V10_MAGIC_OFFSET, lib.LGMP_PROTOCOL_MAGIC)
    r.set_u32(lib.LGMP_V10_MAGIC_OFFSET + 4, 10)
    u = lib.LGMP_V10_MAGIC_OFFSET + 20
    r.mm[u:u + 8] = b"KVMFR---"
    r.set_u32(u + 8, 30)


HEADER_CASES["lgmp_v10"] = lgmp_v10


# ---- frame cases: post a frame, corrupt it before the client reads it, then a good frame -------

def frame_case(prod: Producer, region: Region, corrupt, serial_base: int = 1) -> dict:
    s = kvmfr_client.open(prod.path, wait=5)
    time.sleep(0.05)
    prod.post_frame(serial_base, FrameType.BGRA, ROWS, 64, 48)
    corrupt(region, region.newest_payload(Q_FRAME), region.newest_message(Q_FRAME))
    frame = s.next_frame(timeout=0.5)
    result = describe(s.last_error)
    result["got_frame"] = frame is not None
    result["state"] = s.state.name
    prod.end_frame()
    good = None
    deadline = time.monotonic() + 5
    serial = serial_base + 1
    while good is None and time.monotonic() < deadline:
        try:
            prod.post_frame(serial, FrameType.BGRA, ROWS, 64, 48, timeout=0.2)
        except errors.KvmfrError:
            pass
        serial += 1
        good = s.next_frame(timeout=0.3)
    result["recovered"] = good is not None and np.array_equal(good.pixels, ROWS)
    s.close()
    return result


def frame_field(name, value):
    return lambda r, payload, msg: r.set_u32(payload + off(FRAME, name), value)


def damage_rect_outside(r, payload, msg):
    r.set_u32(payload + off(FRAME, "damageRectsCount"), 1)
    rect = payload + off(FRAME, "damageRects")
    for i, v in enumerate((40, 0, 1000, 10)):
        r.set_u32(rect + 4 * i, v)


FRAME_CASES = {
    "frame_type": frame_field("type", 99),
    "frame_width": frame_field("frameWidth", 1 << 20),
    "frame_pitch": frame_field("pitch", 4),
    "frame_rows": lambda r, p, m: (r.set_u32(p + off(FRAME, "frameHeight"), 1000),
                                   r.set_u32(p + off(FRAME, "dataHeight"), 1000),
                                   r.set_u32(p + off(FRAME, "pitch"), 65536)),
    "frame_buffer_offset": frame_field("offset", 0xFFFFFFF0),
    "damage_count": frame_field("damageRectsCount", 65),
    "damage_rect": damage_rect_outside,
    "message_offset": lambda r, p, m: r.set_u32(m + off(MESSAGE, "offset"), r.size - 10),
    "message_size": lambda r, p, m: r.set_u32(m + off(MESSAGE, "size"), 100),
}


def wp_stall(prod: Producer, region: Region) -> dict:
    s = kvmfr_client.open(prod.path, wait=5)
    time.sleep(0.05)
    big = encode(np.zeros((480, 640, 4), np.uint8), FrameType.BGRA)
    prod.begin_frame(1, FrameType.BGRA, 640, 480)
    prod.write_rows(big[:100], 0)          # ... and the host never finishes the frame
    t0 = time.monotonic()
    frame = s.next_frame(timeout=1)
    result = describe(s.last_error)
    result.update(got_frame=frame is not None, state=s.state.name, gave_up_after_s=round(time.monotonic() - t0, 3))
    prod.end_frame()
    prod.post_frame(2, FrameType.BGRA, ROWS, 64, 48)
    good = s.next_frame(timeout=2)
    result["recovered"] = good is not None and good.serial == 2
    s.close()
    return result


# ---- cursor cases --------------------------------------------------------------------------

def cursor_case(prod: Producer, region: Region, corrupt) -> dict:
    from guest_agent.cursor_animation import color_arrow
    s = kvmfr_client.open(prod.path, wait=5)
    time.sleep(0.05)
    prod.post_cursor(10, 10, shape=color_arrow())
    corrupt(region, region.newest_payload(Q_POINTER), region.newest_message(Q_POINTER))
    event = s.next_cursor(timeout=0.5)
    result = describe(s.last_error)
    result.update(got_event=event is not None, state=s.state.name)
    prod.post_cursor(20, 30, shape=color_arrow())
    good = s.next_cursor(timeout=1)
    result["recovered"] = good is not None and (good.x, good.y) == (20, 30) and good.shape is not None
    s.close()
    return result


CURSOR_CASES = {
    "cursor_width": lambda r, p, m: r.set_u32(p + off(CURSOR, "width"), 600),
    "cursor_pitch": lambda r, p, m: r.set_u32(p + off(CURSOR, "pitch"), 1),
    "cursor_type": lambda r, p, m: r.set_u32(p + off(CURSOR, "type"), 7),
    "cursor_height": lambda r, p, m: r.set_u32(m + off(MESSAGE, "size"), 64),
    "cursor_message_offset": lambda r, p, m: r.set_u32(m + off(MESSAGE, "offset"), 16),
}


# ---- live session cases ----------------------------------------------------------------------

def kicked(prod: Producer, region: Region) -> dict:
    """The host marks us BAD: the client notices, resubscribes, and goes on."""
    s = kvmfr_client.open(prod.path, wait=5)
    slot = s.queue_stats(Q_FRAME)["slot"]
    subs_at = region.queue_field(Q_FRAME, "subs")
    region.mm[subs_at:subs_at + 8] = (region.u64(subs_at) | (1 << slot)).to_bytes(8, "little")
    prod.post_frame(1, FrameType.BGRA, ROWS, 64, 48)
    s.next_frame(timeout=0.3)
    result = describe(s.last_error)
    result["state_after"] = s.state.name
    result["recovered"] = _frames_again(s, prod, serial=2, connect_timeout=3)
    return result


def position_out_of_range(prod: Producer, region: Region) -> dict:
    s = kvmfr_client.open(prod.path, wait=5)
    region.set_u32(region.queue_field(Q_FRAME, "position"), 999)
    s.next_frame(timeout=0.3)
    result = describe(s.last_error)
    result["state"] = s.state.name
    prod.start()
    result["recovered"] = _frames_again(s, prod, serial=1, connect_timeout=5)
    return result


def _frames_again(s, prod: Producer, serial: int, connect_timeout: float) -> bool:
    """Whether ``s`` connects again and receives the next frame ``prod`` posts; closes ``s``."""
    s.wait_connected(connect_timeout)
    time.sleep(0.05)
    prod.post_frame(serial, FrameType.BGRA, ROWS, 64, 48)
    recovered = s.next_frame(timeout=2) is not None
    s.close()
    return recovered


def fuzz(prod: Producer, region: Region, seconds: float = 3.0) -> dict:
    """Random bytes thrown at everything the client reads, while frames flow. Must not crash or hang."""
    s = kvmfr_client.open(prod.path, wait=5)
    stop = threading.Event()
    rng = random.Random(1234)
    locks = {region.queue_field(q, f) for q in (Q_FRAME, Q_POINTER) for f in ("lock", "cMsgLock")}
    ranges = [(0, lib.LGMP_HEADER_SIZE + 256)]
    for q in (Q_FRAME, Q_POINTER):
        ring = region.u32(region.queue_field(q, "messagesOffset"))
        ranges.append((ring, ring + 16 * region.u32(region.queue_field(q, "numMessages"))))

    def producer_loop():
        serial = 0
        while not stop.is_set():
            serial += 1
            try:
                prod.post_frame(serial, FrameType.BGRA, ROWS, 64, 48, timeout=0.05)
                ranges_payload = region.newest_payload(Q_FRAME)
                if ranges_payload + ffi.sizeof(FRAME) < region.size:
                    ranges.append((ranges_payload, ranges_payload + ffi.sizeof(FRAME)))
                    del ranges[3:-1]
            except (errors.KvmfrError, KeyError):
                pass
            try:
                prod.post_cursor(serial % 100, 5, timeout=0.01)
            except errors.KvmfrError:
                pass
            time.sleep(0.002)

    def mutate():
        while not stop.is_set():
            lo, hi = rng.choice(ranges)
            at = rng.randrange(lo, max(lo + 1, hi - 4)) & ~3
            if at in locks or at == 0 and rng.random() < 0.9:
                continue
            region.set_u32(at, rng.choice((0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rng.getrandbits(32), rng.getrandbits(12))))
            time.sleep(0.0002)

    threads = [threading.Thread(target=producer_loop, daemon=True), threading.Thread(target=mutate, daemon=True)]
    for t in threads:
        t.start()
    frames = cursors = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frames += s.next_frame(timeout=0.02) is not None
        cursors += s.next_cursor(timeout=0.0) is not None
        if s.state is not kvmfr_client.SessionState.CONNECTED and region.u32(0) != lib.LGMP_PROTOCOL_MAGIC:
            region.set_u32(0, lib.LGMP_PROTOCOL_MAGIC)
    stop.set()
    for t in threads:
        t.join(2)
    counts = dict(s.error_counts)
    s.close()
    return {"error": None, "frames": frames, "cursors": cursors, "errors": counts, "completed": True}


def main(case: str, path: str) -> None:
    prod = Producer(path, create_size=16 << 20)
    region = Region(path)
    try:
        if case in HEADER_CASES:
            result = header_case(prod, region, HEADER_CASES[case])
        elif case in FRAME_CASES:
            result = frame_case(prod, region, FRAME_CASES[case])
        elif case in CURSOR_CASES:
            result = cursor_case(prod, region, CURSOR_CASES[case])
        else:
            result = {"wp_stall": wp_stall, "kicked": kicked, "position": position_out_of_range,
                      "fuzz": fuzz}[case](prod, region)
    finally:
        prod.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
