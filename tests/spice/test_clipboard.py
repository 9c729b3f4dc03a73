"""Clipboard through the SPICE agent and a real QEMU: UTF-8 text both ways, images and files, with a
guest-side agent over virtio-serial (tests/support/guest/fakeagent.c)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess

from PIL import Image

from kvmfr_client.input.clipboard import ClipboardSync, XclipClipboard
from tests.spice.xclip import copy, require_xclip, wait_for
from kvmfr_client.spice import Address, SpiceClient, SpiceThread
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


def test_a_local_file_reaches_the_guest_and_a_guest_image_the_local_clipboard(guest_agent, xserver, tmp_path):
    """Through QEMU's spice-server and the guest's virtio port: a file copied in a local file manager
    (text/uri-list on the X clipboard) is sent with the agent's file transfer; the guest then copies a BMP
    image, which lands on the X clipboard as PNG with the same pixels."""
    require_xclip()
    env = xserver.env()
    payload = os.urandom(150_000)
    path = tmp_path / "notes ü.bin"
    path.write_bytes(payload)
    fnv = 2166136261
    for byte in payload:
        fnv = ((fnv ^ byte) * 16777619) & 0xFFFFFFFF
    texts, done = [], []
    client = SpiceClient(Address.parse(guest_agent.spice), clipboard=True)
    client.on_file_done = done.append
    spice = SpiceThread(client)
    sync = ClipboardSync(XclipClipboard(env), spice, client)
    client.on_clipboard_text = texts.append   # (instead of the local clipboard: the image is what is checked)
    spice.start()
    try:
        wait_for("the guest's agent never offered its text", lambda: texts, 30)
        copy(env, "text/uri-list", path.as_uri().encode() + b"\r\n")
        sync.on_focus(True)
        m = guest_agent.serial.wait_for(r"^AGENT file (\d+) ([0-9a-f]{8}) (.*)$", 30)
        assert m is not None, guest_agent.output()
        assert (int(m.group(1)), int(m.group(2), 16), m.group(3)) == (len(payload), fnv, path.name)
        png = wait_for("the guest's image never reached the X clipboard", lambda: b"image/png" in subprocess.run(
            ["xclip", "-selection", "clipboard", "-o", "-t", "TARGETS"], env=env, capture_output=True,
            timeout=5).stdout and subprocess.run(["xclip", "-selection", "clipboard", "-o", "-t", "image/png"],
                                                 env=env, capture_output=True, timeout=5).stdout, 15)
        wait_for("the guest never confirmed the file", lambda: done, 5)
    finally:
        spice.stop()
        sync.stop()
    assert [x.result for x in done] == ["success"]
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (2, 2)
        assert image.convert("RGB").tobytes() == bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])

