"""A local SPICE server speaking the real wire format (link handshake with an RSA key, mini header, MAIN
INIT, AGENT_START / AGENT_TOKEN flow control, the inputs INIT) with a scripted guest agent behind it.

It stands in for QEMU where the guest cannot produce what a test needs (a 100 MB clipboard): the test's
``agent`` coroutine plays the guest's vdagent, reading what the client sent with ``AgentSide.receive``
and sending VDAgent messages with ``AgentSide.send`` (cut into 2048-byte AGENT_DATA pieces and paced by
the tokens the client gave, as spice-server does). A ``record`` coroutine plays the record channel.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from typing import Awaitable, Callable

from tests.support.spice_link import INPUTS, MAIN, SpiceLinkServer, send_main_init

AGENT_DATA_MAX = 2048
VDAGENT_HEADER = struct.Struct("<IIQI")
RECORD = 6


class AgentSide:
    """The guest agent's end of the main channel."""

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer
        self.tokens = 0  # AGENT_DATA the client allows us to send
        self._token_event = asyncio.Event()
        self._inbox = bytearray()
        self._messages: asyncio.Queue = asyncio.Queue()
        self.bytes_sent = 0

    def _client_data(self, data: bytes) -> None:
        self._inbox += data
        while len(self._inbox) >= VDAGENT_HEADER.size:
            _proto, msg_type, _opaque, size = VDAGENT_HEADER.unpack_from(self._inbox)
            if len(self._inbox) < VDAGENT_HEADER.size + size:
                return
            body = bytes(self._inbox[VDAGENT_HEADER.size:VDAGENT_HEADER.size + size])
            del self._inbox[:VDAGENT_HEADER.size + size]
            self._messages.put_nowait((msg_type, body))

    def _add_tokens(self, n: int) -> None:
        self.tokens += n
        self._token_event.set()

    async def receive(self, msg_type: int, timeout: float = 10.0) -> bytes:
        """The body of the next agent message of ``msg_type`` the client sends (others are skipped)."""
        while True:
            got, body = await asyncio.wait_for(self._messages.get(), timeout)
            if got == msg_type:
                return body

    async def received_within(self, seconds: float) -> list[tuple[int, bytes]]:
        """Every agent message (type, body) the client sends within ``seconds``."""
        got = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                got.append(await asyncio.wait_for(self._messages.get(), left))
            except asyncio.TimeoutError:
                break
        return got

    async def send_raw(self, stream) -> None:
        """Send the bytes ``stream`` yields as AGENT_DATA pieces, waiting for tokens like spice-server."""
        pending = b""
        for part in stream:
            pending += part
            while len(pending) >= AGENT_DATA_MAX:
                await self._piece(pending[:AGENT_DATA_MAX])
                pending = pending[AGENT_DATA_MAX:]
        if pending:
            await self._piece(pending)

    async def send(self, msg_type: int, body: bytes) -> None:
        await self.send_raw([VDAGENT_HEADER.pack(1, msg_type, 0, len(body)), body])

    async def _piece(self, data: bytes) -> None:
        while self.tokens <= 0:
            self._token_event.clear()
            await asyncio.wait_for(self._token_event.wait(), 10.0)
        self.tokens -= 1
        self._writer.write(struct.pack("<HI", 109, len(data)) + data)  # MAIN AGENT_DATA
        self.bytes_sent += len(data)
        await self._writer.drain()


class FakeSpiceServer(SpiceLinkServer):
    """Serves any number of sessions on 127.0.0.1; ``agent(side)`` runs once per main channel."""

    def __init__(self, agent: Callable[[AgentSide], Awaitable[None]] | None = None,
                 record: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] | None = None):
        """``record(reader, writer)``: plays spice-server's record channel (6) once it is linked."""
        super().__init__()
        self.agent = agent
        self.record = record
        self.main_writers: list[asyncio.StreamWriter] = []
        self.agent_error: BaseException | None = None
        self.agent_done = threading.Event()

    async def channel(self, channel_type: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if channel_type == MAIN:
            await self._main_channel(reader, writer)
        elif channel_type == RECORD and self.record is not None:
            try:
                await self.record(reader, writer)
            except BaseException as exc:
                self.agent_error = exc
                raise
            finally:
                self.agent_done.set()
        else:
            await super().channel(channel_type, reader, writer)

    def drop_main(self) -> None:
        """Close every main channel, as a QEMU that went away would (on the server's loop)."""
        for writer in self.main_writers:
            writer.transport.abort()

    async def _main_channel(self, reader, writer) -> None:
        self.main_writers.append(writer)
        send_main_init(writer, agent_tokens=10)
        offered = [(MAIN, 0), (INPUTS, 0)] + ([(RECORD, 0)] if self.record is not None else [])
        listed = struct.pack("<I", len(offered)) + bytes(b for pair in offered for b in pair)
        writer.write(struct.pack("<HI", 104, len(listed)) + listed)   # MAIN CHANNELS_LIST
        side = AgentSide(writer)
        task = None
        try:
            while True:
                msg_type, size = struct.unpack("<HI", await reader.readexactly(6))
                payload = await reader.readexactly(size)
                if msg_type == 106:  # AGENT_START: the tokens the client gives us
                    side._add_tokens(struct.unpack("<I", payload)[0])
                    if task is None and self.agent is not None:
                        task = asyncio.create_task(self._run_agent(side))
                elif msg_type == 108:  # AGENT_TOKEN
                    side._add_tokens(struct.unpack("<I", payload)[0])
                elif msg_type == 107:  # AGENT_DATA: handed to the agent, so its token goes back (as spice-server)
                    side._client_data(payload)
                    writer.write(struct.pack("<HII", 110, 4, 1))   # MAIN AGENT_TOKEN
        finally:
            if task is not None:
                task.cancel()

    async def _run_agent(self, side: AgentSide) -> None:
        try:
            await self.agent(side)
        except BaseException as exc:
            self.agent_error = exc
            raise
        finally:
            self.agent_done.set()
