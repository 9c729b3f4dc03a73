"""Seed inputs for the native fuzz targets (layout: fuzz/native/image.h).

    python fuzz/native/make_seeds.py producer-memory OUTDIR   # our producer's memory, for the reader
    python fuzz/native/make_seeds.py dump FILE.bin[.gz] OUTDIR  # a memory dump (the B7 or master fixtures)
    python fuzz/native/make_seeds.py producer-scripts OUTDIR  # step scripts for the producer target

The committed corpus (fuzz/native/corpus/) holds only what our own producer wrote and hand-written
scripts; scripts/fuzz.sh turns the Looking Glass B7 and master dumps in ../shared/fixtures/lg-b7 and
lg-master into seeds at run time, in a scratch folder, so nothing derived from them enters the repository.
A master (LGMP 12) image gets control[3] bit 1 (fuzz_reader.c: the layout whose heartbeat it moves).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

HEAD = 8192          # header, queue table, rings: copied whole
MAX_RUN = 8192       # any other non-zero run is cut to this (frame structs, write pointers, first rows)
GAP = 256            # zero gaps shorter than this stay inside a run (structs hold zero fields)
# (control[0], control[2]): copy modes, and how far back to start reading (see fuzz_reader.c)
CONTROLS = ((0, 0), (1 | 8, 1), (2, 0), (4, 1), (16 | 32, 0), (64 | 1, 2), (128, 0))


def nonzero_runs(mem: bytes, start: int):
    """(offset, bytes) of the non-zero parts of mem[start:], cut to MAX_RUN."""
    view = memoryview(mem)
    pos, n = start, len(mem)
    while pos < n:
        # skip zeros quickly, a page at a time
        page = pos & ~4095
        while page < n and not any(view[page:page + 4096]):
            page += 4096
        pos = max(pos, page)
        while pos < n and mem[pos] == 0:
            pos += 1
        if pos >= n:
            return
        end, zeros = pos, 0
        while end < n and zeros < GAP and end - pos < MAX_RUN:
            zeros = zeros + 1 if mem[end] == 0 else 0
            end += 1
        cut = end - pos >= MAX_RUN
        end -= zeros
        yield pos, bytes(mem[pos:end])
        pos = end + zeros
        if cut:
            # The rest of a long run (frame pixels) adds nothing the first MAX_RUN bytes do not.
            zeros = 0
            while pos < n and zeros < GAP:
                zeros = zeros + 1 if mem[pos] == 0 else 0
                pos += 1


WINDOW_BYTES = 12288   # per 1 MiB of the image: a frame block's struct, write pointer and first rows


LGMP_MAGIC = b"LGMP"
LGMP12_MAGIC_OFFSET = 9664


def is_master(mem: bytes) -> bool:
    """An LGMP 12 image: its magic at 9664, none at 0 (where B7 keeps it)."""
    return mem[:4] != LGMP_MAGIC and mem[LGMP12_MAGIC_OFFSET:LGMP12_MAGIC_OFFSET + 4] == LGMP_MAGIC


def encode(mem: bytes, control: int, back: int) -> bytes:
    out = bytearray(struct.pack("<4BH", control, 1, back, 2 if is_master(mem) else 0, HEAD))
    out += mem[:HEAD]
    kept: dict[int, int] = {}
    for off, run in nonzero_runs(mem, HEAD):
        room = WINDOW_BYTES - kept.get(off >> 20, 0)
        if room <= 0:
            continue
        run = run[:room]
        kept[off >> 20] = kept.get(off >> 20, 0) + len(run)
        out += struct.pack("<IH", off, len(run)) + run
    return bytes(out)


def write_seeds(mem: bytes, outdir: Path, stem: str) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for control, back in CONTROLS:
        data = encode(mem, control, back)
        path = outdir / f"{stem}-c{control:02x}{back}-{hashlib.sha1(data).hexdigest()[:8]}"
        path.write_bytes(data)
        written.append(path)
    return written


def producer_memory() -> list[tuple[str, bytes]]:
    """Images of our producer's region with a subscribed reader and messages pending in both queues."""
    import numpy as np

    from guest_agent.producer import Producer
    from kvmfr_client.core.cursor import CursorType
    from kvmfr_client.core.formats import FrameType, encode as encode_rows
    from kvmfr_client.core.native import ffi, lib, new_error

    images = []
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        for ftype, damage in ((FrameType.BGRA, ((2, 3, 4, 5),)), (FrameType.RGB_24, ()), (FrameType.RGBA16F, ())):
            path = os.path.join(tmp, f"seed-{ftype.name}")
            prod = Producer(path, create_size=8 << 20, tick_ms=0)
            c = ffi.gc(lib.kv_client_new(), lib.kv_client_free)
            err, info = new_error(), ffi.new("struct kv_host_info *")
            lib.kv_client_open(c, path.encode(), err)
            lib.kv_client_init(c)
            prod.tick()
            time.sleep(0.002)
            prod.tick()
            assert lib.kv_client_session_init(c, info, err) == 0, ffi.string(err.message)
            for q in (lib.LGMP_Q_FRAME, lib.LGMP_Q_POINTER):
                assert lib.kv_client_subscribe(c, q, err) == 0
            img = np.arange(16 * 12 * 4, dtype=np.uint8).reshape(12, 16, 4)
            rows = encode_rows(img, ftype)
            prod.post_frame(1, ftype, rows, 16, 12)
            prod.post_frame(2, ftype, rows, 16, 12, damage=damage)
            shape = (CursorType.COLOR, 8, 8, 32, 1, 1, bytes(range(256)))
            prod.post_cursor(5, 6, shape=shape)
            prod.post_cursor(7, 8)
            serial = ffi.new("uint32_t *")
            lib.kv_client_send(c, bytes(12), 12, serial, err)
            with open(path, "rb") as f:
                mem = f.read()
            images.append((f"producer-{ftype.name.lower()}", mem))
            if ftype == FrameType.BGRA:
                images.append(("producer-misaligned", shifted_newest_frame(mem, 2)))
            prod.close()
    return images


