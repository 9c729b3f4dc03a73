"""The local clipboard and a guest agent, both directions, with the same test body on X11 (xclip on a private
Xvfb) and on Wayland (wl-clipboard under weston, its X11 back end in that Xvfb): Unicode text, an image (the
guest offers only BMP, as a Windows guest may; PNG the other way) and a file (the agent's file transfer,
host -> guest: the only direction the agent protocol has without WebDAV). The guest's agent is scripted over a
local server speaking the real SPICE wire format (tests/spice/fake_server.py), the same path spice-vdagent's
messages take through QEMU. The clipboard side needs no window: wl-copy / wl-paste are Wayland clients of
their own (weston hands them the selection without keyboard focus), as xclip is an X client."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import shutil
import struct
import subprocess

import pytest
from PIL import Image

from kvmfr_client.input.clipboard import (TEXT, ClipboardSync, WaylandClipboard, XclipClipboard,
                                          local_clipboard, to_png)
from kvmfr_client.spice.agent import AgentMsg, ClipboardType, XferStatus
from kvmfr_client.spice.client import SpiceClient, SpiceThread
from kvmfr_client.spice.link import Address
from tests.spice.fake_server import FakeSpiceServer
from tests.spice.xclip import copy, require_xclip, wait_for, xclip
from tests.support.weston import start_weston

GUEST_TEXT = "grüße aus dem Gast ✓ 日本語 🙂"
HOST_TEXT = "copied on the host: naïve café ✓ " + "Ω" * 3000   # > 2 KiB: several AGENT_DATA pieces
SEL = b"\0\0\0\0"   # the selection prefix (CLIPBOARD) both sides use with CLIPBOARD_SELECTION
GUEST_CAPS = (1 << 5) | (1 << 6)   # CLIPBOARD_BY_DEMAND, CLIPBOARD_SELECTION


def _image(kind: str) -> bytes:
    img = Image.new("RGB", (37, 21))
    img.frombytes(bytes((x * 7 + y * 12 + c * 91) % 256 for y in range(21) for x in range(37) for c in range(3)))
    out = io.BytesIO()
    img.save(out, format=kind)
    return out.getvalue()


class X11Side:
    """What a local X application does with the clipboard: xclip."""

    def __init__(self, env):
        require_xclip()
        self.env = env

    def copy(self, mime: str | None, data: bytes) -> None:
        copy(self.env, mime, data)

    def paste(self, mime: str) -> bytes:
        return xclip(self.env, "-t", {TEXT: "UTF8_STRING"}.get(mime, mime))

    def types(self) -> list[str]:
        return xclip(self.env, "-t", "TARGETS").decode(errors="replace").split()


class WaylandSide:
    """What a local Wayland application does with the clipboard: wl-copy / wl-paste (wl-clipboard)."""

    def __init__(self, env):
        if shutil.which("wl-copy") is None or shutil.which("wl-paste") is None:
            pytest.fail("wl-clipboard is not installed: run `scripts/setup.sh test` (apt-get install wl-clipboard)")
        self.env = env

    def copy(self, mime: str | None, data: bytes) -> None:
        # wl-copy forks a child that serves the selection: no pipe of ours may stay open in it.
        subprocess.run(["wl-copy", "--type", mime or TEXT], input=data, env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        wait_for(f"wl-copy never owned the clipboard with {mime or 'text'}",
                 lambda: self.paste(mime or TEXT) == data, timeout=5)

    def paste(self, mime: str) -> bytes:
        return subprocess.run(["wl-paste", "--no-newline", "--type", mime], env=self.env, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=5).stdout

    def types(self) -> list[str]:
        out = subprocess.run(["wl-paste", "--list-types"], env=self.env, capture_output=True,
                             stdin=subprocess.DEVNULL, timeout=5).stdout
        return out.decode(errors="replace").split()


@pytest.fixture(scope="module")
def weston(xserver):
    """One weston (X11 back end in the session's Xvfb) for this module's Wayland runs, started by the first."""
    compositor = None

    def get():
        nonlocal compositor
        if compositor is None:
            compositor = start_weston(xserver, 640, 480)
        return compositor
    yield get
    if compositor is not None:
        compositor.stop()


@pytest.fixture(params=["x11", "wayland"])
def desktop(request, xserver, weston):
    """(env, the local applications' side, the viewer's LocalClipboard class) on X11 or on Wayland."""
    if request.param == "x11":
        env = xserver.env()
        return env, X11Side(env), XclipClipboard
    env = weston().env()
    return env, WaylandSide(env), WaylandClipboard


def test_text_image_and_file_between_the_local_clipboard_and_the_agent(desktop, tmp_path):
    env, user, tool = desktop
    bmp, png = _image("BMP"), _image("PNG")
    payload = os.urandom(300_000)   # several FILE_XFER_DATA messages, each cut into AGENT_DATA pieces
    sent_file = tmp_path / "rapport é.bin"
    sent_file.write_bytes(payload)
    local = local_clipboard(env)   # the tool the viewer picks for this session
    assert type(local) is tool, f"the viewer would use {type(local).__name__}, not {tool.__name__}"
    got: dict = {}
    holder: dict = {}

    def host(fn, *args, **kw):   # a step on the host side, off the server's loop
        return asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))

    async def guest(agent):
        await agent.send(AgentMsg.ANNOUNCE_CAPABILITIES, struct.pack("<II", 0, GUEST_CAPS))
        await agent.receive(AgentMsg.ANNOUNCE_CAPABILITIES)
        # guest -> local: text, then an image offered only as BMP
        for kind, body in ((ClipboardType.UTF8_TEXT, GUEST_TEXT.encode()), (ClipboardType.BMP, bmp)):
            await agent.send(AgentMsg.CLIPBOARD_GRAB, SEL + struct.pack("<I", kind))
            asked = await agent.receive(AgentMsg.CLIPBOARD_REQUEST)
            assert struct.unpack_from("<I", asked, 4)[0] == kind
            await agent.send(AgentMsg.CLIPBOARD, SEL + struct.pack("<I", kind) + body)
            if kind == ClipboardType.UTF8_TEXT:
                # (leniently decoded: an earlier test may have left an image there, which xclip serves
                # for any target)
                got["local text"] = await host(wait_for, "the guest's text never reached the local clipboard",
                                               lambda: user.paste(TEXT).decode(errors="replace")
                                               == GUEST_TEXT and GUEST_TEXT)
            else:
                got["local png"] = await host(wait_for, "the guest's image never reached the local clipboard",
                                              lambda: "image/png" in user.types() and user.paste("image/png"))
        # local -> guest: text, an image, a file; each copied as an application would, then the window
        # gains focus
        for mime, data, want in ((None, HOST_TEXT.encode(), ClipboardType.UTF8_TEXT),
                                 ("image/png", png, ClipboardType.PNG)):
            await host(user.copy, mime, data)
            holder["sync"].on_focus(True)
            grab = await agent.receive(AgentMsg.CLIPBOARD_GRAB)
            assert struct.unpack_from("<I", grab, 4)[0] == want
            await agent.send(AgentMsg.CLIPBOARD_REQUEST, SEL + struct.pack("<I", want))
            body = await agent.receive(AgentMsg.CLIPBOARD)
            got[f"vm {want.name}"] = body[8:]
        await host(user.copy, "text/uri-list", sent_file.as_uri().encode() + b"\r\n")
        holder["sync"].on_focus(True)
        start = await agent.receive(AgentMsg.FILE_XFER_START)
        xfer_id = struct.unpack_from("<I", start)[0]
        got["keyfile"] = start[4:].rstrip(b"\0").decode()
        await agent.send(AgentMsg.FILE_XFER_STATUS, struct.pack("<II", xfer_id, XferStatus.CAN_SEND_DATA))
        received = bytearray()
        while len(received) < len(payload):
            piece = await agent.receive(AgentMsg.FILE_XFER_DATA)
            pid, size = struct.unpack_from("<IQ", piece)
            assert pid == xfer_id and size == len(piece) - 12
            received += piece[12:]
        got["vm file"] = bytes(received)
        await agent.send(AgentMsg.FILE_XFER_STATUS, struct.pack("<II", xfer_id, XferStatus.SUCCESS))

    done = []
    with FakeSpiceServer(guest) as server:
        client = SpiceClient(Address.parse(server.address), clipboard=True, backoff=(0.1, 0.5))
        client.on_file_done = done.append
        spice = SpiceThread(client)
        holder["sync"] = sync = ClipboardSync(local, spice, client)
        spice.start()
        try:
            assert server.agent_done.wait(60), "the scripted guest agent did not finish within 60 s"
            assert server.agent_error is None, repr(server.agent_error)
            wait_for("the file transfer never ended", lambda: done, timeout=5)
        finally:
            spice.stop()
            sync.stop()
        assert server.agent_error is None, repr(server.agent_error)
    assert got["local text"] == GUEST_TEXT
    with Image.open(io.BytesIO(got["local png"])) as shown, Image.open(io.BytesIO(bmp)) as original:
        assert shown.format == "PNG" and shown.size == original.size
        assert shown.convert("RGB").tobytes() == original.convert("RGB").tobytes()
    assert got["vm UTF8_TEXT"].decode() == HOST_TEXT
    assert got["vm PNG"] == png
    assert "name=rapport é.bin" in got["keyfile"] and f"size={len(payload)}" in got["keyfile"]
    assert got["vm file"] == payload
    assert [x.result for x in done] == ["success"]


def test_clipboard_to_vm_and_to_local_off_share_nothing(desktop):
    """spice:clipboardToVM=no and spice:clipboardToLocal=no, as the viewer passes them: the guest's copy is
    not even asked for, and the local copy is not offered."""
    env, user, tool = desktop
    user.copy(None, "local secret".encode())
    seen: dict = {}
    holder: dict = {}

    async def guest(agent):
        await agent.send(AgentMsg.ANNOUNCE_CAPABILITIES, struct.pack("<II", 0, GUEST_CAPS))
        await agent.receive(AgentMsg.ANNOUNCE_CAPABILITIES)
        await agent.send(AgentMsg.CLIPBOARD_GRAB, SEL + struct.pack("<I", ClipboardType.UTF8_TEXT))
        holder["sync"].on_focus(True)
        seen["messages"] = [AgentMsg(t).name for t, _ in await agent.received_within(1.0)]

    with FakeSpiceServer(guest) as server:
        client = SpiceClient(Address.parse(server.address), clipboard=True, clipboard_to_vm=False,
                             clipboard_to_local=False)
        spice = SpiceThread(client)
        holder["sync"] = sync = ClipboardSync(tool(env), spice, client, to_vm=False, to_local=False)
        spice.start()
        try:
            assert server.agent_done.wait(20), "the scripted guest agent did not finish within 20 s"
        finally:
            spice.stop()
            sync.stop()
        assert server.agent_error is None, repr(server.agent_error)
    assert seen["messages"] == [], f"the clipboard was shared although both directions are off: {seen}"
    assert user.paste(TEXT).decode() == "local secret"


def test_a_guest_image_that_does_not_decode_or_is_too_large_is_one_warning(caplog):
    """Guest bytes that claim to be a BMP but are not, and BMP headers claiming 9000 x 9000 and 30000 x 30000
    pixels (a 243 MB and a 2.7 GB bitmap from a few bytes): one warning each, nothing copied, nothing
    allocated for the claim."""
    big, huge = bytearray(_image("BMP")), bytearray(_image("BMP"))
    struct.pack_into("<ii", big, 18, 9000, 9000)
    struct.pack_into("<ii", huge, 18, 30000, 30000)
    with caplog.at_level(logging.WARNING, logger="kvmfr_client.input.clipboard"):
        assert to_png(ClipboardType.BMP, b"BM" + b"\xff" * 60) is None
        assert to_png(ClipboardType.BMP, bytes(big)) is None
        assert to_png(ClipboardType.BMP, bytes(huge)) is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3 and "does not decode" in warnings[0], warnings
    assert "9000x9000, over the 64 Mpixel limit" in warnings[1], warnings
    assert "over the 64 Mpixel limit" in warnings[2], warnings


def test_guest_image_bytes_reach_only_the_decoder_of_their_declared_type(caplog, monkeypatch):
    """EPS (Ghostscript) or PNG bytes declared BMP are refused with one warning each, no other decoder
    tried; a declared PNG is checked as PNG and passed on as it is; an unknown type is refused."""
    from PIL import EpsImagePlugin

    reached = []

    def ghostscript(*args, **kwargs):
        reached.append(True)
        raise SyntaxError("not EPS")
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", ghostscript)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    png = _image("PNG")
    with caplog.at_level(logging.WARNING, logger="kvmfr_client.input.clipboard"):
        assert to_png(ClipboardType.BMP, eps) is None
        assert to_png(ClipboardType.PNG, eps) is None
        assert to_png(ClipboardType.BMP, png) is None
        assert to_png(99, png) is None
        assert to_png(ClipboardType.PNG, png) == png
        assert Image.open(io.BytesIO(to_png(ClipboardType.BMP, _image("BMP")))).format == "PNG"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 4 and all("not copied" in w for w in warnings), warnings
    assert not reached


class _StandIn:
    """A local clipboard, SPICE thread and client that only record what they are asked."""

    name = "stand-in"
    takes_focus = False
    any_text = TEXT

    def __init__(self, offers: dict[str, bytes]):
        self.offers = offers
        self.sent: list[tuple] = []
        self.on_clipboard_text = self.on_clipboard_image = None

    def targets(self) -> list[str]:
        return list(self.offers)

    def read(self, mime: str) -> bytes | None:
        return self.offers.get(mime)

    def send_files(self, paths):
        self.sent.append(("files", tuple(paths)))

    def set_clipboard_text(self, text):
        self.sent.append(("text", text))


def _settle(sync: ClipboardSync) -> None:
    import threading
    done = threading.Event()
    sync._jobs.put((done.set,))
    assert done.wait(5)


def test_copied_files_are_sent_once_however_often_the_window_gains_focus(tmp_path):
    """A file manager's copy offers text/uri-list and the paths as text: the files go once, and the text
    target is never offered in their place on a later focus gain."""
    path = tmp_path / "a file.txt"
    path.write_text("x")
    stand_in = _StandIn({"text/uri-list": path.as_uri().encode() + b"\r\n", TEXT: str(path).encode()})
    sync = ClipboardSync(stand_in, stand_in, stand_in)
    try:
        for _ in range(3):
            sync.on_focus(False)
            sync.on_focus(True)
            _settle(sync)
    finally:
        sync.stop()
    assert stand_in.sent == [("files", (str(path),))]


def test_stop_takes_back_the_hooks_and_drops_queued_jobs():
    import threading
    import time
    stand_in = _StandIn({})
    sync = ClipboardSync(stand_in, stand_in, stand_in)
    assert stand_in.on_clipboard_text is not None and stand_in.on_clipboard_image is not None
    gate, ran = threading.Event(), []
    sync._jobs.put((gate.wait, 5))
    for _ in range(5):
        sync._jobs.put((lambda: (ran.append(1), time.sleep(1)),))
    threading.Timer(0.2, gate.set).start()
    start = time.monotonic()
    sync.stop()
    assert time.monotonic() - start < 2 and not sync._thread.is_alive()
    assert ran == [] and stand_in.on_clipboard_text is None and stand_in.on_clipboard_image is None


def test_the_tool_follows_the_window_platform_not_wayland_display(tmp_path):
    """On a Wayland desktop with win:backend=x11 the window is an X11 one: xclip, not wl-clipboard."""
    for tool in ("xclip", "wl-copy"):
        (tmp_path / tool).write_text("#!/bin/sh\n")
        (tmp_path / tool).chmod(0o755)
    env = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "PATH": str(tmp_path)}
    assert type(local_clipboard(env, platform="x11")) is XclipClipboard
    assert type(local_clipboard(env, platform="wayland")) is WaylandClipboard
    assert type(local_clipboard(env)) is WaylandClipboard   # no window to ask: as WAYLAND_DISPLAY says
    assert local_clipboard({"WAYLAND_DISPLAY": "wayland-0", "PATH": str(tmp_path)}, platform="x11") is None
