"""What the X server shows as the pointer, read back through XFixes (ctypes; tests only), and the input
focus moved to the root window so that the viewer's window loses it."""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np
import pytest

_REVERT_TO_POINTER_ROOT = 1
_CURRENT_TIME = 0


class _CursorImage(ctypes.Structure):
    _fields_ = [("x", ctypes.c_short), ("y", ctypes.c_short),
                ("width", ctypes.c_ushort), ("height", ctypes.c_ushort),
                ("xhot", ctypes.c_ushort), ("yhot", ctypes.c_ushort),
                ("cursor_serial", ctypes.c_ulong), ("pixels", ctypes.POINTER(ctypes.c_ulong))]


def _lib(name: str):
    path = ctypes.util.find_library(name)
    if path is None:
        pytest.fail(f"lib{name} is not installed: run `scripts/setup.sh test`")
    return ctypes.CDLL(path)


class XPointer:
    """One connection to the X server ``display`` (e.g. ":99")."""

    def __init__(self, display: str):
        self.x11, self.xfixes = _lib("X11"), _lib("Xfixes")
        self.x11.XOpenDisplay.restype = ctypes.c_void_p
        self.x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.x11.XDefaultRootWindow.restype = ctypes.c_ulong
        self.x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        self.x11.XSetInputFocus.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_ulong]
        self.x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.x11.XFree.argtypes = [ctypes.c_void_p]
        self.x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.xfixes.XFixesQueryExtension.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                                     ctypes.POINTER(ctypes.c_int)]
        self.xfixes.XFixesQueryVersion.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                                   ctypes.POINTER(ctypes.c_int)]
        self.xfixes.XFixesGetCursorImage.restype = ctypes.POINTER(_CursorImage)
        self.xfixes.XFixesGetCursorImage.argtypes = [ctypes.c_void_p]
        self.dpy = self.x11.XOpenDisplay(display.encode())
        if not self.dpy:
            pytest.fail(f"cannot open X display {display}")
        a, b = ctypes.c_int(), ctypes.c_int()
        if not self.xfixes.XFixesQueryExtension(self.dpy, ctypes.byref(a), ctypes.byref(b)):
            pytest.fail("the X server has no XFixes extension")
        a.value, b.value = 5, 0
        self.xfixes.XFixesQueryVersion(self.dpy, ctypes.byref(a), ctypes.byref(b))

    def focus_root(self) -> None:
        """Give the keyboard focus to the root window: every other window loses it."""
        root = self.x11.XDefaultRootWindow(self.dpy)
        self.x11.XSetInputFocus(self.dpy, root, _REVERT_TO_POINTER_ROOT, _CURRENT_TIME)
        self.x11.XSync(self.dpy, 0)

    def cursor(self) -> tuple[np.ndarray, tuple[int, int]]:
        """The pointer image now shown (height x width x ARGB as uint32) and its hot spot."""
        img = self.xfixes.XFixesGetCursorImage(self.dpy)
        if not img:
            pytest.fail("XFixesGetCursorImage returned nothing")
        c = img.contents
        n = c.width * c.height
        pixels = np.array(c.pixels[:n], dtype=np.uint64).astype(np.uint32).reshape(c.height, c.width)
        hot = (c.xhot, c.yhot)
        self.x11.XFree(img)
        return pixels, hot

    def close(self) -> None:
        if self.dpy:
            self.x11.XCloseDisplay(self.dpy)
            self.dpy = None
