"""Clipboard through the SPICE agent: UTF-8 text both ways with a guest-side agent over virtio-serial."""

from __future__ import annotations

import asyncio

from kvmfr_client.spice import Address, SpiceClient
from tests.spice.conftest import GUEST_CLIPBOARD, start_harness


def test_text_both_ways_including_text_larger_than_one_agent_message(guest_agent):
    host_text = "héllo from the host ✓ " + "x" * 5000  # > 2048 bytes: split over several AGENT_DATA
    received: list[str] = []
    seen = {}

    async def go():
        client = SpiceClient(Address.parse(guest_agent.spice), clipboard=True)
        client.on_clipboard_text = received.append
        await client.connect()
        try:
            for _ in range(200):  # the guest grabs once it has our capabilities; we request its text
                if received:
                    break
                await asyncio.sleep(0.05)
            client.set_clipboard_text(host_text)
            # Stay connected until the guest has asked for the text and printed it.
            seen["line"] = await asyncio.get_running_loop().run_in_executor(
                None, guest_agent.serial.wait_for, r"^AGENT clipboard (\d+) (.*)$", 15)
        finally:
            await client.close(flush=True)

    asyncio.run(go())
    assert received and received[-1] == GUEST_CLIPBOARD
    m = seen["line"]
    assert m is not None, guest_agent.output()
    assert int(m.group(1)) == len(host_text.encode())
    assert host_text.encode()[:200].decode(errors="ignore").startswith(m.group(2)[:150])


def test_clipboard_through_the_window(guest_agent, xserver):
    harness = start_harness(guest_agent.spice, xserver, "--clipboard")
    try:
        harness.wait_line("READY")
        assert harness.wait_line("LOCAL") == f"LOCAL {GUEST_CLIPBOARD}"
        harness.send("copy copied on the host ✓")
        harness.wait_line("DONE copy")
        m = guest_agent.serial.wait_for(r"^AGENT clipboard (\d+) (.*)$", 15)
        assert m is not None and m.group(2) == "copied on the host ✓", guest_agent.output()
    finally:
        harness.stop()


def test_png_image_from_the_host_reaches_the_guest_agent(guest_agent):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20  # the agent only carries the bytes
    seen = {}

    async def go():
        client = SpiceClient(Address.parse(guest_agent.spice), clipboard=True)
        received = []
        client.on_clipboard_text = received.append
        await client.connect()
        try:
            for _ in range(200):  # the guest grabs first (on our capabilities); ours must come after
                if received:
                    break
                await asyncio.sleep(0.05)
            client.set_clipboard_image(png)
            seen["line"] = await asyncio.get_running_loop().run_in_executor(
                None, guest_agent.serial.wait_for, r"^AGENT image (\d+) (\d+) (\w+)$", 15)
        finally:
            await client.close(flush=True)

    asyncio.run(go())
    m = seen["line"]
    assert m is not None, guest_agent.output()
    assert (int(m.group(1)), int(m.group(2)), m.group(3)) == (2, len(png), png[:8].hex())
