"""Viewer-side input policy: capture mode, every escape-key combo, key release on focus loss, sensitivity.

The window hands each :mod:`~kvmfr_client.input.events` event to :meth:`InputController.handle`; the
controller decides what reaches the VM and sends it through an :class:`~kvmfr_client.input.sink.InputSink`
(normally a :class:`kvmfr_client.spice.SpiceThread`). Without a sink (no SPICE configured) it still runs
the combos the viewer registered (full screen, stats, quit). Nothing here draws or touches OpenGL.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kvmfr_client.spice import keymap
from kvmfr_client.spice.keymap import UnknownKey
from kvmfr_client.spice.protocol import Button, Modifier, MouseMode

from .events import (BTN_EXTRA, BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, BTN_SIDE, ButtonEvent, EnterEvent,
                     FocusEvent, InputEvent, KeyEvent, PointerEvent, ScrollEvent)
from .sink import InputSink

log = logging.getLogger(__name__)

KEY_LEFTCTRL, KEY_LEFTALT, KEY_LEFTMETA, KEY_RIGHTMETA = 29, 56, 125, 126
KEY_I, KEY_INSERT, KEY_DELETE = 23, 110, 111
KEY_F1_F10 = range(59, 69)
KEY_F11, KEY_F12 = 87, 88

_SPICE_BUTTONS = {BTN_LEFT: Button.LEFT, BTN_RIGHT: Button.RIGHT, BTN_MIDDLE: Button.MIDDLE,
                  BTN_SIDE: Button.SIDE, BTN_EXTRA: Button.EXTRA}

ToGuest = Callable[[float, float], "tuple[float, float] | None"]


@dataclass
class Combo:
    description: str
    action: Callable[[], None]


class InputController:
    """Turns window input events into SPICE input, with Looking-Glass-style capture mode.

    ``sink``: where input for the VM goes (a ``SpiceThread``), or None when there is no VM to send to.
    ``config``: the resolved options (:func:`kvmfr_client.config.load`; ``spice:*`` and ``input:*``).
    ``grab(on)``: grabs/ungrabs pointer and keyboard (by default a
    :class:`kvmfr_client.input.grab.GlfwGrab` on the window given to :meth:`attach`).
    ``set_cursor_pos(x, y)``: asks the host to move the guest cursor (KVMFR SETCURSORPOS); returns False
    when the host cannot. ``on_change(controller)`` is called when capture, input or sensitivity
    changes (for an on-screen status). ``clipboard``: a :class:`kvmfr_client.input.clipboard.GlfwClipboard`,
    told about focus changes; the window loop calls :meth:`poll`. ``to_guest(x, y)``: the guest pixel
    under a window point, or None outside the picture (:meth:`attach` sets it too).
    """

    def __init__(self, sink: InputSink | None, config: Mapping[str, Any], *,
                 grab: Callable[[bool], None] | None = None,
                 set_cursor_pos: Callable[[int, int], bool] | None = None,
                 on_change: Callable[["InputController"], None] | None = None,
                 clipboard=None, to_guest: ToGuest | None = None):
        self.cfg = config
        self.sink = sink
        self.grab = grab
        self.set_cursor_pos = set_cursor_pos
        self.on_change = on_change
        self.clipboard = clipboard
        self.to_guest_fn = to_guest
        self.escape_key: int = config["input:escapeKey"]
        self.input_enabled: bool = sink is not None and config["spice:input"]
        self.sensitivity: int = config["input:mouseSens"]
        self.captured = False
        self.focused = False
        self.inside = False
        self.absolute_available = False  # the VM offers client (absolute) mouse mode
        self.pressed: dict[int, int] = {}  # evdev -> set-1 code of keys the VM sees down
        self.buttons: set[Button] = set()
        self.combos: dict[int, Combo] = {}
        self._escape_down = False
        self.escape_held_since: float | None = None   # time.monotonic() the escape key went down (help)
        self._combo_used = False
        self._swallow: set[int] = set()  # keys pressed as combos: their release is not sent either
        self._last: tuple[float, float] | None = None
        self._last_guest: tuple[int, int] | None = None
        self._frac = [0.0, 0.0]
        self._wheel = 0.0
        self._sync_locks = True
        self._sync_cursor = False
        self._mode: MouseMode | None = None
        if sink is not None:
            self._add_vm_combos()

    # -- the one entry point -------------------------------------------------------------------
    def handle(self, event: InputEvent) -> None:
        """Take one event from the window (called on the window thread)."""
        match event:
            case PointerEvent(x, y):
                self._pointer(x, y)
            case KeyEvent():
                self._key(event)
            case ButtonEvent(code, pressed):
                self._button(code, pressed)
            case ScrollEvent(_, dy):
                self._scroll(dy)
            case FocusEvent(focused):
                self._focus(focused)
            case EnterEvent(entered):
                self._enter(entered)

    # -- combos --------------------------------------------------------------------------------
    def add_combo(self, key: int | str, description: str, action: Callable[[], None]) -> None:
        """Run ``action`` when ``key`` (evdev code or name) is pressed while the escape key is held."""
        code = keymap.key_from_name(key) if isinstance(key, str) else key
        self.combos[code] = Combo(description, action)

    def _add_vm_combos(self) -> None:
        self.add_combo(KEY_I, "toggle keyboard and mouse input to the VM", self.toggle_input)
        self.add_combo(KEY_INSERT, "mouse sensitivity up", lambda: self.change_sensitivity(+1))
        self.add_combo(KEY_DELETE, "mouse sensitivity down", lambda: self.change_sensitivity(-1))
        for n, code in enumerate(list(KEY_F1_F10) + [KEY_F11, KEY_F12], start=1):
            self.add_combo(code, f"send Ctrl+Alt+F{n}", lambda code=code: self.send_keys(KEY_LEFTCTRL, KEY_LEFTALT, code))
        self.add_combo(KEY_LEFTMETA, "send the left Windows key", lambda: self.send_keys(KEY_LEFTMETA))
        self.add_combo(KEY_RIGHTMETA, "send the right Windows key", lambda: self.send_keys(KEY_RIGHTMETA))

    def help(self) -> list[tuple[str, str]]:
        """(key name, description) of every escape-key combo, for a help overlay."""
        name = keymap.EVDEV_TO_NAME.get
        escape = name(self.escape_key, str(self.escape_key))
        return [(escape, "toggle capture mode")] + [
            (f"{escape}+{name(code, str(code))}", combo.description) for code, combo in self.combos.items()]

    # -- state changes -------------------------------------------------------------------------
    def toggle_capture(self) -> None:
        self.set_captured(not self.captured)

    def set_captured(self, on: bool) -> None:
        if on == self.captured:
            return
        if on and not self.input_enabled:
            return
        self.captured = on
        self._last = None
        self._frac = [0.0, 0.0]
        log.info("capture %s", "on" if on else "off")
        if self.grab is not None:
            self.grab(on)
        self._update_mouse_mode()
        self._changed()

    def toggle_input(self) -> None:
        if self.sink is None:
            return
        self.input_enabled = not self.input_enabled
        if not self.input_enabled:
            self.release_all()
            self.set_captured(False)
        log.info("SPICE input %s", "enabled" if self.input_enabled else "disabled")
        self._update_dot()
        self._changed()

    def change_sensitivity(self, step: int) -> None:
        self.sensitivity = max(-9, min(9, self.sensitivity + step))
        log.info("mouse sensitivity %d", self.sensitivity)
        self._changed()

    def to_guest(self, x: float, y: float) -> tuple[int, int] | None:
        """Guest pixel under window point (x, y), or None outside the picture (or with no mapping)."""
        point = self.to_guest_fn(x, y) if self.to_guest_fn is not None else None
        return None if point is None else (int(point[0]), int(point[1]))

    def set_mouse_modes(self, supported: int, current: int) -> None:
        """The SPICE server's mouse modes changed (SpiceClient.on_mouse_mode, on the window thread)."""
        self.absolute_available = bool(supported & MouseMode.CLIENT)
        self._mode = MouseMode(current) if current in (1, 2) else None
        self._update_mouse_mode()

    def _wanted_mode(self) -> MouseMode:
        if self.captured or not self.absolute_available:
            return MouseMode.SERVER
        if self.cfg["input:absoluteOutsideCapture"] or self.cfg["spice:mouseMode"] == "client":
            return MouseMode.CLIENT
        return MouseMode.SERVER

    def _update_mouse_mode(self) -> None:
        wanted = self._wanted_mode()
        if wanted != self._mode and self.sink is not None:
            self._mode = wanted
            self.sink.set_mouse_mode(wanted)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # -- keyboard ------------------------------------------------------------------------------
    def _key(self, event: KeyEvent) -> None:
        code, pressed = event.code, event.pressed
        if code == self.escape_key:
            self._escape(pressed)
            return
        if pressed and self._escape_down:
            combo = self.combos.get(code)
            if combo is not None:
                self._combo_used = True
                self._swallow.add(code)
                combo.action()
                return
        if not pressed and code in self._swallow:
            self._swallow.discard(code)
            return
        if pressed:
            if not self._may_send_keys():
                return
            if self.cfg["input:ignoreWindowsKeys"] and code in (KEY_LEFTMETA, KEY_RIGHTMETA):
                return
            if self._sync_locks:
                self._sync_locks = False
                self.sink.key_modifiers(_locks(event))
            self._press(code)
        else:
            self._release(code)

    def _escape(self, pressed: bool) -> None:
        if pressed:
            if not self._escape_down:
                self.escape_held_since = time.monotonic()
            self._escape_down, self._combo_used = True, False
            return
        if self._escape_down and not self._combo_used:
            self.toggle_capture()
        self._escape_down = False
        self.escape_held_since = None

    def _may_send_keys(self) -> bool:
        return self.input_enabled and (self.captured or not self.cfg["input:captureOnly"])

    def _press(self, code: int) -> None:
        if code in self.pressed:
            return
        try:
            sc = keymap.scancode(code)
        except UnknownKey:
            log.debug("key %d has no scancode SPICE can carry", code)
            return
        self.pressed[code] = sc
        self.sink.key_down(sc)

    def _release(self, code: int) -> None:
        sc = self.pressed.pop(code, None)
        if sc is not None:
            self.sink.key_up(sc)

    def send_keys(self, *codes: int) -> None:
        """Press ``codes`` (evdev) in order and release them in reverse (e.g. Ctrl+Alt+F2)."""
        if not self.input_enabled:
            return
        for code in codes:
            self.sink.key_down(keymap.scancode(code))
        for code in reversed(codes):
            self.sink.key_up(keymap.scancode(code))

    def release_all(self) -> None:
        """Release every key and button the VM believes is held."""
        for code in list(self.pressed):
            self._release(code)
        for button in list(self.buttons):
            self.buttons.discard(button)
            self.sink.button_release(button)

    # -- focus and pointer ---------------------------------------------------------------------
    def poll(self) -> None:
        """Call once per window-loop iteration (applies the guest's clipboard locally)."""
        if self.clipboard is not None:
            self.clipboard.poll()

    def _focus(self, focused: bool) -> None:
        self.focused = focused
        if self.clipboard is not None:
            self.clipboard.on_focus(focused)
        if focused:
            self._sync_locks = True  # lock keys may have changed while another window had focus
            if self.cfg["input:captureOnFocus"]:
                self.set_captured(True)
            self._update_dot()
            return
        if self.cfg["input:releaseKeysOnFocusLoss"]:
            self.release_all()
        self._escape_down = False
        self.escape_held_since = None
        self._swallow.clear()
        self.set_captured(False)
        self._update_dot()

    def _update_dot(self) -> None:
        """Outside capture the local pointer shows as a dot while it does not drive the guest's cursor (no
        focus, SPICE input off, or input:captureOnly); the grab decides how (spice:showCursorDot)."""
        show_dot = getattr(self.grab, "show_dot", None)
        if show_dot is not None:
            show_dot(not (self.focused and self._moves_guest_outside_capture()))

    def _enter(self, entered: bool) -> None:
        self.inside = entered
        self._last = self._last_guest = None
        if entered and not self.captured:
            self._sync_cursor = self.set_cursor_pos is not None

    def _pointer(self, x: float, y: float) -> None:
        last, self._last = self._last, (x, y)
        if not self.input_enabled:
            return
        if self.captured:
            if last is not None:
                self._relative(x - last[0], y - last[1], self._sens_factor())
            return
        if self.cfg["input:captureOnly"]:
            return
        guest = self.to_guest(x, y)
        if self._mode == MouseMode.CLIENT:
            if guest is not None:
                self.sink.position(*guest)
            return
        if self._sync_cursor and guest is not None:
            # Outside capture in relative mode: put the guest cursor under the pointer once (KVMFR
            # SETCURSORPOS through the host), then follow with deltas in guest pixels.
            self._sync_cursor = False
            if self.set_cursor_pos(*guest):
                self._last_guest = guest
                return
        last_guest, self._last_guest = self._last_guest, guest
        if last is not None and guest is not None and last_guest is not None:
            self._relative(guest[0] - last_guest[0], guest[1] - last_guest[1], 1.0)

    def _sens_factor(self) -> float:
        return 1.0 + self.sensitivity / 10.0

    def _relative(self, dx: float, dy: float, factor: float) -> None:
        fx = dx * factor + self._frac[0]
        fy = dy * factor + self._frac[1]
        ix, iy = int(fx), int(fy)
        self._frac = [fx - ix, fy - iy]
        if ix or iy:
            self.sink.motion(ix, iy)

    def _moves_guest_outside_capture(self) -> bool:
        return self.input_enabled and not self.cfg["input:captureOnly"]

    def _pointer_goes_to_vm(self) -> bool:
        return self.input_enabled and (self.captured or (self.inside and self._moves_guest_outside_capture()))

    def _button(self, code: int, pressed: bool) -> None:
        button = _SPICE_BUTTONS.get(code)
        if button is None:
            return
        if pressed:
            if not self._pointer_goes_to_vm() or button in self.buttons:
                return
            self.buttons.add(button)
            self.sink.button_press(button)
        elif button in self.buttons:
            self.buttons.discard(button)
            self.sink.button_release(button)

    def _scroll(self, dy: float) -> None:
        if not self._pointer_goes_to_vm():
            return
        self._wheel += dy
        steps = int(self._wheel)
        if steps:
            self._wheel -= steps
            self.sink.wheel(steps)

    # -- the window ----------------------------------------------------------------------------
    def attach(self, window, to_guest: ToGuest) -> None:
        """Take input from the GLFW ``window`` whose callbacks feed :meth:`handle`
        (:func:`kvmfr_client.input.glfw_keys.install_callbacks`): map the pointer with ``to_guest``,
        grab through ``window`` unless a ``grab`` callable was given, and honour ``spice:captureOnStart``.
        """
        self.to_guest_fn = to_guest
        if self.sink is None:
            return  # nothing to capture the pointer for: the local cursor stays as it is
        if self.grab is None:
            from .grab import DOT_LARGE, DOT_SMALL, GlfwGrab
            dot = (DOT_LARGE if self.cfg["spice:largeCursorDot"] else DOT_SMALL) if self.cfg["spice:showCursorDot"] else 0
            self.grab = GlfwGrab(window, raw=self.cfg["input:rawMouse"], keyboard=self.cfg["input:grabKeyboard"],
                                 hide_cursor=self.cfg["input:hideCursor"], dot_size=dot)
            self.grab(False)
            self._update_dot()
        if self.cfg["spice:captureOnStart"]:
            self.set_captured(True)


def _locks(event: KeyEvent) -> Modifier:
    locks = Modifier(0)
    if event.caps_lock:
        locks |= Modifier.CAPS_LOCK
    if event.num_lock:
        locks |= Modifier.NUM_LOCK
    return locks
