"""Keep the local clipboard and the guest's (through the SPICE agent) in step: text, images and files.

The local clipboard is reached through the desktop's own maintained tools, which speak every MIME type
(GLFW's clipboard is text-only): ``wl-clipboard`` (``wl-copy``/``wl-paste``) on Wayland, ``xclip`` on X11,
chosen by the display server the window runs on (X11 on a Wayland desktop with ``win:backend=x11``).
Without the tool, text still goes through GLFW and images and files are not shared (one warning says
which package to install).

Guest -> local: text goes on the local clipboard as UTF-8 text; an image (the guest offers PNG, BMP, TIFF
or JPEG) goes on it as ``image/png``, converted with Pillow when it is not PNG already, since PNG is what
every local application pastes. Local -> guest: there is no "clipboard changed" event, so the local
clipboard is read when the window gains focus (the user copied something elsewhere and came back), and
what changed is offered: files (``text/uri-list`` of local files) are sent with the agent's file
transfer, then an image (PNG, or JPEG/BMP/TIFF as the local owner offers it), then text.

The tools run on a thread named "clipboard", never on the window thread: a local clipboard owner that
does not answer costs that thread ``TOOL_TIMEOUT`` seconds, not a frozen window.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import queue
import shutil
import subprocess
import threading
import time
from typing import Callable
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)

TEXT = "text/plain;charset=utf-8"
# Text targets a local owner may offer, best first (UTF-8 ones before STRING, which is Latin-1).
TEXT_TARGETS = (TEXT, "UTF8_STRING", "text/plain", "TEXT", "STRING")
URI_LIST = "text/uri-list"
# SPICE agent clipboard type (spice.agent.ClipboardType) <-> MIME type.
IMAGE_MIME = {2: "image/png", 3: "image/bmp", 4: "image/tiff", 5: "image/jpeg"}
# ... <-> the one Pillow decoder a guest image of that type is opened with.
IMAGE_FORMAT = {2: "PNG", 3: "BMP", 4: "TIFF", 5: "JPEG"}
TOOL_TIMEOUT = 3.0  # seconds a clipboard tool may take before its owner is given up on
# After a tool that takes the keyboard focus (wl-clipboard without a data-control protocol) has run, a focus
# loss within this many seconds is taken as its doing (the window's events arrive a frame or more later).
TOOL_FOCUS_GRACE = 1.0
MAX_IMAGE_PIXELS = 64 * 1024 * 1024  # a guest image larger than this (8K x 8K) is not decoded


class LocalClipboard:
    """The local clipboard through a command-line tool; ``env`` is the environment the tool runs in."""

    name = ""
    package = ""
    any_text = TEXT  # what to ask for when the owner lists no targets at all
    takes_focus = False  # the tool takes the keyboard focus from the window while it runs

    def __init__(self, env: dict[str, str] | None = None):
        self.env = dict(os.environ if env is None else env)

    def _run(self, argv: list[str], data: bytes | None = None) -> bytes | None:
        try:
            if data is not None:
                # The tool forks a child that keeps serving the selection: no pipes of ours stay with it.
                proc = subprocess.run(argv, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=self.env, timeout=TOOL_TIMEOUT)
                return b"" if proc.returncode == 0 else None
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=self.env,
                                  timeout=TOOL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.info("clipboard: %s: %s", argv[0], exc)
            return None
        return proc.stdout if proc.returncode == 0 else None

    def targets(self) -> list[str]:
        raise NotImplementedError

    def read(self, mime: str) -> bytes | None:
        raise NotImplementedError

    def write(self, mime: str, data: bytes) -> bool:
        raise NotImplementedError


class XclipClipboard(LocalClipboard):
    """X11's CLIPBOARD selection through ``xclip``."""

    name = "xclip"
    package = "xclip"

    def targets(self) -> list[str]:
        out = self._run(["xclip", "-selection", "clipboard", "-o", "-t", "TARGETS"])
        return out.decode(errors="replace").split() if out else []

    any_text = "UTF8_STRING"

    def read(self, mime: str) -> bytes | None:
        return self._run(["xclip", "-selection", "clipboard", "-o", "-t", mime])

    def write(self, mime: str, data: bytes) -> bool:
        argv = ["xclip", "-selection", "clipboard", "-i"]
        if mime != TEXT:  # text: xclip's default serves UTF8_STRING, STRING and TEXT
            argv += ["-t", mime]
        return self._run(argv, data) is not None


