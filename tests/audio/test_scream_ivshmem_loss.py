"""The Scream IVSHMEM file shrinks or vanishes under a running reader (``truncate -s 0``, the VM's start
script deleting and re-creating it): the reader says so once, waits, and plays the new file."""

from __future__ import annotations

import logging
import os
import subprocess
import time

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
