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



def test_a_host_copy_reaches_the_guest_through_the_second_display_window(guest_agent, xserver, tmp_path, shm_path):
    """kvmfr-view --displays A,B has one clipboard for the VM, told of every window's focus: text copied on
    the host reaches the guest when the user then clicks into display 2's window, not only display 1's. The
    guest's clipboard at connect time reaches the host although SPICE connects before the windows open."""
    import sys
    import time

    from tests.support.process import stop_process
    from tests.viewer.helpers import REPO
    from tests.viewer.multi_windows import find_window, xdotool
    require_xclip()
    env = xserver.env()
    spice = guest_agent.spice
    where = [f"spice:host={spice[5:]}", "spice:port=0"] if spice.startswith("unix:") else \
        [f"spice:host={spice.rsplit(':', 1)[0]}", f"spice:port={spice.rsplit(':', 1)[1]}"]
    shm_b = shm_path.with_name(shm_path.name + "-b")
    log_path = tmp_path / "viewer.log"
    with open(log_path, "wb") as log:
        viewer = subprocess.Popen([sys.executable, "-m", "kvmfr_client.cli.view", "--displays", f"{shm_path},{shm_b}",
                                   "-v", "--exit-after", "90", "win:size=200x150", *where],
                                  cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path / "xdg")), stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        win1, win2 = find_window(xserver, "display 1 of 2"), find_window(xserver, "display 2 of 2")
        xdotool(xserver, "windowmove", "--sync", win2, "260", "0")   # Xvfb has no window manager
        # The guest's agent offers its clipboard as soon as the viewer's agent channel is up, before the windows
        # (and their clipboard) exist: kept, it still reaches the X clipboard.
        wait_for("the guest's clipboard on the X clipboard",
                 lambda: subprocess.run(["xclip", "-selection", "clipboard", "-o"], env=env, capture_output=True,
                                        timeout=5).stdout.decode(errors="replace") == GUEST_CLIPBOARD, 30)
        xdotool(xserver, "windowfocus", "--sync", win1)
        time.sleep(0.5)
        text = "copied for display 2 ✓"
        copy(env, None, text.encode())
        xdotool(xserver, "windowfocus", "--sync", win2)
        deadline = time.monotonic() + 20
        got = []
        while time.monotonic() < deadline and text not in got:
            m = guest_agent.serial.wait_for(r"^AGENT clipboard (\d+) (.*)$", max(0.1, deadline - time.monotonic()))
            if m is not None:
                got.append(m.group(2))
        assert text in got, f"the guest's agent got {got}; viewer log:\n{log_path.read_text()[-3000:]}"
    finally:
        stop_process(viewer)