class WaylandClipboard(LocalClipboard):
    """The Wayland clipboard through ``wl-copy`` / ``wl-paste`` (wl-clipboard)."""

    name = "wl-clipboard"
    package = "wl-clipboard"
    # On a compositor without a data-control protocol (weston 10), wl-copy and wl-paste map a surface of
    # their own to get the keyboard focus, since Wayland gives the selection only to the focused client.
    takes_focus = True

    def targets(self) -> list[str]:
        out = self._run(["wl-paste", "--list-types"])
        return out.decode(errors="replace").split() if out else []

    any_text = "text"  # wl-paste picks the owner's best text type

    def read(self, mime: str) -> bytes | None:
        return self._run(["wl-paste", "--no-newline", "--type", mime])

    def write(self, mime: str, data: bytes) -> bool:
        return self._run(["wl-copy", "--type", mime], data) is not None


def local_clipboard(env: dict[str, str] | None = None, platform: str | None = None) -> LocalClipboard | None:
    """The local clipboard's tool for this session, or None with one warning naming the package to
    install. ``platform``: the window's display server ("wayland" or "x11", as glfw runs it: X11 on a
    Wayland desktop with ``win:backend=x11``); without it, Wayland when ``WAYLAND_DISPLAY`` is set."""
    env = dict(os.environ if env is None else env)
    if platform is None:
        platform = "wayland" if env.get("WAYLAND_DISPLAY") else "x11"
    if platform == "wayland":
        cls = WaylandClipboard if env.get("WAYLAND_DISPLAY") else None
    else:
        cls = XclipClipboard if env.get("DISPLAY") else None
    if cls is None:
        return None
    tool = "wl-copy" if cls is WaylandClipboard else "xclip"
    if shutil.which(tool, path=env.get("PATH")) is None:
        log.warning("clipboard: %s is not installed, so only text is shared (no images or files): install %s",
                    tool, cls.package)
        return None
    return cls(env)


def to_png(kind: int, data: bytes) -> bytes | None:
    """A guest image (agent clipboard type ``kind``) as PNG bytes; None (with a warning) when it does not
    decode. The bytes come from the guest: Pillow decodes them only with the decoder of the declared type
    (never one guessed from the bytes: an EPS would reach Ghostscript) and with a pixel-count limit; PNG
    is checked the same way before it is passed on as it is."""
    mime = IMAGE_MIME.get(kind, kind)
    fmt = IMAGE_FORMAT.get(kind)
    if fmt is None:
        log.warning("clipboard: the guest copied an image of unknown type %s; not copied", kind)
        return None
    try:
        from PIL import Image
    except ImportError:
        log.warning("clipboard: the guest copied a %s image; checking it needs Pillow (pip install pillow)", mime)
        return None
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:   # reads the header only
            if image.width * image.height > MAX_IMAGE_PIXELS:
                log.warning("clipboard: the guest's %s image is %dx%d, over the %d Mpixel limit; not copied",
                            mime, image.width, image.height, MAX_IMAGE_PIXELS >> 20)
                return None
            if fmt == "PNG":
                image.load()   # it decodes as PNG: pass the guest's bytes on as they are
                return data
            out = io.BytesIO()
            image.save(out, format="PNG")
            return out.getvalue()
    except Image.DecompressionBombError:   # Pillow's own check, far above ours, stopped it in the header
        log.warning("clipboard: the guest's %s image is over the %d Mpixel limit; not copied",
                    mime, MAX_IMAGE_PIXELS >> 20)
        return None
    except Exception as exc:  # any decoder error on guest data: say so and go on
        log.warning("clipboard: the guest's %s image does not decode (%s); not copied", mime,
                    exc.__class__.__name__)
        return None


