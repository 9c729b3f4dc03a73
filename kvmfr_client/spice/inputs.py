"""The SPICE inputs channel: keys as set-1 scancodes, relative and absolute mouse, buttons, wheel."""

from __future__ import annotations

import asyncio
import logging

from . import protocol as P
from .channel import Channel
from .keymap import PAUSE, make_code, break_code, pause_bytes

log = logging.getLogger(__name__)

# QEMU's PS/2 and virtio mice accept at most this much per event; larger deltas are split.
MAX_DELTA = 127
# Motion messages allowed in flight before further motion is coalesced until the server acks.
MAX_UNACKED_MOTION = 4 * P.MOTION_ACK_BUNCH


class InputsChannel(Channel):
    name = "inputs"
    caps = (P.INPUTS_CAP_KEY_SCANCODE,)

    def __init__(self, link, address):
        super().__init__(link, address)
        self.buttons_state = 0
        self.server_modifiers = 0
        self.initialized = asyncio.Event()
        self._unacked = 0
        self._pending_dx = 0
        self._pending_dy = 0
        self._pending_position: tuple[int, int, int] | None = None

    @property
    def key_scancode_supported(self) -> bool:
        return P.has_cap(self.link.channel_caps, P.INPUTS_CAP_KEY_SCANCODE)

    def handle(self, msg_type: int, payload: bytes) -> None:
        if msg_type == P.InputsServerMsg.INIT:
            self.server_modifiers = P.unpack(P.KEY_MODIFIERS, payload, "INPUTS INIT")[0]
            self.initialized.set()
        elif msg_type == P.InputsServerMsg.KEY_MODIFIERS:
            self.server_modifiers = P.unpack(P.KEY_MODIFIERS, payload, "KEY_MODIFIERS")[0]
        elif msg_type == P.InputsServerMsg.MOUSE_MOTION_ACK:
            self._unacked = max(0, self._unacked - P.MOTION_ACK_BUNCH)
            self._flush_pending_motion()
        else:
            super().handle(msg_type, payload)

    # -- keyboard ------------------------------------------------------------------------------
    def key_down(self, code: int) -> None:
        """Press a key given as a set-1 scancode; ``0x100 | sc`` is the E0-extended key ``sc``."""
        if code == PAUSE:
            self._send_scancode_bytes(pause_bytes())
            return
        self.send(P.InputsClientMsg.KEY_DOWN, P.KEY_CODE.pack(make_code(code)))

    def key_up(self, code: int) -> None:
        if code == PAUSE:
            return  # Pause has no break code: its make sequence already holds press and release
        self.send(P.InputsClientMsg.KEY_UP, P.KEY_CODE.pack(break_code(code)))

    def _send_scancode_bytes(self, data: bytes) -> None:
        if self.key_scancode_supported:
            self.send(P.InputsClientMsg.KEY_SCANCODE, data)
            return
        # Without KEY_SCANCODE the server still feeds each non-zero byte of a KEY_DOWN code to the
        # keyboard in order, so send the sequence three bytes at a time.
        for i in range(0, len(data), 3):
            self.send(P.InputsClientMsg.KEY_DOWN, P.KEY_CODE.pack(int.from_bytes(data[i:i + 3], "little")))

    def key_modifiers(self, modifiers: P.Modifier | int) -> None:
        """Set the guest's lock keys (ScrollLock/NumLock/CapsLock) to ``modifiers``."""
        self.send(P.InputsClientMsg.KEY_MODIFIERS, P.KEY_MODIFIERS.pack(int(modifiers)))

    # -- mouse ---------------------------------------------------------------------------------
    def motion(self, dx: int, dy: int) -> None:
        """Relative motion (server mouse mode); split into steps QEMU accepts, sent in one write."""
        if not dx and not dy:
            return
        if self._unacked >= MAX_UNACKED_MOTION:
            self._pending_dx += dx
            self._pending_dy += dy
            return
        self._send_motion(dx, dy)

    def _send_motion(self, dx: int, dy: int) -> None:
        frames = []
        while dx or dy:
            sx = max(-MAX_DELTA, min(MAX_DELTA, dx))
            sy = max(-MAX_DELTA, min(MAX_DELTA, dy))
            frames.append(self.frame(P.InputsClientMsg.MOUSE_MOTION,
                                     P.MOUSE_MOTION.pack(sx, sy, self.buttons_state)))
            dx -= sx
            dy -= sy
        self._unacked += len(frames)
        self.send_raw(b"".join(frames))

    def position(self, x: int, y: int, display_id: int = 0) -> None:
        """Absolute position in guest pixels of display ``display_id`` (client mouse mode)."""
        x, y = max(0, int(x)), max(0, int(y))
        if self._unacked >= MAX_UNACKED_MOTION:
            self._pending_position = (x, y, display_id)
            return
        self._send_position(x, y, display_id)

    def _send_position(self, x: int, y: int, display_id: int) -> None:
        self._unacked += 1
        self.send(P.InputsClientMsg.MOUSE_POSITION, P.MOUSE_POSITION.pack(x, y, self.buttons_state, display_id))

    def _flush_pending_motion(self) -> None:
        if self._pending_dx or self._pending_dy:
            dx, dy = self._pending_dx, self._pending_dy
            self._pending_dx = self._pending_dy = 0
            self._send_motion(dx, dy)
        if self._pending_position is not None:
            position, self._pending_position = self._pending_position, None
            self._send_position(*position)

    def button_press(self, button: P.Button | int) -> None:
        button = P.Button(button)
        self.buttons_state |= P.BUTTON_MASK[button]
        self.send(P.InputsClientMsg.MOUSE_PRESS, P.MOUSE_BUTTON.pack(button, self.buttons_state))

    def button_release(self, button: P.Button | int) -> None:
        button = P.Button(button)
        self.buttons_state &= ~P.BUTTON_MASK[button]
        self.send(P.InputsClientMsg.MOUSE_RELEASE, P.MOUSE_BUTTON.pack(button, self.buttons_state))

    def wheel(self, steps: int) -> None:
        """Scroll: positive ``steps`` scroll up, negative down; each step is a press and release."""
        button = P.Button.UP if steps > 0 else P.Button.DOWN
        for _ in range(abs(steps)):
            self.button_press(button)
            self.button_release(button)

    async def close(self, flush: bool = False, timeout: float = 2.0) -> None:
        if flush and not self.closed:
            self._flush_pending_motion()  # motion held back for flow control is still owed
        await super().close(flush, timeout)
