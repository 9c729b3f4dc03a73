"""The SPICE main channel: session id, mouse mode, the list of channels and the guest agent."""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import Callable

from . import protocol as P
from .channel import Channel
from .errors import SpiceProtocolError

log = logging.getLogger(__name__)

_U32 = struct.Struct("<I")


@dataclass
class MainInit:
    session_id: int
    display_channels_hint: int
    supported_mouse_modes: int
    current_mouse_mode: int
    agent_connected: bool
    agent_tokens: int


class MainChannel(Channel):
    name = "main"
    caps = (P.MAIN_CAP_AGENT_CONNECTED_TOKENS,)

    def __init__(self, link, address, mouse_mode: P.MouseMode = P.MouseMode.SERVER):
        super().__init__(link, address)
        self.wanted_mouse_mode = mouse_mode
        self.init: MainInit | None = None
        self.supported_mouse_modes = 0
        self.mouse_mode = 0
        self.agent_connected = False
        self.agent_tokens = 0
        self.initialized = asyncio.Event()
        # CHANNELS_LIST: the (type, id) of every channel the server offers (e.g. no record channel
        # without a sound card on SPICE audio); set once it came.
        self.channels: set[tuple[int, int]] = set()
        self.channels_listed = asyncio.Event()
        self.mouse_mode_changed = asyncio.Event()
        self.on_mouse_mode: Callable[[int, int], None] | None = None
        # The agent (clipboard) hooks these: called with the server's tokens / the raw AGENT_DATA.
        self.on_agent_connected: Callable[[int], None] | None = None
        self.on_agent_disconnected: Callable[[], None] | None = None
        self.on_agent_data: Callable[[bytes], None] | None = None
        self.on_agent_token: Callable[[int], None] | None = None

    def handle(self, msg_type: int, payload: bytes) -> None:
        if msg_type == P.MainServerMsg.INIT:
            fields = P.unpack(P.MAIN_INIT, payload, "MAIN INIT")
            self.init = MainInit(fields[0], fields[1], fields[2], fields[3], bool(fields[4]), fields[5])
            self.supported_mouse_modes = self.init.supported_mouse_modes
            self.mouse_mode = self.init.current_mouse_mode
            self.agent_connected = self.init.agent_connected
            self.agent_tokens = self.init.agent_tokens
            log.info("main: session %#x, mouse modes supported %d current %d, agent %s",
                     self.init.session_id, self.supported_mouse_modes, self.mouse_mode,
                     "connected" if self.agent_connected else "absent")
            self.send(P.MainClientMsg.ATTACH_CHANNELS)
            self.request_mouse_mode(self.wanted_mouse_mode)
            self.initialized.set()
            if self.on_mouse_mode:
                self.on_mouse_mode(self.supported_mouse_modes, self.mouse_mode)
            if self.agent_connected and self.on_agent_connected:
                self.on_agent_connected(self.agent_tokens)
        elif msg_type == P.MainServerMsg.CHANNELS_LIST:
            count = P.unpack(_U32, payload, "CHANNELS_LIST")[0]
            if len(payload) < 4 + 2 * count:
                raise SpiceProtocolError(f"CHANNELS_LIST of {len(payload)} bytes for {count} channels")
            self.channels = {(payload[4 + 2 * i], payload[5 + 2 * i]) for i in range(count)}
            log.debug("main: channels offered %s", sorted(self.channels))
            self.channels_listed.set()
        elif msg_type == P.MainServerMsg.MOUSE_MODE:
            self.supported_mouse_modes, self.mouse_mode = P.unpack(P.MOUSE_MODE, payload, "MOUSE_MODE")
            log.info("main: mouse mode now %d (supported %d)", self.mouse_mode, self.supported_mouse_modes)
            self.mouse_mode_changed.set()
            if self.on_mouse_mode:
                self.on_mouse_mode(self.supported_mouse_modes, self.mouse_mode)
        elif msg_type in (P.MainServerMsg.AGENT_CONNECTED, P.MainServerMsg.AGENT_CONNECTED_TOKENS):
            tokens = struct.unpack_from("<I", payload)[0] if len(payload) >= 4 else 0
            self.agent_connected, self.agent_tokens = True, tokens
            log.info("main: guest agent connected (%d tokens)", tokens)
            if self.on_agent_connected:
                self.on_agent_connected(tokens)
        elif msg_type == P.MainServerMsg.AGENT_DISCONNECTED:
            self.agent_connected = False
            log.info("main: guest agent disconnected")
            if self.on_agent_disconnected:
                self.on_agent_disconnected()
        elif msg_type == P.MainServerMsg.AGENT_DATA:
            if self.on_agent_data:
                self.on_agent_data(payload)
        elif msg_type == P.MainServerMsg.AGENT_TOKEN:
            if self.on_agent_token:
                self.on_agent_token(P.unpack(_U32, payload, "AGENT_TOKEN")[0])
        else:
            super().handle(msg_type, payload)

    def supports(self, mode: P.MouseMode) -> bool:
        return bool(self.supported_mouse_modes & mode)

    def request_mouse_mode(self, mode: P.MouseMode) -> bool:
        """Ask for server (relative) or client (absolute) mouse mode; False if not offered."""
        self.wanted_mouse_mode = mode
        if not self.supports(mode):
            log.info("main: mouse mode %s not offered by the server (supported %d)", mode.name,
                     self.supported_mouse_modes)
            return False
        if self.mouse_mode != mode:
            self.mouse_mode_changed.clear()
            self.send(P.MainClientMsg.MOUSE_MODE_REQUEST, struct.pack("<H", mode))
        return True

    async def wait_mouse_mode(self, mode: P.MouseMode, timeout: float = 2.0) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.mouse_mode != mode:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            self.mouse_mode_changed.clear()
            try:
                await asyncio.wait_for(self.mouse_mode_changed.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    def agent_start(self, tokens: int) -> None:
        self.send(P.MainClientMsg.AGENT_START, struct.pack("<I", tokens))

    def agent_data(self, data: bytes) -> None:
        self.send(P.MainClientMsg.AGENT_DATA, data)

    def agent_token(self, tokens: int) -> None:
        self.send(P.MainClientMsg.AGENT_TOKEN, struct.pack("<I", tokens))
