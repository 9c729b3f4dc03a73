"""Grab the pointer (hidden, raw relative motion) and the keyboard for capture mode, with GLFW.

The pointer: GLFW's disabled cursor. On X11 that is a pointer grab with warping (raw motion from XInput2);
on Wayland GLFW locks the pointer (zwp_locked_pointer_v1) and reads relative motion
(zwp_relative_pointer_v1, unaccelerated when raw motion is on), so the pointer cannot leave the window.

GLFW has no keyboard grab. On X11 the keyboard is grabbed with XGrabKeyboard on the window, which keeps
window-manager shortcuts (Alt+Tab, Super) for the VM while capturing. On Wayland no client can grab the
keyboard: it asks the compositor to inhibit its shortcuts (zwp_keyboard_shortcuts_inhibit_manager_v1)
through the inhibitor the viewer's window registers (:func:`set_shortcut_inhibitor`); without one the
compositor keeps its shortcuts (logged once).

Outside capture, with ``input:hideCursor`` the local pointer is hidden over the window while it drives the
guest's cursor (which the viewer draws). When it does not (another window has the focus, or SPICE input is
off) it shows as a small dot instead (``spice:showCursorDot``, larger with ``spice:largeCursorDot``), as
in Looking Glass, so the user can still see where it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Callable

import glfw
import numpy as np

log = logging.getLogger(__name__)

_GRAB_MODE_ASYNC = 1
_CURRENT_TIME = 0
_GRAB_SUCCESS = 0


# Wayland: glfw window address -> inhibit(on) -> bool, registered by the window that can ask its compositor
# (kvmfr_client.viewer.window.Window.inhibit_shortcuts); the input layer does not know the viewer.
_SHORTCUT_INHIBITORS: dict[int, Callable[[bool], bool]] = {}


def _address(window) -> int | None:
    return ctypes.cast(window, ctypes.c_void_p).value if window else None


def set_shortcut_inhibitor(window, inhibit: Callable[[bool], bool] | None) -> None:
    """Register (or with None, forget) how capture mode asks the compositor to inhibit its keyboard
    shortcuts for the glfw ``window`` (Wayland's stand-in for a keyboard grab)."""
    key = _address(window)
    if inhibit is None:
        _SHORTCUT_INHIBITORS.pop(key, None)
    else:
        _SHORTCUT_INHIBITORS[key] = inhibit


DOT_SMALL, DOT_LARGE = 5, 9   # the dot pointer's side in pixels (spice:largeCursorDot picks the large one)


def dot_pixels(size: int) -> np.ndarray:
    """The dot pointer's RGBA pixels, ``size`` x ``size``: a white disc in a black ring, so that it shows on
    any picture; transparent outside the ring."""
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(xx - c, yy - c)
    out = np.zeros((size, size, 4), np.uint8)
    out[r <= c + 0.5] = (0, 0, 0, 255)
    out[r <= c - 0.5] = (255, 255, 255, 255)
    return out


class GlfwGrab:
    """Callable: ``grab(True)`` captures pointer and keyboard, ``grab(False)`` releases them.
    :meth:`show_dot` says whether, outside capture, the pointer should show as the dot (``dot_size``
    pixels; 0: hidden as ever)."""

    def __init__(self, window, raw: bool = True, keyboard: bool = True, hide_cursor: bool = True,
                 dot_size: int = 0):
        self.window = window
        self.raw = raw and glfw.raw_mouse_motion_supported()
        self.keyboard = keyboard
        self.hide_cursor = hide_cursor
        self.dot_size = dot_size
        self.keyboard_grabbed = False
        self.captured = False
        self.dot_wanted = False
        self.pointer = "normal"   # what the local pointer looks like over the window: normal, hidden, dot, grabbed
        self._dot_cursor = None
        self._xlib = None
        self._told_no_inhibit = False

    def __call__(self, on: bool) -> None:
        self.captured = on
        if on:
            glfw.set_input_mode(self.window, glfw.CURSOR, glfw.CURSOR_DISABLED)
            self.pointer = "grabbed"
            if self.raw:
                glfw.set_input_mode(self.window, glfw.RAW_MOUSE_MOTION, glfw.TRUE)
            if self.keyboard:
                self.keyboard_grabbed = self._grab_keyboard(True)
        else:
            if self.raw:
                glfw.set_input_mode(self.window, glfw.RAW_MOUSE_MOTION, glfw.FALSE)
            self._show_pointer()
            if self.keyboard_grabbed:
                self._grab_keyboard(False)
                self.keyboard_grabbed = False

    def show_dot(self, wanted: bool) -> None:
        """Outside capture: the pointer does not drive the guest's cursor (``wanted``), so with a hidden
        pointer and a dot size it shows as the dot; else hidden again."""
        if wanted != self.dot_wanted:
            self.dot_wanted = wanted
            if not self.captured:
                self._show_pointer()

    def _show_pointer(self) -> None:
        if not self.hide_cursor:
            glfw.set_input_mode(self.window, glfw.CURSOR, glfw.CURSOR_NORMAL)
            self.pointer = "normal"
        elif self.dot_wanted and self.dot_size:
            if self._dot_cursor is None:
                half = self.dot_size // 2
                self._dot_cursor = glfw.create_cursor((self.dot_size, self.dot_size, dot_pixels(self.dot_size)),
                                                      half, half)
            glfw.set_cursor(self.window, self._dot_cursor)
            glfw.set_input_mode(self.window, glfw.CURSOR, glfw.CURSOR_NORMAL)
            self.pointer = "dot"
        else:
            glfw.set_input_mode(self.window, glfw.CURSOR, glfw.CURSOR_HIDDEN)
            self.pointer = "hidden"

    def _grab_keyboard(self, on: bool) -> bool:
        platform = glfw.get_platform() if hasattr(glfw, "get_platform") else glfw.PLATFORM_X11
        if platform == glfw.PLATFORM_WAYLAND:
            inhibit = _SHORTCUT_INHIBITORS.get(_address(self.window))
            done = inhibit is not None and inhibit(on)
            if on and not done and not self._told_no_inhibit:
                self._told_no_inhibit = True
                log.warning("no keyboard-shortcut inhibit on this Wayland desktop (the reason is logged at "
                            "start, see docs/desktop.md): its shortcuts stay with the desktop while capturing")
            return done
        if platform != glfw.PLATFORM_X11:
            return False
        try:
            display = glfw.get_x11_display()
            xwindow = glfw.get_x11_window(self.window)
        except Exception as exc:  # not X11, or a GLFW built without X11
            log.debug("no X11 keyboard grab: %r", exc)
            return False
        xlib = self._load_xlib()
        if xlib is None or not display:
            return False
        if on:
            status = xlib.XGrabKeyboard(display, xwindow, True, _GRAB_MODE_ASYNC, _GRAB_MODE_ASYNC,
                                        _CURRENT_TIME)
            xlib.XFlush(display)
            if status != _GRAB_SUCCESS:
                log.warning("could not grab the keyboard (X status %d): WM shortcuts stay with the desktop",
                            status)
            return status == _GRAB_SUCCESS
        xlib.XUngrabKeyboard(display, _CURRENT_TIME)
        xlib.XFlush(display)
        return False

    def _load_xlib(self):
        if self._xlib is None:
            name = ctypes.util.find_library("X11")
            if name is None:
                return None
            xlib = ctypes.CDLL(name)
            xlib.XGrabKeyboard.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int,
                                           ctypes.c_int, ctypes.c_ulong]
            xlib.XUngrabKeyboard.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
            xlib.XFlush.argtypes = [ctypes.c_void_p]
            self._xlib = xlib
        return self._xlib
