"""A local SPICE server speaking the real wire format (link handshake with an RSA key, mini header, MAIN
INIT, AGENT_START / AGENT_TOKEN flow control, the inputs INIT) with a scripted guest agent behind it.

It stands in for QEMU where the guest cannot produce what a test needs (a 100 MB clipboard): the test's
``agent`` coroutine plays the guest's vdagent, reading what the client sent with ``AgentSide.receive``
and sending VDAgent messages with ``AgentSide.send`` (cut into 2048-byte AGENT_DATA pieces and paced by
the tokens the client gave, as spice-server does).
"""

from __future__ import annotations

import asyncio
import struct
import threading
from typing import Awaitable, Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MAGIC = 0x51444552
COMMON_CAPS = (1 << 0) | (1 << 1) | (1 << 3)  # auth selection, auth spice, mini header
SESSION_ID = 0x5EED
AGENT_DATA_MAX = 2048
VDAGENT_HEADER = struct.Struct("<IIQI")


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


class FakeSpiceServer:
    """Serves any number of sessions on 127.0.0.1; ``agent(side)`` runs once per main channel."""

    def __init__(self, agent: Callable[[AgentSide], Awaitable[None]] | None = None):
        self.agent = agent
        self.port = 0
        self.agent_error: BaseException | None = None
        self.agent_done = threading.Event()
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self._pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="fake-spice", daemon=True)

    def __enter__(self) -> "FakeSpiceServer":
        self._thread.start()
        assert self._ready.wait(5), "the fake SPICE server did not start"
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _magic, _major, _minor, size = struct.unpack("<IIII", await reader.readexactly(16))
            body = await reader.readexactly(size)
            _conn_id, channel_type = struct.unpack_from("<IB", body)
            reply = struct.pack("<I", 0) + self._pub + struct.pack("<III", 1, 0, 4 + 162 + 12)
            reply += struct.pack("<I", COMMON_CAPS)
            writer.write(struct.pack("<IIII", MAGIC, 2, 2, len(reply)) + reply)
            await reader.readexactly(4 + 128)  # auth mechanism, ticket
            writer.write(struct.pack("<I", 0))
            if channel_type == 1:
                await self._main_channel(reader, writer)
            else:
                if channel_type == 3:
                    writer.write(struct.pack("<HIH", 101, 2, 0))  # INPUTS INIT
                while await reader.read(4096):
                    pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _main_channel(self, reader, writer) -> None:
        init = struct.pack("<8I", SESSION_ID, 1, 3, 1, 1, 10, 0, 0)  # agent connected, 10 tokens for the client
        writer.write(struct.pack("<HI", 103, len(init)) + init)
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
                elif msg_type == 107:  # AGENT_DATA
                    side._client_data(payload)
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
