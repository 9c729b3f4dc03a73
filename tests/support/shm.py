"""Poking at a live region from tests: offsets come from the C header through cffi, never restated."""

from __future__ import annotations

import mmap
import os
import struct

from kvmfr_client.core.native import ffi, lib

HEADER = "struct lgmp_header"
QUEUE = "struct lgmp_header_queue"
MESSAGE = "struct lgmp_header_message"


def off(struct_name: str, field: str) -> int:
    return ffi.offsetof(struct_name, field)


def queue_base(index: int) -> int:
    return off(HEADER, "queues") + index * ffi.sizeof(QUEUE)


class Region:
    """A writable mapping of a shared-memory file, with typed reads and writes at offsets."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_RDWR)
        self.size = os.fstat(self._fd).st_size
        self.mm = mmap.mmap(self._fd, self.size)

    def close(self) -> None:
        self.mm.close()
        os.close(self._fd)

    def u32(self, at: int) -> int:
        return struct.unpack_from("<I", self.mm, at)[0]

    def set_u32(self, at: int, value: int) -> None:
        struct.pack_into("<I", self.mm, at, value & 0xFFFFFFFF)

    def set_i16(self, at: int, value: int) -> None:
        struct.pack_into("<h", self.mm, at, value)

    def u64(self, at: int) -> int:
        return struct.unpack_from("<Q", self.mm, at)[0]

    def queue_index(self, queue_id: int) -> int:
        for i in range(self.u32(off(HEADER, "numQueues"))):
            if self.u32(queue_base(i) + off(QUEUE, "queueID")) == queue_id:
                return i
        raise KeyError(queue_id)

    def queue_field(self, queue_id: int, field: str) -> int:
        return queue_base(self.queue_index(queue_id)) + off(QUEUE, field)

    def newest_message(self, queue_id: int) -> int:
        """Offset of the ring slot holding the newest message of a queue."""
        n = self.u32(self.queue_field(queue_id, "numMessages"))
        pos = self.u32(self.queue_field(queue_id, "position"))
        ring = self.u32(self.queue_field(queue_id, "messagesOffset"))
        return ring + ((pos + n - 1) % n) * ffi.sizeof(MESSAGE)

    def newest_payload(self, queue_id: int) -> int:
        return self.u32(self.newest_message(queue_id) + off(MESSAGE, "offset"))


FRAME = "struct kvmfr_frame"
CURSOR = "struct kvmfr_cursor"
Q_FRAME = lib.LGMP_Q_FRAME
Q_POINTER = lib.LGMP_Q_POINTER