def shifted_newest_frame(mem: bytes, by: int) -> bytes:
    """The image with its newest frame message moved ``by`` bytes, struct and pixels with it: a valid
    frame at a misaligned offset, whose write pointer an atomic load must never touch (the reader
    refuses it). Keeps that path in every run of the reader target."""
    from kvmfr_client.core.native import ffi, lib

    m = bytearray(mem)
    u32 = lambda at: struct.unpack_from("<I", m, at)[0]  # noqa: E731
    queues = ffi.offsetof("struct lgmp_header", "queues")
    qsize = ffi.sizeof("struct lgmp_header_queue")
    for i in range(u32(ffi.offsetof("struct lgmp_header", "numQueues"))):
        q = queues + i * qsize
        if u32(q + ffi.offsetof("struct lgmp_header_queue", "queueID")) != lib.LGMP_Q_FRAME:
            continue
        n = u32(q + ffi.offsetof("struct lgmp_header_queue", "numMessages"))
        pos = u32(q + ffi.offsetof("struct lgmp_header_queue", "position"))
        ring = u32(q + ffi.offsetof("struct lgmp_header_queue", "messagesOffset"))
        entry = ring + ((pos + n - 1) % n) * ffi.sizeof("struct lgmp_header_message")
        at = entry + ffi.offsetof("struct lgmp_header_message", "offset")
        msg = u32(at)
        length = 8192
        m[msg + by:msg + by + length] = mem[msg:msg + length]
        struct.pack_into("<I", m, at, msg + by)
    return bytes(m)


def producer_scripts() -> list[tuple[str, bytes]]:
    """Step scripts for fuzz_producer.c: opcode bytes and operands."""
    sub, read = b"\x07\x01", b"\x07\x00"
    tick = b"\x02"
    frame = b"\x03\x01\x01\x01\x05"
    cursor = b"\x04\x07\x10\x20\x00"

    def put(sel: int, value: int, arg: int = 0) -> bytes:
        return b"\x00" + struct.pack("<BHI", sel, arg, value & 0xFFFFFFFF)

    scripts = [
        ("post-and-read", sub + frame + cursor + tick + read + frame + read + b"\x05\x06"),
        ("lock-held", sub + put(0x03, 1) + frame + tick + tick + frame),
        ("lock-garbage", sub + put(0x13, 0xDEADBEEF) + put(0x09 | 0x10, 7) + cursor + tick + tick),
        ("count-garbage", sub + frame + put(0x06, 0x7FFFFFF0) + frame + tick),
        ("magic", sub + put(0x00, 0x12345678) + tick + frame + read),
        ("ghost-subscribers", sub + b"\x08\x04" + bytes(4) + b"\xff\xff\xff\xff" + frame + tick + frame),
        ("client-messages", sub + read + b"\x07\x02" + put(0x1a, 3) + put(0x1c, 0xFFFF, 8) + tick + b"\x05"),
        ("position", sub + frame + put(0x08, 999) + tick + frame),
        ("restart", sub + frame + b"\x09" + frame + read),
        ("timed-frame", sub + b"\x03\x01\x01\x11\x05" + tick + read),
    ]
    # The first byte chooses the layout: each script for B7 (0) and for master (1).
    return [(stem, b"\x00" + data) for stem, data in scripts] + \
        [(stem + "-master", b"\x01" + data) for stem, data in scripts]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mode = argv[0]
    if mode == "producer-memory":
        out = Path(argv[1])
        for stem, mem in producer_memory():
            write_seeds(mem, out, stem)
    elif mode == "dump" and len(argv) == 3:
        src, out = Path(argv[1]), Path(argv[2])
        raw = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
        write_seeds(raw, out, src.name.split(".")[0])
    elif mode == "producer-scripts":
        out = Path(argv[1])
        out.mkdir(parents=True, exist_ok=True)
        for stem, data in producer_scripts():
            (out / stem).write_bytes(data)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
