"""Viewer-side input policy: capture mode, escape-key combos, key release on focus loss, sensitivity.

The window (GLFW) calls the ``on_*`` methods from its callbacks; the controller decides what reaches the
VM and sends it through a SPICE client (normally a :class:`kvmfr_client.spice.SpiceThread`). Nothing
here draws or touches OpenGL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import glfw

from kvmfr_client.spice import keymap
from kvmfr_client.spice.keymap import UnknownKey
from kvmfr_client.spice.protocol import Button, Modifier, MouseMode

from .glfw_keys import evdev_code

log = logging.getLogger(__name__)

KEY_LEFTCTRL, KEY_LEFTALT, KEY_LEFTMETA, KEY_RIGHTMETA = 29, 56, 125, 126
KEY_I, KEY_INSERT, KEY_DELETE = 23, 110, 111
KEY_F1_F10 = range(59, 69)
KEY_F11, KEY_F12 = 87, 88

_GLFW_BUTTONS = {0: Button.LEFT, 1: Button.RIGHT, 2: Button.MIDDLE, 3: Button.SIDE, 4: Button.EXTRA}

DEFAULTS: dict[str, Any] = {
    "spice:input": True,
    "spice:mouseMode": "server",
    "spice:captureOnStart": False,
    "input:escapeKey": 70,
    "input:grabKeyboard": True,
    "input:captureOnFocus": False,
    "input:captureOnly": False,
    "input:releaseKeysOnFocusLoss": True,
    "input:ignoreWindowsKeys": False,
    "input:rawMouse": True,
    "input:mouseSens": 0,
    "input:hideCursor": True,
    "input:absoluteOutsideCapture": True,
}


class SpiceInput(Protocol):
    """What the controller needs from the SPICE side (SpiceThread provides it)."""

    def key_down(self, code: int) -> None: ...
    def key_up(self, code: int) -> None: ...
    def key_modifiers(self, modifiers: int) -> None: ...
    def motion(self, dx: int, dy: int) -> None: ...
    def position(self, x: int, y: int, display_id: int = 0) -> None: ...
    def button_press(self, button: int) -> None: ...
    def button_release(self, button: int) -> None: ...
    def wheel(self, steps: int) -> None: ...
    def set_mouse_mode(self, mode: MouseMode) -> None: ...


@dataclass
class Viewport:
    """Where the guest frame is drawn, in window (cursor) coordinates, and the guest's size in pixels."""

    x: float
    y: float
    width: float
    height: float
    guest_width: int
    guest_height: int

    def to_guest(self, wx: float, wy: float) -> tuple[int, int] | None:
        """Guest pixel under window point (wx, wy), or None when the point is outside the frame."""
        if self.width <= 0 or self.height <= 0:
            return None
        fx, fy = (wx - self.x) / self.width, (wy - self.y) / self.height
        if not (0 <= fx < 1 and 0 <= fy < 1):
            return None
        return int(fx * self.guest_width), int(fy * self.guest_height)

    @property
    def scale(self) -> tuple[float, float]:
        """Guest pixels per window unit."""
        return (self.guest_width / self.width if self.width else 1.0,
                self.guest_height / self.height if self.height else 1.0)


@dataclass
class Combo:
    description: str
    action: Callable[[], None]


