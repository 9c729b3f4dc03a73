"""GLFW callbacks -> :mod:`kvmfr_client.input.events`: the one place GLFW input is translated.

Keys become Linux evdev codes (which :mod:`kvmfr_client.spice.keymap` turns into set-1). GLFW names keys
by their position on a US keyboard whatever the layout, so the guest gets the physical key and applies
its own layout, as Looking Glass does. Keys GLFW does not name (media keys) fall back to the platform
scancode: on X11 and Wayland that is the evdev code + 8.
"""

from __future__ import annotations

from typing import Callable

import glfw

from .events import (BTN_EXTRA, BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, BTN_SIDE, ButtonEvent, EnterEvent,
                     FocusEvent, InputEvent, KeyEvent, PointerEvent, ScrollEvent)

_TABLE = {
    glfw.KEY_ESCAPE: 1, glfw.KEY_1: 2, glfw.KEY_2: 3, glfw.KEY_3: 4, glfw.KEY_4: 5, glfw.KEY_5: 6,
    glfw.KEY_6: 7, glfw.KEY_7: 8, glfw.KEY_8: 9, glfw.KEY_9: 10, glfw.KEY_0: 11, glfw.KEY_MINUS: 12,
    glfw.KEY_EQUAL: 13, glfw.KEY_BACKSPACE: 14, glfw.KEY_TAB: 15,
    glfw.KEY_Q: 16, glfw.KEY_W: 17, glfw.KEY_E: 18, glfw.KEY_R: 19, glfw.KEY_T: 20, glfw.KEY_Y: 21,
    glfw.KEY_U: 22, glfw.KEY_I: 23, glfw.KEY_O: 24, glfw.KEY_P: 25, glfw.KEY_LEFT_BRACKET: 26,
    glfw.KEY_RIGHT_BRACKET: 27, glfw.KEY_ENTER: 28, glfw.KEY_LEFT_CONTROL: 29,
    glfw.KEY_A: 30, glfw.KEY_S: 31, glfw.KEY_D: 32, glfw.KEY_F: 33, glfw.KEY_G: 34, glfw.KEY_H: 35,
    glfw.KEY_J: 36, glfw.KEY_K: 37, glfw.KEY_L: 38, glfw.KEY_SEMICOLON: 39, glfw.KEY_APOSTROPHE: 40,
    glfw.KEY_GRAVE_ACCENT: 41, glfw.KEY_LEFT_SHIFT: 42, glfw.KEY_BACKSLASH: 43,
    glfw.KEY_Z: 44, glfw.KEY_X: 45, glfw.KEY_C: 46, glfw.KEY_V: 47, glfw.KEY_B: 48, glfw.KEY_N: 49,
    glfw.KEY_M: 50, glfw.KEY_COMMA: 51, glfw.KEY_PERIOD: 52, glfw.KEY_SLASH: 53, glfw.KEY_RIGHT_SHIFT: 54,
    glfw.KEY_KP_MULTIPLY: 55, glfw.KEY_LEFT_ALT: 56, glfw.KEY_SPACE: 57, glfw.KEY_CAPS_LOCK: 58,
    glfw.KEY_F1: 59, glfw.KEY_F2: 60, glfw.KEY_F3: 61, glfw.KEY_F4: 62, glfw.KEY_F5: 63, glfw.KEY_F6: 64,
    glfw.KEY_F7: 65, glfw.KEY_F8: 66, glfw.KEY_F9: 67, glfw.KEY_F10: 68, glfw.KEY_NUM_LOCK: 69,
    glfw.KEY_SCROLL_LOCK: 70, glfw.KEY_KP_7: 71, glfw.KEY_KP_8: 72, glfw.KEY_KP_9: 73,
    glfw.KEY_KP_SUBTRACT: 74, glfw.KEY_KP_4: 75, glfw.KEY_KP_5: 76, glfw.KEY_KP_6: 77, glfw.KEY_KP_ADD: 78,
    glfw.KEY_KP_1: 79, glfw.KEY_KP_2: 80, glfw.KEY_KP_3: 81, glfw.KEY_KP_0: 82, glfw.KEY_KP_DECIMAL: 83,
    glfw.KEY_WORLD_2: 86, glfw.KEY_F11: 87, glfw.KEY_F12: 88,
    glfw.KEY_KP_ENTER: 96, glfw.KEY_RIGHT_CONTROL: 97, glfw.KEY_KP_DIVIDE: 98, glfw.KEY_PRINT_SCREEN: 99,
    glfw.KEY_RIGHT_ALT: 100, glfw.KEY_HOME: 102, glfw.KEY_UP: 103, glfw.KEY_PAGE_UP: 104,
    glfw.KEY_LEFT: 105, glfw.KEY_RIGHT: 106, glfw.KEY_END: 107, glfw.KEY_DOWN: 108,
    glfw.KEY_PAGE_DOWN: 109, glfw.KEY_INSERT: 110, glfw.KEY_DELETE: 111, glfw.KEY_KP_EQUAL: 117,
    glfw.KEY_PAUSE: 119, glfw.KEY_LEFT_SUPER: 125, glfw.KEY_RIGHT_SUPER: 126, glfw.KEY_MENU: 127,
}

