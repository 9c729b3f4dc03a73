"""One kind of vandal write at a time into a running `kvmfr-agent` with a subscribed reader, and how long
the agent stays unhealthy afterwards (as the vandal soak's watcher judges it: tools/soak/shmwatch.py).

Used by tests/guest_agent/test_producer_vandal.py; also runs alone for a wider sweep:

    nice -n 19 .venv/bin/python -m tests.guest_agent.vandal_probe [FIELD...]

The fields and values are the vandal's own (tools/soak/vandal.py): the same struct fields, found in the
live layout the way it finds them, and its value classes (boundary values, small numbers, the file size
+/- 64, random words).
"""

from __future__ import annotations

import os
import random
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import kvmfr_client
from kvmfr_client.core.native import ffi, lib
from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for
from tools.soak import vandal as vandal_mod
from tools.soak.shmwatch import AgentHealth

HEADER, QUEUE, MESSAGE = vandal_mod.HEADER, vandal_mod.QUEUE, vandal_mod.MESSAGE
RECOVER_S = 1.5     # the agent must be healthy again this long after a write
STUCK_S = 4.0       # how long a probe waits before calling the agent stuck


def values(size: int, seed: int = 12) -> list[int]:
    """The vandal's value classes (vandal.Vandal._value), each class represented."""
    rng = random.Random(seed)
    return (list(vandal_mod._NASTY32) + [3, 100, 4095] + [size - 64, size + 63]
            + [rng.getrandbits(64) for _ in range(2)] + [0xFFFFFFFF_FFFFFFFF, 0xFFFFFFFF_00000000])


@dataclass
class Target:
    """A field the vandal writes: where it is in the live layout and how wide its write is."""
    name: str
    where: str          # "header", "queue:<id>", "slot:<id>", "udata"
    offset: int         # within that struct
    size: int           # bytes written (the vandal writes at most 8 of a field, or 10 % of the time all of it)
    whole: bool = False  # random bytes over the whole field (the vandal's 10 % case)


def _field_list(struct_name: str) -> list[tuple[str, int, int]]:
    t = ffi.typeof(struct_name)
    return [(name, f.offset, ffi.sizeof(f.type)) for name, f in t.fields]


def targets() -> dict[str, list[Target]]:
    """Field classes -> the writes in each (what tools/soak/vandal.py writes, field by field)."""
    q_start = ffi.offsetof(HEADER, "queues")
    out: dict[str, list[Target]] = {"header": [], "frame_queue": [], "pointer_queue": [], "ring_slot": [],
                                     "udata": []}
    for name, o, size in _field_list(HEADER):
        if o < q_start:
            out["header"].append(Target(name, "header", o, min(size, 8)))
    for cls, qid in (("frame_queue", lib.LGMP_Q_FRAME), ("pointer_queue", lib.LGMP_Q_POINTER)):
        for name, o, size in _field_list(QUEUE):
            out[cls].append(Target(name, f"queue:{qid}", o, min(size, 8)))
            if size > 8:
                out[cls].append(Target(name + "[all]", f"queue:{qid}", o, size, whole=True))
    for qid in (lib.LGMP_Q_FRAME, lib.LGMP_Q_POINTER):
        for name, o, size in _field_list(MESSAGE):
            out["ring_slot"].append(Target(f"q{qid}.{name}", f"slot:{qid}", o, size))
    # Two writes of one burst that only together leave no subscriber slot a client may reclaim.
    for qid in (lib.LGMP_Q_FRAME, lib.LGMP_Q_POINTER):
        out.setdefault("subscriber_combos", []).append(Target(f"q{qid}.subs+timeout[all]", f"combo:{qid}", 0, 8))
    out["udata"].append(Target("udataSize", "udata", 0, 4))
    out["udata"].append(Target("udata[0..8]", "udata", 4, 8))
    return out


