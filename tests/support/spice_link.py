"""The part every stand-in SPICE server of the tests shares: a server on 127.0.0.1 with its own thread and
event loop, which links each channel the way QEMU's spice-server does (reply with an RSA key, any ticket
accepted, mini header) and then hands the channel to the subclass (tests/spice/fake_server.py: a scripted
guest agent; tests/audio/spice_server.py: a playback script).
"""

from __future__ import annotations

import asyncio
import struct
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MAGIC = 0x51444552  # "REDQ"
COMMON_CAPS = (1 << 0) | (1 << 1) | (1 << 3)  # auth selection, auth spice, mini header
SESSION_ID = 0x5EED
MAIN, INPUTS, PLAYBACK = 1, 3, 5   # channel types


def send_main_init(writer: asyncio.StreamWriter, agent_tokens: int | None = None) -> None:
    """MAIN INIT: session SESSION_ID, both mouse modes offered (server mode on), and a guest agent
    connected that gives the client ``agent_tokens`` (None: no agent)."""
    agent = (0, 0) if agent_tokens is None else (1, agent_tokens)
    init = struct.pack("<8I", SESSION_ID, 1, 3, 1, *agent, 0, 0)
    writer.write(struct.pack("<HI", 103, len(init)) + init)


class SpiceLinkServer:
    """Serves any number of connections on 127.0.0.1 while in a ``with`` block (``address``, ``port``);
    ``linked`` and ``connection_ids`` record each channel's type and the connection id its link carried,
    in link order. A subclass serves a linked channel in :meth:`channel`."""

    def __init__(self):
        self.port = 0
        self.linked: list[int] = []
        self.connection_ids: list[int] = []
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self.pub_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        assert len(self.pub_der) == 162   # the size the link reply declares
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="fake-spice", daemon=True)

    def __enter__(self):
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
            conn_id, channel_type = struct.unpack_from("<IB", body)
            reply = struct.pack("<I", 0) + self.pub_der + struct.pack("<III", 1, 0, 4 + 162 + 12)
            reply += struct.pack("<I", COMMON_CAPS)
            writer.write(struct.pack("<IIII", MAGIC, 2, 2, len(reply)) + reply)
            await reader.readexactly(4 + 128)  # auth mechanism, ticket: any password is fine here
            writer.write(struct.pack("<I", 0))
            self.linked.append(channel_type)
            self.connection_ids.append(conn_id)
            await self.channel(channel_type, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def channel(self, channel_type: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one linked channel until the client closes it. Here: the inputs channel's INIT (no
        modifiers; the viewer's input client waits for it), then the client's messages are read and
        dropped."""
        if channel_type == INPUTS:
            writer.write(struct.pack("<HIH", 101, 2, 0))
        while await reader.read(4096):  # the client's acks, pongs and input
            pass