# X11 and Wayland keycodes are evdev codes offset by 8.
_XKB_OFFSET = 8


def evdev_code(key: int, scancode: int) -> int | None:
    """Evdev code of a GLFW key event, or None when neither the key nor its scancode is known."""
    code = _TABLE.get(key)
    if code is not None:
        return code
    if scancode > _XKB_OFFSET:
        return scancode - _XKB_OFFSET
    return None


_BUTTONS = {glfw.MOUSE_BUTTON_LEFT: BTN_LEFT, glfw.MOUSE_BUTTON_RIGHT: BTN_RIGHT,
            glfw.MOUSE_BUTTON_MIDDLE: BTN_MIDDLE, glfw.MOUSE_BUTTON_4: BTN_SIDE, glfw.MOUSE_BUTTON_5: BTN_EXTRA}


def key_event(key: int, scancode: int, action: int, mods: int) -> KeyEvent | None:
    """The event of a GLFW key callback; None for auto-repeat and for keys with no evdev code."""
    code = evdev_code(key, scancode)
    if code is None or action == glfw.REPEAT:
        return None
    return KeyEvent(code, action == glfw.PRESS, caps_lock=bool(mods & glfw.MOD_CAPS_LOCK),
                    num_lock=bool(mods & glfw.MOD_NUM_LOCK))


def button_event(button: int, action: int) -> ButtonEvent | None:
    """The event of a GLFW mouse-button callback; None for buttons beyond the fifth."""
    code = _BUTTONS.get(button)
    return None if code is None else ButtonEvent(code, action == glfw.PRESS)


def install_callbacks(window, deliver: Callable[[InputEvent], None]) -> None:
    """Set ``window``'s GLFW input callbacks to translate each event and pass it to ``deliver``.

    Lock-key state is reported with key events (``LOCK_KEY_MODS``) so the guest's Caps/Num Lock can be
    set to match.
    """
    def on_key(_win, key, scancode, action, mods) -> None:
        event = key_event(key, scancode, action, mods)
        if event is not None:
            deliver(event)

    def on_button(_win, button, action, _mods) -> None:
        event = button_event(button, action)
        if event is not None:
            deliver(event)

    glfw.set_input_mode(window, glfw.LOCK_KEY_MODS, glfw.TRUE)
    glfw.set_key_callback(window, on_key)
    glfw.set_mouse_button_callback(window, on_button)
    glfw.set_cursor_pos_callback(window, lambda _win, x, y: deliver(PointerEvent(x, y)))
    glfw.set_scroll_callback(window, lambda _win, dx, dy: deliver(ScrollEvent(dx, dy)))
    glfw.set_window_focus_callback(window, lambda _win, focused: deliver(FocusEvent(bool(focused))))
    glfw.set_cursor_enter_callback(window, lambda _win, entered: deliver(EnterEvent(bool(entered))))