class InputController:
    """Turns window input events into SPICE input, with Looking-Glass-style capture mode.

    ``spice``: a :class:`SpiceInput` (``SpiceThread``). ``config``: resolved options (``spice:*``,
    ``input:*``); missing ones take :data:`DEFAULTS`. ``grab(on)``: grabs/ungrabs pointer and keyboard
    (see :class:`kvmfr_client.input.grab.GlfwGrab`). ``set_cursor_pos(x, y)``: asks the host to move the
    guest cursor (KVMFR SETCURSORPOS); returns False when the host cannot. ``on_change()`` is called when
    capture, input or sensitivity changes (for an on-screen status). ``clipboard``: a
    :class:`kvmfr_client.input.clipboard.GlfwClipboard`; the window loop calls :meth:`poll`.
    """

    def __init__(self, spice: SpiceInput, config: Mapping[str, Any] | None = None, *,
                 grab: Callable[[bool], None] | None = None,
                 set_cursor_pos: Callable[[int, int], bool] | None = None,
                 on_change: Callable[["InputController"], None] | None = None,
                 clipboard=None):
        cfg = dict(DEFAULTS)
        if config is not None:
            cfg.update({k: config[k] for k in DEFAULTS if k in config})
        self.cfg = cfg
        self.spice = spice
        self.grab = grab
        self.set_cursor_pos = set_cursor_pos
        self.on_change = on_change
        self.clipboard = clipboard  # a GlfwClipboard, told about focus changes
        self.escape_key: int = cfg["input:escapeKey"]
        self.input_enabled: bool = cfg["spice:input"]
        self.sensitivity: int = cfg["input:mouseSens"]
        self.captured = False
        self.focused = False
        self.inside = False
        self.viewport: Viewport | None = None
        self.to_guest_fn: Callable[[float, float], tuple[float, float] | None] | None = None
        self.absolute_available = False  # the VM offers client (absolute) mouse mode
        self.pressed: dict[int, int] = {}  # evdev -> set-1 code of keys the VM sees down
        self.buttons: set[Button] = set()
        self.combos: dict[int, Combo] = {}
        self._escape_down = False
        self._combo_used = False
        self._swallow: set[int] = set()  # keys pressed as combos: their release is not sent either
        self._last: tuple[float, float] | None = None
        self._last_guest: tuple[int, int] | None = None
        self._frac = [0.0, 0.0]
        self._wheel = 0.0
        self._sync_locks = True
        self._sync_cursor = False
        self._mode: MouseMode | None = None
        self._add_builtin_combos()

    # -- combos --------------------------------------------------------------------------------
    def add_combo(self, key: int | str, description: str, action: Callable[[], None]) -> None:
        """Run ``action`` when ``key`` (evdev code or name) is pressed while the escape key is held."""
        code = keymap.key_from_name(key) if isinstance(key, str) else key
        self.combos[code] = Combo(description, action)

    def _add_builtin_combos(self) -> None:
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
        return [(f"{name(self.escape_key, str(self.escape_key))}", "toggle capture mode")] + [
            (f"{name(self.escape_key, str(self.escape_key))}+{name(code, str(code))}", combo.description)
            for code, combo in self.combos.items()]

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
        self.input_enabled = not self.input_enabled
        if not self.input_enabled:
            self.release_all()
            self.set_captured(False)
        log.info("SPICE input %s", "enabled" if self.input_enabled else "disabled")
        self._changed()

    def change_sensitivity(self, step: int) -> None:
        self.sensitivity = max(-9, min(9, self.sensitivity + step))
        log.info("mouse sensitivity %d", self.sensitivity)
        self._changed()

    def set_viewport(self, x: float, y: float, width: float, height: float, guest_width: int,
                     guest_height: int) -> None:
        """Tell the controller where the guest frame is drawn (window coordinates) and its size."""
        self.viewport = Viewport(x, y, width, height, guest_width, guest_height)

    def to_guest(self, x: float, y: float) -> tuple[int, int] | None:
        """Guest pixel under window point (x, y): from the attached window, else the viewport."""
        if self.to_guest_fn is not None:
            point = self.to_guest_fn(x, y)
            return None if point is None else (int(point[0]), int(point[1]))
        return self.viewport.to_guest(x, y) if self.viewport is not None else None

    def note_combo(self) -> None:
        """The window handled an escape-key combo itself (e.g. ScrollLock+F): the escape key's release
        must not toggle capture."""
        self._combo_used = True

    def set_mouse_modes(self, supported: int, current: int) -> None:
        """The SPICE server's mouse modes changed (SpiceClient.on_mouse_mode)."""
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
        if wanted != self._mode:
            self._mode = wanted
            self.spice.set_mouse_mode(wanted)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # -- keyboard ------------------------------------------------------------------------------
    def on_key(self, key: int, scancode: int, action: int, mods: int) -> None:
        """GLFW key callback (without the window argument)."""
        code = evdev_code(key, scancode)
        if code is None:
            return
        if action == glfw.REPEAT:
            return  # the guest does its own key repeat
        pressed = action == glfw.PRESS
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
                self.spice.key_modifiers(_locks_from_mods(mods))
            self._press(code)
        else:
            self._release(code)

    def _escape(self, pressed: bool) -> None:
        if pressed:
            self._escape_down, self._combo_used = True, False
            return
        if self._escape_down and not self._combo_used:
            self.toggle_capture()
        self._escape_down = False

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
        self.spice.key_down(sc)

    def _release(self, code: int) -> None:
        sc = self.pressed.pop(code, None)
        if sc is not None:
            self.spice.key_up(sc)

    def send_keys(self, *codes: int) -> None:
        """Press ``codes`` in order and release them in reverse (e.g. Ctrl+Alt+F2)."""
        if not self.input_enabled:
            return
        for code in codes:
            self.spice.key_down(keymap.scancode(code))
        for code in reversed(codes):
            self.spice.key_up(keymap.scancode(code))

    def release_all(self) -> None:
        """Release every key and button the VM believes is held."""
        for code in list(self.pressed):
            self._release(code)
        for button in list(self.buttons):
            self.buttons.discard(button)
            self.spice.button_release(button)

    # -- focus and pointer ---------------------------------------------------------------------
    def poll(self) -> None:
        """Call once per window-loop iteration (applies the guest's clipboard locally)."""
        if self.clipboard is not None:
            self.clipboard.poll()

    def on_focus(self, focused: bool) -> None:
        self.focused = focused
        if self.clipboard is not None:
            self.clipboard.on_focus(focused)
        if focused:
            self._sync_locks = True  # lock keys may have changed while another window had focus
            if self.cfg["input:captureOnFocus"]:
                self.set_captured(True)
            return
        if self.cfg["input:releaseKeysOnFocusLoss"]:
            self.release_all()
        self._escape_down = False
        self._swallow.clear()
        self.set_captured(False)

    def on_enter(self, entered: bool) -> None:
        self.inside = entered
        self._last = self._last_guest = None
        if entered and not self.captured:
            self._sync_cursor = self.set_cursor_pos is not None

    def on_cursor_pos(self, x: float, y: float) -> None:
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
                self.spice.position(*guest)
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
            self.spice.motion(ix, iy)

    def on_mouse_button(self, button: int, action: int, mods: int = 0) -> None:
        spice_button = _GLFW_BUTTONS.get(button)
        if spice_button is None:
            return
        if action == glfw.PRESS:
            if not self.input_enabled or not (self.captured or (self.inside and not self.cfg["input:captureOnly"])):
                return
            if spice_button in self.buttons:
                return
            self.buttons.add(spice_button)
            self.spice.button_press(spice_button)
        elif spice_button in self.buttons:
            self.buttons.discard(spice_button)
            self.spice.button_release(spice_button)

    def on_scroll(self, dx: float, dy: float) -> None:
        if not self.input_enabled or not (self.captured or (self.inside and not self.cfg["input:captureOnly"])):
            return
        self._wheel += dy
        steps = int(self._wheel)
        if steps:
            self._wheel -= steps
            self.spice.wheel(steps)

    # -- GLFW wiring ---------------------------------------------------------------------------
    def attach(self, view) -> None:
        """Called by the viewer's ``Window.set_input``: map the pointer with ``view.to_guest`` and grab
        through ``view.handle`` (the GLFW window) unless a ``grab`` callable was given."""
        self.to_guest_fn = view.to_guest
        handle = getattr(view, "handle", None)
        if handle is not None:
            self._install_grab(handle)
        if self.cfg["spice:captureOnStart"]:
            self.set_captured(True)

    def _install_grab(self, window) -> None:
        from .grab import GlfwGrab

        if self.grab is None:
            self.grab = GlfwGrab(window, raw=self.cfg["input:rawMouse"], keyboard=self.cfg["input:grabKeyboard"],
                                 hide_cursor=self.cfg["input:hideCursor"])
            self.grab(False)
        glfw.set_input_mode(window, glfw.LOCK_KEY_MODS, glfw.TRUE)

    def attach_glfw(self, window) -> None:
        """Install this controller's GLFW callbacks on ``window`` and grab through it.

        Use this when the window has no callbacks of its own; otherwise call the ``on_*`` methods from
        the window's callbacks.
        """
        self._install_grab(window)
        glfw.set_key_callback(window, lambda w, k, s, a, m: self.on_key(k, s, a, m))
        glfw.set_mouse_button_callback(window, lambda w, b, a, m: self.on_mouse_button(b, a, m))
        glfw.set_cursor_pos_callback(window, lambda w, x, y: self.on_cursor_pos(x, y))
        glfw.set_scroll_callback(window, lambda w, dx, dy: self.on_scroll(dx, dy))
        glfw.set_window_focus_callback(window, lambda w, f: self.on_focus(bool(f)))
        glfw.set_cursor_enter_callback(window, lambda w, e: self.on_enter(bool(e)))
        if self.viewport is None:
            width, height = glfw.get_window_size(window)
            self.set_viewport(0, 0, width, height, width, height)
        if self.cfg["spice:captureOnStart"]:
            self.set_captured(True)


def _locks_from_mods(mods: int) -> int:
    locks = 0
    if mods & glfw.MOD_CAPS_LOCK:
        locks |= Modifier.CAPS_LOCK
    if mods & glfw.MOD_NUM_LOCK:
        locks |= Modifier.NUM_LOCK
    return locks
