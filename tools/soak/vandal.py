"""The vandal: maps the live shared-memory file and writes random values into it in bursts.

Run as a child of the harness (``python -m tools.soak.vandal FILE``). It reads commands on stdin:
``burst SECONDS`` (write at random moments for that long, then answer ``done {counts}`` as one JSON
line) and ``quit``. Targets are found each time by reading the live header (copied, then checked
against the file size before use): the LGMP header fields, the queue table, the KVMFR user data,
the message slots of each ring, the KVMFR frame and cursor structs the messages point at, the frame's
damage rectangles and write pointer, and the pixels. Layouts come from the C header through cffi.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import struct
import sys
import time

from kvmfr_client.core.native import ffi, lib

HEADER = "struct lgmp_header"
QUEUE = "struct lgmp_header_queue"
MESSAGE = "struct lgmp_header_message"
FRAME = "struct kvmfr_frame"
CURSOR = "struct kvmfr_cursor"

TARGETS = ("lgmp_header", "queue_table", "kvmfr_udata", "ring_slot", "frame_struct", "damage_rects",
           "frame_write_pointer", "cursor_struct", "pixels")

_NASTY32 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)


def _fields(struct_name: str) -> list[tuple[int, int]]:
    """(offset, size) of each top-level field of a struct, from cffi."""
    t = ffi.typeof(struct_name)
    return [(f.offset, ffi.sizeof(f.type)) for _, f in t.fields]


class Vandal:
    def __init__(self, path: str, seed: int):
        self.rng = random.Random(seed)
        self.fd = os.open(path, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.mm = mmap.mmap(self.fd, self.size)
        self.header_fields = [f for f in _fields(HEADER) if f[0] < ffi.offsetof(HEADER, "queues")]
        self.queue_fields = _fields(QUEUE)
        self.message_fields = _fields(MESSAGE)
        self.frame_fields = [f for f in _fields(FRAME) if f[0] != ffi.offsetof(FRAME, "damageRects")]
        self.cursor_fields = _fields(CURSOR)

    def close(self) -> None:
        self.mm.close()
        os.close(self.fd)

    # -- reading the live layout (copy, check, use) -------------------------------------------------
    def _u32(self, at: int) -> int:
        return struct.unpack_from("<I", self.mm, at)[0]

    def _queues(self) -> list[int]:
        n = min(self._u32(ffi.offsetof(HEADER, "numQueues")), lib.LGMP_MAX_QUEUES)
        return [ffi.offsetof(HEADER, "queues") + i * ffi.sizeof(QUEUE) for i in range(n)]

    def _slots(self) -> list[tuple[int, int]]:
        """(slot offset, queue id) of every ring slot whose ring lies inside the file."""
        out = []
        for q in self._queues():
            qid = self._u32(q + ffi.offsetof(QUEUE, "queueID"))
            n = self._u32(q + ffi.offsetof(QUEUE, "numMessages"))
            ring = self._u32(q + ffi.offsetof(QUEUE, "messagesOffset"))
            if 0 < n <= 64 and ring + n * ffi.sizeof(MESSAGE) <= self.size:
                out += [(ring + i * ffi.sizeof(MESSAGE), qid) for i in range(n)]
        return out

    def _payload(self, want_qid: int, need: int) -> int | None:
        slots = [s for s, qid in self._slots() if qid == want_qid]
        if not slots:
            return None
        at = self._u32(self.rng.choice(slots) + ffi.offsetof(MESSAGE, "offset"))
        return at if at + need <= self.size else None

    # -- writing ---------------------------------------------------------------------------------------
    def _value(self, size: int) -> bytes:
        r = self.rng.random()
        if r < 0.4:
            v = self.rng.choice(_NASTY32)
        elif r < 0.6:
            v = self.rng.randrange(0, 4096)
        elif r < 0.7:
            v = self.size + self.rng.randrange(-64, 64)
        else:
            v = self.rng.getrandbits(64)
        return (v & ((1 << (8 * size)) - 1)).to_bytes(size, "little") if size <= 8 else self.rng.randbytes(size)

    def _poke(self, base: int, fields: list[tuple[int, int]]) -> bool:
        off, size = self.rng.choice(fields)
        size = min(size, 8) if self.rng.random() < 0.9 else size
        at = base + off
        if at < 0 or at + size > self.size:
            return False
        self.mm[at:at + size] = self._value(size)
        return True

    def strike(self) -> str | None:
        """One random write; returns the target hit (None when the live layout gave no place for it)."""
        target = self.rng.choice(TARGETS)
        ok = False
        if target == "lgmp_header":
            ok = self._poke(0, self.header_fields)
        elif target == "queue_table":
            queues = self._queues() or [ffi.offsetof(HEADER, "queues")]
            ok = self._poke(self.rng.choice(queues), self.queue_fields)
        elif target == "kvmfr_udata":
            ok = self._poke(ffi.offsetof(HEADER, "udataSize"), [(0, 4)] + [(4 + i, 1) for i in range(0, 128)])
        elif target == "ring_slot":
            slots = self._slots()
            ok = bool(slots) and self._poke(self.rng.choice(slots)[0], self.message_fields)
        elif target == "frame_struct":
            at = self._payload(lib.LGMP_Q_FRAME, ffi.sizeof(FRAME))
            ok = at is not None and self._poke(at, self.frame_fields)
        elif target == "damage_rects":
            at = self._payload(lib.LGMP_Q_FRAME, ffi.sizeof(FRAME))
            if at is not None:
                rects = at + ffi.offsetof(FRAME, "damageRects")
                count_at = at + ffi.offsetof(FRAME, "damageRectsCount")
                if self.rng.random() < 0.3:
                    self.mm[count_at:count_at + 4] = self._value(4)
                    ok = True
                else:
                    i = self.rng.randrange(lib.KVMFR_MAX_DAMAGE_RECTS)
                    ok = self._poke(rects + i * ffi.sizeof("struct kvmfr_damage_rect"),
                                    _fields("struct kvmfr_damage_rect"))
        elif target in ("frame_write_pointer", "pixels"):
            at = self._payload(lib.LGMP_Q_FRAME, ffi.sizeof(FRAME))
            if at is not None:
                buf = at + self._u32(at + ffi.offsetof(FRAME, "offset"))
                if target == "frame_write_pointer":
                    ok = self._poke(buf, [(0, lib.FB_WP_SIZE)])
                elif buf + lib.FB_WP_SIZE < self.size:
                    start = self.rng.randrange(buf + lib.FB_WP_SIZE, min(self.size, buf + (8 << 20)))
                    n = min(self.rng.choice((1, 4, 64, 4096)), self.size - start)
                    self.mm[start:start + n] = self.rng.randbytes(n)
                    ok = True
        elif target == "cursor_struct":
            at = self._payload(lib.LGMP_Q_POINTER, ffi.sizeof(CURSOR))
            ok = at is not None and self._poke(at, self.cursor_fields)
        return target if ok else None

    def burst(self, seconds: float) -> dict:
        counts = {t: 0 for t in TARGETS}
        counts["missed"] = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(self.rng.choice((1, 1, 1, 3, 10))):
                hit = self.strike()
                counts[hit or "missed"] += 1
            time.sleep(self.rng.choice((0.0005, 0.002, 0.01, 0.05)))
        return counts


def main(argv: list[str]) -> int:
    vandal = Vandal(argv[0], int(argv[1]) if len(argv) > 1 else 1)
    try:
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "quit":
                break
            if cmd[0] == "burst":
                print("done " + json.dumps(vandal.burst(float(cmd[1]))), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        vandal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
