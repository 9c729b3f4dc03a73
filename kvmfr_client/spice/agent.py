"""The SPICE agent link (VDAgent messages inside MAIN AGENT_DATA) and the clipboard on top of it.

Flow: the owner of a clipboard sends CLIPBOARD_GRAB with the types it has; the peer sends
CLIPBOARD_REQUEST for one type; the owner answers CLIPBOARD with the data. This client requests the
guest's UTF-8 text as soon as the guest grabs, and grabs for the host whenever it is given new text.
UTF-8 text is preferred; when the guest offers only an image, its PNG/BMP/TIFF/JPG bytes are handed over
as they are (converting and placing them on the local clipboard is up to the caller,
:mod:`kvmfr_client.input.clipboard`).

Files go host -> guest only, with the agent's file transfer (FILE_XFER_START with the name and size,
the guest answers STATUS "can send data", then FILE_XFER_DATA pieces, then the guest's final STATUS);
spice-vdagent saves them in the guest user's download folder. The vdagent protocol has no guest -> host
file transfer (its FILE_LIST clipboard type names paths inside a WebDAV-shared folder, which this client
does not serve). A file is read 64 KiB at a time, only while less than ``XFER_WINDOW`` bytes wait for
the server's tokens, so a large file never sits in memory.

The guest controls every byte of the agent stream, so sizes and counts are checked before use:

* a message is assembled only up to ``MAX_CLIPBOARD`` (16 MiB); a larger one (a 100 MB clipboard) is
  refused with one warning and its bytes are dropped as they arrive, so memory stays at one AGENT_DATA
  piece whatever size the header claims;
* capability words beyond ``MAX_CAPS_WORDS`` and clipboard types beyond ``MAX_GRAB_TYPES`` are ignored;
* a message too short for its fields is counted in ``bad_messages`` and skipped (rate-limited log);
* what we queue for the guest is capped too (``MAX_OUTBOX``): a guest that asks for the host clipboard
  over and over, faster than the server's tokens let it through, gets "no data" instead of another
  copy queued each time (``refused_requests``);
* the guest's own clipboard limit (MAX_CLIPBOARD message) is honoured: larger host data is not offered;
* a file-transfer status for a transfer we did not start is counted in ``bad_messages`` and ignored;
* guest clipboard data is taken only as UTF-8 text or as the image type (PNG/BMP/TIFF/JPEG) we last asked
  for; any other type is ignored, so guest bytes never reach a decoder we did not choose.
"""

from __future__ import annotations

import enum
import logging
import os
import stat
import struct
from collections import deque
from dataclasses import dataclass
from typing import Callable

from . import protocol as P
from .errors import SpiceProtocolError
from .warnings import RateLimitedWarning

log = logging.getLogger(__name__)

VD_AGENT_PROTOCOL = 1
MESSAGE_HEADER = struct.Struct("<IIQI")  # protocol, type, opaque, size
MAX_DATA_SIZE = 2048  # VD_AGENT_MAX_DATA_SIZE: the largest AGENT_DATA payload
CLIENT_TOKENS = 10  # AGENT_DATA messages the server may send us before we return tokens
MAX_CLIPBOARD = 16 * 1024 * 1024  # the largest agent message (clipboard) we assemble; larger ones are dropped
MAX_CAPS_WORDS = 16  # capability words read from ANNOUNCE_CAPABILITIES (spice-vdagent sends 1)
MAX_GRAB_TYPES = 64  # clipboard types read from CLIPBOARD_GRAB (a real agent offers a handful)
MAX_OUTBOX = 2 * MAX_CLIPBOARD  # bytes queued for the guest, waiting for the server's tokens
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
XFER_STATUS = struct.Struct("<II")  # id, result
XFER_DATA = struct.Struct("<IQ")  # id, size (then the bytes)
XFER_PIECE = 64 * 1024  # bytes of a file per FILE_XFER_DATA message (as spice-gtk)
XFER_WINDOW = 256 * 1024  # file bytes we let wait for the server's tokens before reading more
MAX_XFER_FILES = 64  # files offered in one go (a selection of thousands is cut, with a warning)


class AgentMsg(enum.IntEnum):
    MOUSE_STATE = 1
    MONITORS_CONFIG = 2
    REPLY = 3
    CLIPBOARD = 4
    DISPLAY_CONFIG = 5
    ANNOUNCE_CAPABILITIES = 6
    CLIPBOARD_GRAB = 7
    CLIPBOARD_REQUEST = 8
    CLIPBOARD_RELEASE = 9
    FILE_XFER_START = 10
    FILE_XFER_STATUS = 11
    FILE_XFER_DATA = 12
    CLIENT_DISCONNECTED = 13
    MAX_CLIPBOARD = 14