class Rig:
    """A small agent (320x240, 120 fps, test pattern) with one subscribed reader (frames and cursor in two
    threads, as the soak's readers), the soak's health watcher, and the vandal's own mapping."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.shm = Path("/dev/shm") / f"kvmfr-probe-{os.getpid()}-{id(self)}"
        self.log = workdir / "agent.log"
        self.agent = None
        self.health: AgentHealth | None = None
        self.vandal = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.reader_errors: list[str] = []

    # -- the pieces ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.shm.unlink(missing_ok=True)
        self.agent = start_agent(self.shm, size=(320, 240), fps=120, log=self.log)
        wait_for(lambda: self.shm.exists() and self.shm.stat().st_size > 0, 20, "the agent to create its file")
        self.vandal = vandal_mod.Vandal(str(self.shm), 1)
        wait_for(lambda: self.vandal._u32(0) == lib.LGMP_PROTOCOL_MAGIC, 20, "the agent's LGMP header")
        self._stop.clear()
        t = threading.Thread(target=self._reader, daemon=True, name="probe-reader")
        t.start()
        self._threads = [t]
        self.health = AgentHealth(str(self.shm))
        wait_for(self.health.healthy, 20, "the agent to be healthy with a reader")

    def _reader(self) -> None:
        try:
            with kvmfr_client.open(str(self.shm)) as s:
                def cursors():
                    while not self._stop.is_set():
                        s.next_cursor(timeout=0.05)
                c = threading.Thread(target=cursors, daemon=True, name="probe-cursor")
                c.start()
                while not self._stop.is_set():
                    s.next_frame(timeout=0.1)
                c.join(2)
        except Exception as exc:  # noqa: BLE001 - a reader that raises is a finding of its own
            self.reader_errors.append(f"{type(exc).__name__}: {exc}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> str:
        self._stop.set()
        for t in self._threads:
            t.join(3)
        if self.health:
            self.health.close()
            self.health = None
        if self.vandal:
            self.vandal.close()
            self.vandal = None
        out = ""
        if self.agent is not None:
            stop_process(self.agent, timeout=2)
            out = self.log.read_text(errors="replace") if self.log.exists() else ""
            self.agent = None
        self.shm.unlink(missing_ok=True)
        return out

    # -- writing --------------------------------------------------------------------------------------
    def address(self, t: Target) -> int | None:
        v = self.vandal
        if t.where == "header":
            return t.offset
        if t.where == "udata":
            return ffi.offsetof(HEADER, "udataSize") + t.offset
        kind, qid = t.where.split(":")
        for q in v._queues():
            if v._u32(q + ffi.offsetof(QUEUE, "queueID")) == int(qid):
                if kind == "queue":
                    return q + t.offset
                n = v._u32(q + ffi.offsetof(QUEUE, "numMessages"))
                pos = v._u32(q + ffi.offsetof(QUEUE, "position"))
                ring = v._u32(q + ffi.offsetof(QUEUE, "messagesOffset"))
                if not 0 < n <= 64:
                    return None
                # the slot of the newest message: the one a subscriber may still have pending
                return ring + ((pos + n - 1) % n) * ffi.sizeof(MESSAGE) + t.offset
        return None

    def write(self, t: Target, value: int, rng: random.Random) -> bool:
        if t.where.startswith("combo:"):
            # every slot kicked (ON and BAD) with timeouts no client's clock reaches, then `value` in subs
            qid = int(t.where.split(":")[1])
            stamps = Target("timeout", f"queue:{qid}", ffi.offsetof(QUEUE, "timeout"), 8 * 32)
            at = self.address(stamps)
            if at is None:
                return False
            self.vandal.mm[at:at + stamps.size] = b"\xff" * stamps.size
            t = Target("subs", f"queue:{qid}", ffi.offsetof(QUEUE, "subs"), 8)
        at = self.address(t)
        if at is None or at + t.size > self.vandal.size:
            return False
        data = rng.randbytes(t.size) if t.whole else (value & ((1 << (8 * t.size)) - 1)).to_bytes(t.size, "little")
        self.vandal.mm[at:at + t.size] = data
        return True

    def _pulse(self) -> tuple[int, int | None]:
        """(heartbeat, frame queue position) as a client would find them (None: no frame queue)."""
        v = self.vandal
        hb = struct.unpack_from("<Q", v.mm, ffi.offsetof(HEADER, "timestamp"))[0]
        for q in v._queues():
            if v._u32(q + ffi.offsetof(QUEUE, "queueID")) == lib.LGMP_Q_FRAME:
                return hb, v._u32(q + ffi.offsetof(QUEUE, "position"))
        return hb, None

    def probe(self, t: Target, value: int, rng: random.Random) -> float | None:
        """Write once; seconds until the agent is healthy again: the soak's watcher says healthy, the
        heartbeat ticked and three frames were posted after the write (float('inf'): not within
        STUCK_S; None: the live layout had no place for this write). An effect that shows later (a
        subscriber kicked a second on) is caught by the next probe, which starts by waiting for health."""
        wait_for(self.health.healthy, STUCK_S, "the agent to be healthy before the write")
        t0 = time.monotonic()
        if not self.write(t, value, rng):
            return None
        hb0, pos = self._pulse()
        beats = moves = 0
        while True:
            now = time.monotonic()
            hb, p = self._pulse()
            beats += hb != hb0
            if p is not None and p != pos:
                moves += 1
            hb0, pos = hb, p
            if beats and moves >= 3 and self.health.healthy():
                return now - t0
            if now - t0 > STUCK_S:
                return float("inf")
            time.sleep(0.005)


def sweep(names: list[str] | None = None, out=sys.stdout) -> list[tuple[str, str, int, float]]:
    """Every target of the named classes (all when None) x every value; returns the slow ones."""
    bad = []
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as d:
        rig = Rig(Path(d))
        rig.start()
        try:
            for cls, ts in targets().items():
                if names and cls not in names and not any(t.name in names for t in ts):
                    continue
                for t in ts:
                    if names and cls not in names and t.name not in names:
                        continue
                    vals = [0] if t.whole else values(rig.vandal.size)
                    for v in vals:
                        took = rig.probe(t, v, rng)
                        if took is None:
                            continue
                        if took > 0.3:
                            print(f"  {t.name} = {v:#x}: {took:.2f} s", file=out, flush=True)
                        if took > RECOVER_S or rig.agent.poll() is not None:
                            line = f"{cls} {t.name} = {v:#x}: unhealthy {took:.2f} s"
                            print(line, file=out, flush=True)
                            bad.append((cls, t.name, v, took))
                            rig.restart()
                print(f"{cls}: done", file=out, flush=True)
        finally:
            tail = rig.stop()
            print(tail[-3000:], file=out)
    return bad


if __name__ == "__main__":
    sweep(sys.argv[1:] or None)
