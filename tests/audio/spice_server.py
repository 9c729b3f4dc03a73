"""A minimal SPICE server with a playback channel, standing in for QEMU's (which needs a guest that
plays sound). It speaks the real link handshake (RSA key, ticket, mini header), sends MAIN INIT and
then plays a script on the playback channel in real time."""

from __future__ import annotations

import asyncio
import struct
import threading
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MAGIC = 0x51444552  # "REDQ"
COMMON_CAPS = (1 << 0) | (1 << 1) | (1 << 3)  # auth selection, auth spice, mini header
SESSION_ID = 0x5EED


class FakeSpiceServer:
    """``script`` is a list of (message type, payload bytes, seconds to wait after sending it)."""

    def __init__(self, script: list[tuple[int, bytes, float]]):
        self.script = script
        self.port = 0
        self.linked: list[int] = []  # channel types, in link order
        self.connection_ids: list[int] = []  # the connection id each link carried
        self.done = threading.Event()
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self.pub_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        assert len(self.pub_der) == 162
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="fake-spice", daemon=True)

    def __enter__(self) -> "FakeSpiceServer":
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            magic, major, minor, size = struct.unpack("<IIII", await reader.readexactly(16))
            body = await reader.readexactly(size)
            conn_id, channel_type = struct.unpack_from("<IB", body)
            reply = struct.pack("<I", 0) + self.pub_der + struct.pack("<III", 1, 0, 4 + 162 + 12)
            reply += struct.pack("<I", COMMON_CAPS)
            writer.write(struct.pack("<IIII", MAGIC, 2, 2, len(reply)) + reply)
            await reader.readexactly(4)  # auth mechanism
            await reader.readexactly(128)  # the ticket; any password is fine here
            writer.write(struct.pack("<I", 0))
            self.linked.append(channel_type)
            self.connection_ids.append(conn_id)
            if channel_type == 1:  # main
                init = struct.pack("<8I", SESSION_ID, 1, 3, 1, 0, 0, 0, 0)
                writer.write(struct.pack("<HI", 103, len(init)) + init)
            elif channel_type == 3:  # inputs: INIT with no modifiers (the viewer's input client waits for it)
                writer.write(struct.pack("<HIH", 101, 2, 0))
            elif channel_type == 5:  # playback
                t0 = time.monotonic()
                elapsed = 0.0
                for msg_type, payload, wait in self.script:
                    writer.write(struct.pack("<HI", msg_type, len(payload)) + payload)
                    await writer.drain()
                    elapsed += wait
                    delay = t0 + elapsed - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                self.done.set()
            while await reader.read(4096):  # the client's acks and pongs
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def playback_script(pcm_parts: list[tuple[bytes, list[tuple[int, bytes]]]], rate: int = 48000,
                    channels: int = 2, block_frames: int = 480) -> list[tuple[int, bytes, float]]:
    """START, then each part's control messages followed by its PCM in real-time DATA blocks."""
    script = [(103, struct.pack("<IHII", channels, 1, rate, 0), 0.0)]
    block = block_frames * 2 * channels
    stamp = 0
    for pcm, controls in pcm_parts:
        for msg_type, payload in controls:
            script.append((msg_type, payload, 0.0))
        for k in range(0, len(pcm), block):
            chunk = pcm[k:k + block]
            script.append((101, struct.pack("<I", stamp) + chunk, len(chunk) / (2 * channels) / rate))
            stamp += block_frames * 1000 // rate
    script.append((104, b"", 0.0))
    return script