class AgentCap(enum.IntEnum):
    CLIPBOARD = 3
    CLIPBOARD_BY_DEMAND = 5
    CLIPBOARD_SELECTION = 6
    MAX_CLIPBOARD = 10
    FILE_XFER_DISABLED = 13
    FILE_XFER_DETAILED_ERRORS = 14
    CLIPBOARD_NO_RELEASE_ON_REGRAB = 16
    CLIPBOARD_GRAB_SERIAL = 17


class ClipboardType(enum.IntEnum):
    NONE = 0
    UTF8_TEXT = 1
    PNG = 2
    BMP = 3
    TIFF = 4
    JPG = 5


class XferStatus(enum.IntEnum):
    CAN_SEND_DATA = 0
    CANCELLED = 1
    ERROR = 2
    SUCCESS = 3
    NOT_ENOUGH_SPACE = 4
    SESSION_LOCKED = 5
    VDAGENT_NOT_CONNECTED = 6
    DISABLED = 7


IMAGE_TYPES = (ClipboardType.PNG, ClipboardType.BMP, ClipboardType.TIFF, ClipboardType.JPG)
# What we take from a guest that offers several types, best first.
PREFERRED = (ClipboardType.UTF8_TEXT, *IMAGE_TYPES)

CLIENT_CAPS = (AgentCap.CLIPBOARD_BY_DEMAND, AgentCap.CLIPBOARD_SELECTION, AgentCap.MAX_CLIPBOARD)


@dataclass
class FileTransfer:
    """One host file on its way to the guest."""

    id: int
    path: str
    size: int
    file: object = None
    sent: int = 0
    result: str = ""  # "", or how it ended: "success", "cancelled", "error", "not enough space", ...