def file_paths(uri_list: bytes) -> list[str]:
    """Local file paths of a ``text/uri-list`` (comments and non-file URIs left out)."""
    paths = []
    for line in uri_list.decode(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        uri = urlparse(line)
        if uri.scheme == "file" and uri.netloc in ("", "localhost"):
            paths.append(unquote(uri.path))
    return paths


class ClipboardSync:
    """The local clipboard (``local``, a :class:`LocalClipboard`) and the guest's, through ``spice``
    (a :class:`kvmfr_client.spice.SpiceThread`; its client created with ``clipboard=True``).

    ``on_guest_text`` / ``on_guest_image`` are hooked on the client; :meth:`on_focus` reads the local
    clipboard. ``on_applied(what)`` (optional) is called on the clipboard thread after each change was
    applied: ``"local text"``, ``"local image"``, ``"vm text"``, ``"vm image"``, ``"vm files"``."""

    def __init__(self, local: LocalClipboard, spice, client, to_vm: bool = True, to_local: bool = True,
                 on_applied: Callable[[str], None] | None = None):
        self.local = local
        self.spice = spice
        self.client = client
        self.to_vm = to_vm
        self.to_local = to_local
        self.on_applied = on_applied
        self._seen: bytes | None = None  # digest of what the two clipboards last agreed on
        # A tool that takes the focus makes the window lose it and gain it back; reading the clipboard on that
        # gain would run the tool again, for ever (every key the user typed meanwhile lost with the focus).
        self._tool_busy = False
        self._tool_done = float("-inf")   # time.monotonic() when the last tool run ended
        self._ignore_gain = False
        self._stopped = False
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="clipboard", daemon=True)
        self._thread.start()
        client.on_clipboard_text = self._guest_text
        client.on_clipboard_image = self._guest_image

    # -- guest -> local (called on the SPICE thread) -----------------------------------------------
    def _guest_text(self, text: str) -> None:
        if self.to_local and not self._stopped:
            self._jobs.put((self._apply_text, text))

    def _guest_image(self, kind: int, data: bytes) -> None:
        if self.to_local and not self._stopped:
            self._jobs.put((self._apply_image, kind, data))

    def _apply_text(self, text: str) -> None:
        data = text.encode()
        if self.local.write(TEXT, data):
            self._seen = _digest(TEXT, data)
            log.debug("clipboard: guest -> local text (%d chars)", len(text))
            self._applied("local text")
        else:
            log.warning("clipboard: %s could not set the local clipboard", self.local.name)

    def _apply_image(self, kind: int, data: bytes) -> None:
        png = to_png(kind, data)
        if png is None:
            return
        if self.local.write("image/png", png):
            self._seen = _digest("image/png", png)
            log.debug("clipboard: guest -> local %s image (%d bytes as PNG)", IMAGE_MIME.get(kind), len(png))
            self._applied("local image")
        else:
            log.warning("clipboard: %s could not set the local clipboard", self.local.name)

    # -- local -> guest --------------------------------------------------------------------------
    def on_focus(self, focused: bool) -> None:
        """The window gained (or lost) focus: on gaining it, offer what the local clipboard newly holds. A
        focus loss that our own clipboard tool caused, and the gain after it, are not the user's."""
        if not focused:
            self._ignore_gain = self.local.takes_focus and (
                self._tool_busy or time.monotonic() - self._tool_done < TOOL_FOCUS_GRACE)
            return
        if self._ignore_gain:
            self._ignore_gain = False
            log.debug("clipboard: focus back from %s; not read again", self.local.name)
            return
        if not self.to_vm or self._stopped:
            return
        if self.local.takes_focus and not self._agent_connected():
            # Nobody in the guest to take it: do not take the focus from the window for nothing.
            return
        self._jobs.put((self._offer_local,))

    def _agent_connected(self) -> bool:
        agent = getattr(self.client, "agent", None)
        return agent is not None and agent.connected

    def _offer_local(self) -> None:
        targets = self.local.targets()
        if URI_LIST in targets:
            raw = self.local.read(URI_LIST) or b""
            paths = [p for p in file_paths(raw) if os.path.isfile(p)]
            if paths:   # files: their text target (the paths as text) is not offered, changed or not
                if self._changed(URI_LIST, raw):
                    self.spice.send_files(paths)
                    log.info("clipboard: local -> guest %d file(s)", len(paths))
                    self._applied("vm files")
                return
        for kind, mime in IMAGE_MIME.items():
            if mime in targets:
                data = self.local.read(mime)
                if data and self._changed(mime, data):
                    self.spice.set_clipboard_image(data, kind)
                    log.debug("clipboard: local -> guest %s (%d bytes)", mime, len(data))
                    self._applied("vm image")
                return
        target = next((t for t in TEXT_TARGETS if t in targets), None if targets else self.local.any_text)
        if target is not None:
            data = self.local.read(target)
            if data and self._changed(TEXT, data):
                encoding = "latin-1" if target == "STRING" else "utf-8"   # ICCCM: STRING is ISO 8859-1
                self.spice.set_clipboard_text(data.decode(encoding, errors="replace"))
                log.debug("clipboard: local -> guest text (%d bytes)", len(data))
                self._applied("vm text")

    def _changed(self, mime: str, data: bytes) -> bool:
        digest = _digest(mime, data)
        if digest == self._seen:
            return False
        self._seen = digest
        return True

    # -- the thread ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._tool_busy = True
            try:
                job[0](*job[1:])
            except Exception:  # a tool's surprise must not end clipboard sharing
                log.exception("clipboard: %s failed", job[0].__name__)
            finally:
                self._tool_done = time.monotonic()
                self._tool_busy = False

    def _applied(self, what: str) -> None:
        if self.on_applied is not None:
            self.on_applied(what)

    def poll(self) -> None:
        """Nothing to do on the window thread (the work happens on the clipboard thread)."""

    def stop(self) -> None:
        """Stop sharing: the client's hooks are taken back and jobs still queued are dropped, so the
        thread ends after the one job it may be running."""
        self._stopped = True
        if self.client.on_clipboard_text == self._guest_text:
            self.client.on_clipboard_text = None
        if self.client.on_clipboard_image == self._guest_image:
            self.client.on_clipboard_image = None
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(None)
        self._thread.join(TOOL_TIMEOUT + 1)


