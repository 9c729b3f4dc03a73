"""Fuzz the Scream IVSHMEM reader: header and ring on a memory image built from the input, changed by a
hostile writer between polls.

The first record's bytes are the image (at most 256 KiB; ``arg`` x 4 KiB of zeros appended, so large
rings need no large inputs). Then ``kind % 4``: 0 polls the reader once, 1 writes the record's bytes at
the offset in their first two bytes (header fields, write_idx, chunk data), 2 sets write_idx to ``arg``,
3 advances write_idx by ``arg`` as the writer does. ``poll`` documents that nothing in the region makes it
raise: any exception is a finding. Checked: every chunk it plays is one whole chunk of the header's size,
and the jitter buffer stays within its cap.
"""

from __future__ import annotations

import struct

import atheris

from _harness import main, records

with atheris.instrument_imports(include=["kvmfr_client.audio"]):
    from kvmfr_client.audio import scream_ivshmem, scream_wire
    from kvmfr_client.audio.jitter_buffer import JitterBuffer

MAX_IMAGE = 256 * 1024
MAX_POLLS = 64
BUFFER = JitterBuffer(max_seconds=0.5)
SOURCE = scream_ivshmem.ScreamIvshmemSource(BUFFER, "/nonexistent/fuzz")  # never started: no file


def reset() -> None:
    BUFFER.clear()
    SOURCE._layout, SOURCE._fmt, SOURCE._read_idx = None, None, 0


def TestOneInput(data: bytes) -> None:
    reset()
    parts = records(data)
    first = next(parts, None)
    if first is None:
        return
    _, pad, image = first
    region = bytearray(image[:MAX_IMAGE]) + bytes(pad * 4096)
    if len(region) < scream_wire.IVSHMEM_HEADER.size:
        return  # the reader never maps a file this small (it waits for the header to fit)
    polls = 0
    for kind, arg, payload in parts:
        op = kind % 4
        if op == 0:
            polls += 1
            if polls > MAX_POLLS:
                break
            chunks = SOURCE.chunks
            SOURCE.poll(region, len(region))
            if SOURCE.chunks != chunks:
                header = scream_wire.RingHeader.unpack(region)
                assert header.chunk_size <= scream_wire.MAX_CHUNK_SIZE
            assert BUFFER.level() <= 0.5 + scream_wire.MAX_CHUNK_SIZE / 8000, BUFFER.level()
        elif op == 1 and len(payload) >= 2:
            where = struct.unpack_from("<H", payload)[0] % len(region)
            chunk = payload[2:2 + len(region) - where]
            region[where:where + len(chunk)] = chunk
        elif op == 2:
            scream_wire.write_write_idx(region, arg)
        elif op == 3:
            idx = struct.unpack_from("<H", region, scream_wire.WRITE_IDX_OFFSET)[0]
            max_chunks = struct.unpack_from("<H", region, 8)[0] or 1
            scream_wire.write_write_idx(region, (idx + arg) % max_chunks)


if __name__ == "__main__":
    main(TestOneInput)