class ClipboardAgent:
    """Clipboard sharing with the guest's vdagent, on the SPICE loop.

    ``on_guest_text(text)`` is called (on the SPICE thread) when the guest copied text and
    ``on_guest_image(kind, data)`` when it copied only an image; :meth:`set_host_text` and
    :meth:`set_host_image` offer host data to the guest.
    """

    def __init__(self, main, to_vm: bool = True, to_local: bool = True):
        self.main = main
        self.to_vm = to_vm
        self.to_local = to_local
        self.on_guest_text: Callable[[str], None] | None = None
        self.on_guest_image: Callable[[int, bytes], None] | None = None
        self.host_image: tuple[int, bytes] | None = None
        self.connected = False
        self.guest_caps: list[int] = []
        self.host_text: str | None = None
        self.guest_text: str | None = None
        self._requested: int | None = None  # the clipboard type we last asked the guest for
        self._server_tokens = 0
        self._outbox: deque[bytes] = deque()
        self._outbox_bytes = 0
        self.refused_requests = 0  # guest clipboard requests answered "no data": the outbox was full
        self._inbox = bytearray()
        self._skip = 0  # bytes of a refused (over MAX_CLIPBOARD) message still to drop as they arrive
        self._received = 0
        self.bad_messages = 0  # too short, or another agent protocol: skipped
        self.refused_messages = 0  # over MAX_CLIPBOARD: dropped unread
        self.guest_max_clipboard = 0  # the guest's own limit (MAX_CLIPBOARD message); 0 = none said
        self.on_file_done: Callable[[FileTransfer], None] | None = None
        self._xfers: dict[int, FileTransfer] = {}
        self._next_xfer = 1
        self._warn = RateLimitedWarning(log)
        main.on_agent_connected = self._agent_connected
        main.on_agent_disconnected = self._agent_disconnected
        main.on_agent_data = self._agent_data
        main.on_agent_token = self._agent_token

    # -- link ----------------------------------------------------------------------------------
    def _agent_connected(self, tokens: int) -> None:
        self.connected = True
        self._server_tokens = tokens
        self._inbox.clear()
        self._skip = 0
        self.main.agent_start(CLIENT_TOKENS)
        self._send(AgentMsg.ANNOUNCE_CAPABILITIES, struct.pack("<II", 1, _caps_word(CLIENT_CAPS)))
        if self.host_text is not None or self.host_image is not None:
            self._grab()

    def _agent_disconnected(self) -> None:
        self.connected = False
        self._outbox.clear()
        self._outbox_bytes = 0
        for xfer in list(self._xfers.values()):
            self._xfer_end(xfer, "agent disconnected")

    def main_closed(self) -> None:
        """The main channel closed (server gone, or the session ended): transfers in progress end."""
        for xfer in list(self._xfers.values()):
            self._xfer_end(xfer, "connection closed")
        self._agent_disconnected()

    def _agent_token(self, tokens: int) -> None:
        self._server_tokens += tokens
        self._flush()

    def _send(self, msg_type: int, data: bytes) -> None:
        self._queue(msg_type, data)
        self._flush()

    def _queue(self, msg_type: int, data: bytes) -> None:
        message = MESSAGE_HEADER.pack(VD_AGENT_PROTOCOL, msg_type, 0, len(data)) + data
        for i in range(0, len(message), MAX_DATA_SIZE):
            self._outbox.append(message[i:i + MAX_DATA_SIZE])
        self._outbox_bytes += len(message)

    def _flush(self) -> None:
        self._drain()
        self._pump_files()

    def _drain(self) -> None:
        # Each AGENT_DATA costs one of the server's tokens; the rest waits for AGENT_TOKEN.
        while self._outbox and self._server_tokens > 0 and not self.main.closed:
            self._server_tokens -= 1
            piece = self._outbox.popleft()
            self._outbox_bytes -= len(piece)
            self.main.agent_data(piece)

    def _agent_data(self, payload: bytes) -> None:
        self._received += 1
        if self._received >= CLIENT_TOKENS // 2:  # give the server its tokens back in batches
            self.main.agent_token(self._received)
            self._received = 0
        data = memoryview(payload)
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        self._inbox += data
        while len(self._inbox) >= MESSAGE_HEADER.size:
            protocol, msg_type, _opaque, size = MESSAGE_HEADER.unpack_from(self._inbox)
            if protocol != VD_AGENT_PROTOCOL:
                self.bad_messages += 1
                self._warn.warn("protocol", "agent: message of agent protocol %d (expected %d); agent data"
                                " dropped", protocol, VD_AGENT_PROTOCOL)
                self._inbox.clear()
                return
            end = MESSAGE_HEADER.size + size
            if size > MAX_CLIPBOARD:
                self.refused_messages += 1
                self._warn.warn("size", "agent: the guest sent %s of %.1f MiB, over the %d MiB limit; not"
                                " copied", _describe(msg_type), size / 2**20, MAX_CLIPBOARD // 2**20)
                self._skip = max(0, end - len(self._inbox))
                del self._inbox[:end]
                continue
            if len(self._inbox) < end:
                return
            data = bytes(self._inbox[MESSAGE_HEADER.size:end])
            del self._inbox[:end]
            try:
                self._handle(msg_type, data)
            except SpiceProtocolError as exc:
                self.bad_messages += 1
                self._warn.warn(f"msg{msg_type}", "agent: malformed message %d: %s; skipped", msg_type, exc)

    # -- messages ------------------------------------------------------------------------------
    @property
    def _selection(self) -> bool:
        return _has(self.guest_caps, AgentCap.CLIPBOARD_SELECTION)

    def _strip_selection(self, data: bytes) -> tuple[int, bytes]:
        if self._selection and len(data) >= 4:
            return data[0], data[4:]
        return 0, data

    def _with_selection(self, data: bytes) -> bytes:
        return (b"\0\0\0\0" + data) if self._selection else data

    def _handle(self, msg_type: int, data: bytes) -> None:
        if msg_type == AgentMsg.ANNOUNCE_CAPABILITIES:
            request = P.unpack(_U32, data, "agent ANNOUNCE_CAPABILITIES")[0]
            count = min((len(data) - 4) // 4, MAX_CAPS_WORDS)
            self.guest_caps = list(struct.unpack_from(f"<{count}I", data, 4))
            log.info("agent: guest capabilities %s", [hex(c) for c in self.guest_caps])
            if request:
                self._send(AgentMsg.ANNOUNCE_CAPABILITIES, struct.pack("<II", 0, _caps_word(CLIENT_CAPS)))
            return
        if msg_type == AgentMsg.CLIPBOARD_GRAB:
            selection, body = self._strip_selection(data)
            types = list(struct.unpack_from(f"<{min(len(body) // 4, MAX_GRAB_TYPES)}I", body))
            wanted = next((t for t in PREFERRED if t in types), None)
            if selection == 0 and self.to_local and wanted is not None:
                self.host_text = self.host_image = None  # the guest owns the clipboard now
                self._requested = int(wanted)
                self._send(AgentMsg.CLIPBOARD_REQUEST, self._with_selection(struct.pack("<I", wanted)))
        elif msg_type == AgentMsg.CLIPBOARD:
            selection, body = self._strip_selection(data)
            kind = P.unpack(_U32, body, "agent CLIPBOARD")[0]
            if selection != 0:
                return
            if kind == ClipboardType.UTF8_TEXT:
                self.guest_text = body[4:].decode("utf-8", errors="replace")
                if self.on_guest_text is not None:
                    self.on_guest_text(self.guest_text)
            elif kind in IMAGE_TYPES and kind == self._requested:
                # Only an image type we support and asked for: the bytes go to a decoder chosen by it.
                self._requested = None
                if self.on_guest_image is not None:
                    self.on_guest_image(kind, body[4:])
            elif kind != ClipboardType.NONE:
                self._warn.warn("clip-type", "agent: the guest sent clipboard type %d, which was not asked"
                                " for; ignored", kind)
        elif msg_type == AgentMsg.CLIPBOARD_REQUEST:
            selection, body = self._strip_selection(data)
            kind = P.unpack(_U32, body, "agent CLIPBOARD_REQUEST")[0]
            reply = struct.pack("<I", ClipboardType.NONE)
            if selection == 0 and kind == ClipboardType.UTF8_TEXT and self.host_text is not None \
                    and self._fits(len(self.host_text.encode())):
                reply = struct.pack("<I", kind) + self.host_text.encode()
            elif selection == 0 and self.host_image is not None and kind == self.host_image[0]:
                reply = struct.pack("<I", kind) + self.host_image[1]
            if self._outbox_bytes + len(reply) > MAX_OUTBOX:
                self.refused_requests += 1
                self._warn.warn("requests", "agent: the guest asks for the clipboard faster than it takes it;"
                                " answering with no data")
                reply = struct.pack("<I", ClipboardType.NONE)
            self._send(AgentMsg.CLIPBOARD, self._with_selection(reply))
        elif msg_type == AgentMsg.CLIPBOARD_RELEASE:
            pass
        elif msg_type == AgentMsg.MAX_CLIPBOARD:
            limit = P.unpack(_I32, data, "agent MAX_CLIPBOARD")[0]
            self.guest_max_clipboard = max(0, limit)  # -1 / 0: no limit
            log.info("agent: the guest takes clipboards of at most %d bytes", self.guest_max_clipboard)
        elif msg_type == AgentMsg.FILE_XFER_STATUS:
            xfer_id, result = P.unpack(XFER_STATUS, data, "agent FILE_XFER_STATUS")
            self._xfer_status(xfer_id, result, data[XFER_STATUS.size:])
        else:
            log.debug("agent: ignoring message %d (%d bytes)", msg_type, len(data))

    # -- host side -----------------------------------------------------------------------------
    def _fits(self, size: int) -> bool:
        """Whether host data of ``size`` bytes may be offered: within our cap and the guest's own."""
        limit = min(MAX_CLIPBOARD, self.guest_max_clipboard or MAX_CLIPBOARD)
        if size <= limit:
            return True
        self._warn.warn("host-size", "agent: the local clipboard holds %s, over the %s the guest takes; not"
                        " offered", _human(size), _human(limit))
        return False

    def set_host_text(self, text: str) -> None:
        """The host clipboard now holds ``text``: offer it to the guest."""
        if not self.to_vm or text == self.host_text or text == self.guest_text:
            return
        if not self._fits(len(text.encode())):
            return
        self.host_text, self.host_image = text, None
        if self.connected:
            self._grab()

    def set_host_image(self, data: bytes, kind: int = ClipboardType.PNG) -> None:
        """The host clipboard now holds an image (PNG bytes by default): offer it to the guest."""
        if not self.to_vm or not self._fits(len(data)):
            return
        self.host_text, self.host_image = None, (int(kind), bytes(data))
        if self.connected:
            self._grab()

    def _grab(self) -> None:
        # No grab serial: this client does not announce CLIPBOARD_GRAB_SERIAL, so neither side uses it.
        kind = ClipboardType.UTF8_TEXT if self.host_text is not None else self.host_image[0]
        self._send(AgentMsg.CLIPBOARD_GRAB, self._with_selection(struct.pack("<I", kind)))

    # -- files (host -> guest) -----------------------------------------------------------------
    def send_files(self, paths: list[str]) -> list[FileTransfer]:
        """Start sending regular files to the guest's agent; returns the transfers started (each ends
        with ``on_file_done(transfer)``, ``transfer.result`` saying how). A path that is not a readable
        regular file is skipped with a warning."""
        if not self.to_vm:
            return []
        if not self.connected:
            log.warning("agent: no SPICE agent in the guest; files not sent")
            return []
        if _has(self.guest_caps, AgentCap.FILE_XFER_DISABLED):
            log.warning("agent: file transfer is disabled in the guest's agent; files not sent")
            return []
        if len(paths) > MAX_XFER_FILES:
            log.warning("agent: %d files offered; sending the first %d", len(paths), MAX_XFER_FILES)
        started = []
        for path in paths[:MAX_XFER_FILES]:
            try:
                # Non-blocking: opening a FIFO (or a device) must not stall the SPICE loop; fstat then says
                # what was opened, so a path swapped after a check cannot slip through.
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
                try:
                    st = os.fstat(fd)
                except OSError:
                    os.close(fd)
                    raise
            except OSError as exc:
                log.warning("agent: cannot read %s (%s); not sent", path, exc.strerror)
                continue
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                log.warning("agent: %s is not a regular file; not sent", path)
                continue
            handle = os.fdopen(fd, "rb")
            xfer = FileTransfer(self._next_xfer, path, st.st_size, handle)
            self._next_xfer += 1
            self._xfers[xfer.id] = xfer
            name = os.path.basename(path).replace("\n", " ")
            keyfile = f"[vdagent-file-xfer]\nname={name}\nsize={st.st_size}\n".encode() + b"\0"
            self._send(AgentMsg.FILE_XFER_START, struct.pack("<I", xfer.id) + keyfile)
            log.info("agent: offering %s (%d bytes) to the guest", name, st.st_size)
            started.append(xfer)
        return started

    def _xfer_status(self, xfer_id: int, result: int, detail: bytes) -> None:
        xfer = self._xfers.get(xfer_id)
        if xfer is None:
            self.bad_messages += 1
            self._warn.warn("xfer-id", "agent: file-transfer status for unknown transfer %d; ignored", xfer_id)
            return
        if result == XferStatus.CAN_SEND_DATA:
            xfer.result = "sending"
            self._pump_files()
            return
        try:
            how = XferStatus(result).name.lower().replace("_", " ")
        except ValueError:
            how = f"status {result}"
        if result != XferStatus.SUCCESS:
            log.warning("agent: the guest ended the transfer of %s: %s", os.path.basename(xfer.path), how)
        self._xfer_end(xfer, how)

    def _pump_files(self) -> None:
        """Read and queue more file data while little waits for the server's tokens."""
        for xfer in list(self._xfers.values()):
            while xfer.result == "sending" and xfer.sent < xfer.size and self._outbox_bytes < XFER_WINDOW \
                    and not self.main.closed:
                try:
                    piece = xfer.file.read(min(XFER_PIECE, xfer.size - xfer.sent))
                except OSError as exc:
                    piece = b""
                    log.warning("agent: reading %s failed: %s", xfer.path, exc.strerror)
                if not piece:  # shrank or failed under us: the guest is told, not left waiting for the rest
                    self._queue(AgentMsg.FILE_XFER_STATUS, XFER_STATUS.pack(xfer.id, XferStatus.ERROR))
                    self._drain()
                    self._xfer_end(xfer, "error")
                    break
                xfer.sent += len(piece)
                self._queue(AgentMsg.FILE_XFER_DATA, XFER_DATA.pack(xfer.id, len(piece)) + piece)
                self._drain()
            if xfer.result == "sending" and xfer.sent >= xfer.size and xfer.file is not None:
                xfer.file.close()  # all queued; the guest's SUCCESS ends it
                xfer.file = None

    def _xfer_end(self, xfer: FileTransfer, how: str) -> None:
        self._xfers.pop(xfer.id, None)
        if xfer.file is not None:
            xfer.file.close()
            xfer.file = None
        xfer.result = how
        if self.on_file_done is not None:
            self.on_file_done(xfer)


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    return f"{size / 1024:.1f} KiB" if size < 2**20 else f"{size / 2**20:.1f} MiB"


def _describe(msg_type: int) -> str:
    try:
        return f"a {AgentMsg(msg_type).name.lower().replace('_', ' ')} message"
    except ValueError:
        return f"an agent message of type {msg_type}"


def _caps_word(bits) -> int:
    return P.caps_words(list(bits))[0]


def _has(words: list[int], bit: int) -> bool:
    return P.has_cap(words, bit)
