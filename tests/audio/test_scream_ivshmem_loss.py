"""The Scream IVSHMEM file shrinks or vanishes under a running reader (``truncate -s 0``, the VM's start
script deleting and re-creating it): the reader says so once, waits, and plays the new file."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from guest_agent.audio.scream_sender import ScreamIvshmemWriter
from kvmfr_client.audio.formats import PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.scream_ivshmem import ScreamIvshmemSource
from tests.support.process import wait_for

FMT = PcmFormat(48000, 16, 2, 0x3)
SIZE = 64 * 1024


def _feed_until(writer: ScreamIvshmemWriter, cond, timeout: float, what: str) -> None:
    def step() -> bool:
        writer.write_chunk(bytes(writer.chunk_size))
        return cond()
    wait_for(step, timeout, what, interval=0.02)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and r.name == "kvmfr_client.audio.scream_ivshmem"]


def test_truncate_to_zero_then_deleted_and_recreated_under_a_running_reader(shm_path, caplog):
    caplog.set_level(logging.INFO, logger="kvmfr_client.audio.scream_ivshmem")
    writer = ScreamIvshmemWriter(str(shm_path), FMT, size=SIZE)
    src = ScreamIvshmemSource(JitterBuffer(), str(shm_path), poll=0.002)
    src.start()
    try:
        _feed_until(writer, lambda: src.chunks >= 3, 5, "the reader to play the ring")
        writer.map.close()  # the guest side goes away with the file (it would fault on it, too)
        subprocess.run(["truncate", "-s", "0", str(shm_path)], check=True)
        wait_for(lambda: src.lost_mappings == 1, 5, "the reader to notice the truncated file", interval=0.01)
        time.sleep(0.5)  # several polls of an empty file: still one report
        assert src._thread.is_alive()
        assert len(_warnings(caplog)) == 1, _warnings(caplog)
        assert "changed size" in _warnings(caplog)[0] and str(shm_path) in _warnings(caplog)[0]

        writer = ScreamIvshmemWriter(str(shm_path), FMT, size=SIZE)  # grows the same file back
        before = src.chunks
        _feed_until(writer, lambda: src.chunks >= before + 3, 5, "audio to resume on the regrown file")
        assert any("is back" in r.getMessage() for r in caplog.records)

        writer.map.close()
        os.unlink(shm_path)
        writer = ScreamIvshmemWriter(str(shm_path), FMT, size=SIZE)  # a new file at the same path
        before = src.chunks
        _feed_until(writer, lambda: src.lost_mappings == 2 and src.chunks >= before + 3, 5,
                    "audio to resume on the re-created file")
        assert src._thread.is_alive()
        assert len(_warnings(caplog)) == 2, _warnings(caplog)
        assert "deleted or replaced" in _warnings(caplog)[1]
    finally:
        src.stop()
        writer.close()


_HAMMER = r"""
import json, os, sys, threading, time
from kvmfr_client.audio import scream_wire
from kvmfr_client.audio.formats import PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.scream_ivshmem import ScreamIvshmemSource

path, cycles = sys.argv[1], int(sys.argv[2])
fmt = PcmFormat(384000, 32, 8, 0x63F)             # the largest chunks: 240 KiB each, long copies
chunk = scream_wire.ivshmem_chunk_size(fmt)
size = 24 + 16 * chunk
header = scream_wire.RingHeader(scream_wire.IVSHMEM_MAGIC, 0, 24, 16, chunk, scream_wire.rate_marker(fmt.rate),
                                32, 8, 0x63F)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, size)
os.pwrite(fd, header.pack(), 0)
src = ScreamIvshmemSource(JitterBuffer(), path, poll=0.002)
src.start()
stop = threading.Event()

def writer():                                     # file I/O, not a mapping: the writer cannot fault
    idx = 0
    while not stop.is_set():                      # a new chunk every 0.3 ms: the reader copies nearly all the time
        idx = (idx + 1) % 16
        os.pwrite(fd, idx.to_bytes(2, "little"), 4)
        time.sleep(0.0003)

t = threading.Thread(target=writer)
t.start()
for k in range(cycles):                           # let the reader map and copy, then shrink under it
    time.sleep(0.02 + (k % 5) * 0.01)
    os.ftruncate(fd, 4096 * (k % 3))
    time.sleep(0.001)
    os.ftruncate(fd, size)
    os.pwrite(fd, header.pack(), 0)
time.sleep(0.3)
chunks = src.chunks
time.sleep(0.3)
stop.set()
t.join()
print(json.dumps({"alive": src._thread.is_alive(), "lost": src.lost_mappings, "chunks": src.chunks,
                  "chunks_after": src.chunks - chunks}))
src.stop()
"""


@pytest.mark.slow
def test_a_file_shrinking_during_copies_never_kills_the_reader(shm_path):
    """Shrink and regrow the file 250 times while the reader copies 240 KiB chunks out of it back to back:
    shrinks land inside copies (past the per-poll size check), which without the native SIGBUS guard
    kill the process. In a child process, so a crash is a failure here, not the end of the run."""
    proc = subprocess.run([sys.executable, "-c", _HAMMER, str(shm_path), "250"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"the reader's process ended with {proc.returncode}: {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["alive"] and result["lost"] > 0, result
    assert result["chunks_after"] > 0, f"no audio after the file settled: {result}"
