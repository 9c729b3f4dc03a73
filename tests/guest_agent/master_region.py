"""Reading and poking a master (LGMP 12 / KVMFR 34) region from tests, offsets from the C header via cffi.

Tests act as the Looking Glass master client would at the words it owns (subscriber bits, client ids,
client messages), so the producer's side can be checked from raw memory without a client library.
"""

from __future__ import annotations

import struct

from kvmfr_client.core.native import ffi, lib
from tests.support.shm import Region, off

HEADER = "struct lgmp12_header"
QUEUE = "struct lgmp12_header_queue"
MESSAGE = "struct lgmp12_header_message"
CMSG = "struct lgmp12_client_message"
FRAME = "struct kvmfr34_frame"
CURSOR = "struct kvmfr34_cursor"


def qbase(index: int) -> int:
    return off(HEADER, "queues") + index * ffi.sizeof(QUEUE)


FRAME_INDEX, POINTER_INDEX = 0, 1   # where the master host puts the two queues (fixtures)


class MasterRegion(Region):
    def q(self, index: int, field: str) -> int:
        return qbase(index) + off(QUEUE, field)

    def qu32(self, index: int, field: str) -> int:
        return self.u32(self.q(index, field))

    def set_q(self, index: int, field: str, value: int) -> None:
        self.set_u32(self.q(index, field), value)

    def subscribe(self, slot: int, client_id: int, queues=(FRAME_INDEX, POINTER_INDEX)) -> None:
        """What a master client does: take an id, set its ON bit and id in each queue, count it new."""
        self.set_u32(off(HEADER, "nextClientID"), max(self.u32(off(HEADER, "nextClientID")), client_id))
        for i in queues:
            self.set_u32(self.q(i, "clientID") + 4 * slot, client_id)
            self.set_q(i, "subs", self.qu32(i, "subs") | (1 << (16 + slot)))
            self.set_q(i, "newSubCount", self.qu32(i, "newSubCount") + 1)

    def message(self, index: int, slot: int) -> dict:
        at = self.qu32(index, "messagesOffset") + slot * ffi.sizeof(MESSAGE)
        return {"udata": self.u64(at + off(MESSAGE, "udata")), "size": self.u32(at + off(MESSAGE, "size")),
                "offset": self.u32(at + off(MESSAGE, "offset")),
                "pendingSubs": self.u32(at + off(MESSAGE, "pendingSubs"))}

    def frame_u32(self, block: int, field: str) -> int:
        return self.u32(block + off(FRAME, field))

    def frame_u64(self, block: int, field: str) -> int:
        return self.u64(block + off(FRAME, field))

    def send(self, slot: int, client_id: int, data: bytes) -> None:
        """Write client message `slot` of the pointer queue (size, clientID, data) and publish it."""
        at = self.q(POINTER_INDEX, "cMsgs") + slot * ffi.sizeof(CMSG)
        self.set_u32(at + off(CMSG, "size"), len(data))
        self.set_u32(at + off(CMSG, "clientID"), client_id)
        self.mm[at + off(CMSG, "data"): at + off(CMSG, "data") + len(data)] = data
        self.set_q(POINTER_INDEX, "cMsgWPos", (slot + 1) % lib.LGMP12_MSGS_MAX)
        self.set_q(POINTER_INDEX, "cMsgWSerial", self.qu32(POINTER_INDEX, "cMsgWSerial") + 1)
        self.set_q(POINTER_INDEX, "cMsgAvail", self.qu32(POINTER_INDEX, "cMsgAvail") - 1)


def window_size_message(w: int, h: int) -> bytes:
    return struct.pack("<III", lib.KVMFR_MESSAGE_WINDOWSIZE, w, h)
