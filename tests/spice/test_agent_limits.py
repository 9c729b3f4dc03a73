"""What the guest's agent can make the client hold: a 100 MB clipboard is refused with one warning, memory
stays bounded, and the clipboard works again for the next copy. Over a local server speaking the real
SPICE wire format (the test guest's agent cannot produce 100 MB)."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import tracemalloc

from kvmfr_client.spice import Address, SpiceClient
from kvmfr_client.spice.agent import MAX_CLIPBOARD, AgentMsg, ClipboardType
from tests.spice.fake_server import VDAGENT_HEADER, FakeSpiceServer

HUGE = 100 * 1000 * 1000


def _huge_clipboard():
    yield VDAGENT_HEADER.pack(1, AgentMsg.CLIPBOARD, 0, HUGE)
    yield struct.pack("<I", ClipboardType.UTF8_TEXT)
    block = b"A" * 65536
    left = HUGE - 4
    while left:
        n = min(left, len(block))
        yield block[:n]
        left -= n


def test_a_100_mb_guest_clipboard_is_refused_with_one_warning_and_bounded_memory(caplog):
    async def guest(agent):
        await agent.receive(AgentMsg.ANNOUNCE_CAPABILITIES)
        utf8 = struct.pack("<I", ClipboardType.UTF8_TEXT)
        await agent.send(AgentMsg.CLIPBOARD_GRAB, utf8)
        await agent.receive(AgentMsg.CLIPBOARD_REQUEST)
        await agent.send_raw(_huge_clipboard())
        # The next copy in the guest still reaches the host.
        await agent.send(AgentMsg.CLIPBOARD_GRAB, utf8)
        await agent.receive(AgentMsg.CLIPBOARD_REQUEST)
        await agent.send(AgentMsg.CLIPBOARD, utf8 + "small text ✓".encode())

    received: list[str] = []
    with FakeSpiceServer(guest) as server:
        async def go():
            client = SpiceClient(Address.parse(server.address), clipboard=True)
            client.on_clipboard_text = received.append
            await client.connect()
            try:
                deadline = time.monotonic() + 120
                while not received and time.monotonic() < deadline and not server.agent_done.is_set():
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.1)
                return client.agent
            finally:
                await client.close(flush=False)

        tracemalloc.start()
        try:
            with caplog.at_level(logging.WARNING, logger="kvmfr_client.spice"):
                agent = asyncio.run(go())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert server.agent_error is None, repr(server.agent_error)
    assert received == ["small text ✓"], "the clipboard did not work again after the refused one"
    assert agent.refused_messages == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "95.4 MiB" in warnings[0] and f"{MAX_CLIPBOARD // 2**20} MiB limit" in warnings[0], warnings
    # Everything both sides allocated while 100 MB went through: a few MB, not 100.
    assert peak < 8 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
