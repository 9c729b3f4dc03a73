"""A linked SPICE channel: message framing, the base messages (ACK, PING) and a reader task.

What the server sends is checked before it is used: a message larger than ``P.MAX_MESSAGE_SIZE`` is
read in pieces and dropped, and a message a parser refuses (:class:`SpiceProtocolError`: too short, a
count that does not fit) is counted in ``bad_messages``, logged at most once per 5 s per kind, and
skipped; the channel goes on either way.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from . import protocol as P
from .errors import SpiceProtocolError, SpiceServerGone
from .link import Address, Link, lost_how
from .warnings import RateLimitedWarning

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = P.MAX_MESSAGE_SIZE
_DISCARD_PIECE = 64 * 1024
_ACK = struct.Struct("<II")  # generation, window
_PING = struct.Struct("<IQ")  # id, timestamp


class Channel:
    """Reads messages of one channel and answers the base ones; subclasses handle the rest."""

    name = "channel"

    def __init__(self, link: Link, address: Address):
        self.link = link
        self.address = address
        self._writer = link.writer
        self._reader = link.reader
        self._serial = 0
        self._ack_window = 0
        self._ack_count = 0
        self._closed = False
        self._eof_sent = False
        self.reader_task: asyncio.Task | None = None
        self.bad_messages = 0  # refused by a parser or over MAX_MESSAGE_SIZE; skipped
        self._warn = RateLimitedWarning(log)

    # -- sending -------------------------------------------------------------------------------
    def frame(self, msg_type: int, payload: bytes = b"") -> bytes:
        if self.link.mini_header:
            return P.MINI_HEADER.pack(msg_type, len(payload)) + payload
        self._serial += 1
        return P.FULL_HEADER.pack(self._serial, msg_type, len(payload), 0) + payload

    def send(self, msg_type: int, payload: bytes = b"") -> None:
        self.send_raw(self.frame(msg_type, payload))

    def send_raw(self, data: bytes) -> None:
        if self._closed or self._writer.is_closing():
            raise SpiceServerGone(f"{self.name} channel to {self.address} is closed")
        self._writer.write(data)

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise SpiceServerGone(f"{self.name} channel to {self.address} dropped: {lost_how(exc)}") from None

    # -- receiving -----------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        self.reader_task = asyncio.get_running_loop().create_task(self._run(), name=f"spice-{self.name}")
        return self.reader_task

    async def _read_message(self) -> tuple[int, bytes | None]:
        """The next message; its payload is None when it was over MAX_MESSAGE_SIZE (read and dropped)."""
        header = P.MINI_HEADER if self.link.mini_header else P.FULL_HEADER
        raw = await self._reader.readexactly(header.size)
        if self.link.mini_header:
            msg_type, size = header.unpack(raw)
        else:
            _serial, msg_type, size, _sub_list = header.unpack(raw)
        if size > MAX_MESSAGE_SIZE:
            # Read it through in bounded pieces: memory stays flat whatever size the server claims.
            left = size
            while left:
                piece = await self._reader.read(min(left, _DISCARD_PIECE))
                if not piece:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(piece)
            return msg_type, None
        payload = await self._reader.readexactly(size) if size else b""
        return msg_type, payload

    def dispatch(self, msg_type: int, payload: bytes | None) -> None:
        """Handle one received message; a refused or oversized one is counted, logged and skipped."""
        if self._ack_window:  # every message counts towards the server's window, even a dropped one
            self._ack_count += 1
            if self._ack_count >= self._ack_window:
                self._ack_count = 0
                self.send(P.ClientMsg.ACK)
        if payload is None:
            self.bad_messages += 1
            self._warn.warn(f"size{msg_type}", "%s: server message %d is over the %d-byte limit; dropped",
                            self.name, msg_type, MAX_MESSAGE_SIZE)
            return
        try:
            self._handle_base(msg_type, payload)
        except SpiceProtocolError as exc:
            self.bad_messages += 1
            self._warn.warn(f"msg{msg_type}", "%s: malformed server message %d: %s; skipped", self.name,
                            msg_type, exc)

    async def _run(self) -> None:
        try:
            while True:
                msg_type, payload = await self._read_message()
                self.dispatch(msg_type, payload)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if self._closed or self._eof_sent:
                return
            how = lost_how(exc)
            raise SpiceServerGone(f"SPICE server at {self.address} closed the {self.name} channel ({how});"
                                  " did QEMU exit?") from None
        finally:
            self._closed = True

    def _handle_base(self, msg_type: int, payload: bytes) -> None:
        if msg_type == P.ServerMsg.SET_ACK:
            generation, window = P.unpack(_ACK, payload, "SET_ACK")
            self._ack_window, self._ack_count = window, 0
            self.send(P.ClientMsg.ACK_SYNC, struct.pack("<I", generation))
        elif msg_type == P.ServerMsg.PING:
            ping_id, timestamp = P.unpack(_PING, payload, "PING")
            self.send(P.ClientMsg.PONG, struct.pack("<IQ", ping_id, timestamp))
        elif msg_type == P.ServerMsg.NOTIFY:
            log.info("%s: server notice: %s", self.name, _notify_text(payload))
        elif msg_type == P.ServerMsg.DISCONNECTING:
            log.info("%s: server is disconnecting", self.name)
        elif msg_type in (P.ServerMsg.WAIT_FOR_CHANNELS, P.ServerMsg.LIST, P.ServerMsg.MIGRATE,
                          P.ServerMsg.MIGRATE_DATA):
            log.debug("%s: ignoring base message %d", self.name, msg_type)
        else:
            self.handle(msg_type, payload)

    def handle(self, msg_type: int, payload: bytes) -> None:
        log.debug("%s: unhandled message %d (%d bytes)", self.name, msg_type, len(payload))

    # -- closing -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed or self._writer.is_closing()

    async def close(self, flush: bool = False, timeout: float = 2.0) -> None:
        """Close the channel. With ``flush``, half-close and wait for the server to close its side:
        the server handles messages in order, so when it closes, it has handled all of ours. With
        ``flush``, a server that had already gone away is reported (SpiceServerGone)."""
        lost = None
        task = self.reader_task
        if flush and task is not None and task.done() and not task.cancelled() and not self._eof_sent:
            lost = task.exception()  # the server went away before we finished: report it
        if self._writer.is_closing():
            self._closed = True
            if lost is not None:
                raise lost
            return
        if flush and not self._closed:
            try:
                await self.drain()
                if self._writer.can_write_eof():
                    self._eof_sent = True
                    self._writer.write_eof()
                    if self.reader_task is not None:
                        await asyncio.wait_for(asyncio.shield(self.reader_task), timeout)
            except Exception as exc:  # the server going away here is what we wait for
                log.debug("%s: while flushing: %r", self.name, exc)
        self._closed = True
        if self.reader_task is not None and not self.reader_task.done():
            self.reader_task.cancel()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except Exception:
            pass
        if lost is not None:
            raise lost


def _notify_text(payload: bytes) -> str:
    # time_stamp u64, severity u32, visibility u32, what u32, message_len u32, message, NUL
    if len(payload) < 24:
        return payload.hex()
    length = struct.unpack_from("<I", payload, 20)[0]
    return payload[24:24 + length].decode(errors="replace")
