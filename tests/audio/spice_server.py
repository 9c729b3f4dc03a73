"""A minimal SPICE server with a playback channel, standing in for QEMU's (which needs a guest that
plays sound). It speaks the real link handshake (RSA key, ticket, mini header), sends MAIN INIT and
then plays a script on the playback channel in real time."""

from __future__ import annotations

import asyncio
import struct
import threading
import time

from tests.support.spice_link import MAIN, PLAYBACK, SESSION_ID, SpiceLinkServer, send_main_init

__all__ = ["SESSION_ID", "FakeSpiceServer", "playback_script"]


class FakeSpiceServer(SpiceLinkServer):
    """``script`` is a list of (message type, payload bytes, seconds to wait after sending it); ``done`` is
    set once it has been played."""

    def __init__(self, script: list[tuple[int, bytes, float]]):
        super().__init__()
        self.script = script
        self.done = threading.Event()

    async def channel(self, channel_type: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if channel_type == MAIN:
            send_main_init(writer)
        elif channel_type == PLAYBACK:
            await self._play(writer)
        await super().channel(channel_type, reader, writer)

    async def _play(self, writer: asyncio.StreamWriter) -> None:
        """The script, in real time."""
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