def _digest(mime: str, data: bytes) -> bytes:
    return hashlib.sha256(mime.encode() + b"\0" + data).digest()


class GlfwClipboard:
    """Text only, through GLFW's clipboard: where no clipboard tool is installed.

    Guest -> local: text the guest copied is put on the local clipboard (on the window thread, in
    :meth:`poll`). Local -> guest: the local clipboard is read when the window gains focus."""

    def __init__(self, window, spice, client, to_vm: bool = True, to_local: bool = True):
        """``spice``: the SpiceThread; ``client``: its SpiceClient (created with ``clipboard=True``)."""
        self.window = window
        self.spice = spice
        self.to_vm = to_vm
        self.to_local = to_local
        self._lock = threading.Lock()
        self._from_guest: list[str] = []
        self._last: str | None = None
        client.on_clipboard_text = self._guest_text

    def _guest_text(self, text: str) -> None:  # SPICE thread
        import glfw
        with self._lock:
            self._from_guest.append(text)
        glfw.post_empty_event()  # wake the window loop so poll() runs soon

    def poll(self) -> None:
        """Call from the window thread's loop: apply text the guest copied to the local clipboard."""
        import glfw
        with self._lock:
            texts, self._from_guest = self._from_guest, []
        if texts and self.to_local:
            self._last = texts[-1]
            glfw.set_clipboard_string(self.window, texts[-1])
            log.debug("clipboard: guest -> local (%d chars)", len(texts[-1]))

    def on_focus(self, focused: bool) -> None:
        if not focused or not self.to_vm:
            return
        import glfw
        try:
            raw = glfw.get_clipboard_string(self.window)
        except Exception as exc:  # no owner / not text: nothing to offer
            log.debug("clipboard: cannot read the local clipboard: %r", exc)
            return
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if text and text != self._last:
            self._last = text
            self.spice.set_clipboard_text(text)
            log.debug("clipboard: local -> guest (%d chars)", len(text))

    def stop(self) -> None:
        pass


def _window_platform() -> str | None:
    """The display server glfw's window runs on ("wayland", "x11"), or None when glfw cannot say."""
    try:
        import glfw
        return {glfw.PLATFORM_WAYLAND: "wayland", glfw.PLATFORM_X11: "x11"}.get(glfw.get_platform())
    except Exception:   # glfw < 3.4 (X11 only here) or not initialised
        return None


def clipboard_for(window, spice, client, to_vm: bool = True, to_local: bool = True):
    """The viewer's clipboard sharing: :class:`ClipboardSync` through the desktop's clipboard tool, or
    :class:`GlfwClipboard` (text only) where the tool is missing."""
    local = local_clipboard(platform=_window_platform())
    if local is not None:
        log.info("clipboard: the local clipboard through %s (text, images, files)", local.name)
        return ClipboardSync(local, spice, client, to_vm, to_local)
    return GlfwClipboard(window, spice, client, to_vm, to_local)
