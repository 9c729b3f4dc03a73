"""How the window presents itself to the desktop: its class and app-id, its title and its icon.

``WM_CLASS`` (X11: res_name and res_class) and the Wayland app-id are always :data:`APP_ID`, whatever the
title says, so window-manager rules and the desktop entry (``data/kvmfr-view.desktop``,
``StartupWMClass=kvmfr-view``) match the window; the title may change with the guest.

``win:title`` is a template: ``{placeholder}`` names from ``TITLE_PLACEHOLDERS`` (declared, and checked
by ``win:title``'s parser, in :mod:`kvmfr_client.config.options`) are filled in from the session (Looking
Glass B7's ``win:title`` is a plain string; these placeholders are ours), and the session's state (or the
guest's OS and host) is appended after " - " as before.
"""

from __future__ import annotations

import re
from typing import Mapping

from kvmfr_client.config.options import TITLE_PLACEHOLDER_RE as _PLACEHOLDER

APP_ID = "kvmfr-view"   # WM_CLASS, Wayland app-id, the desktop entry's name and Icon=, the icon's file name

MAX_FACT = 64          # a guest-supplied fact is cut to this many characters in the title
ATTENTION_INTERVAL_S = 2.0   # win:requestActivation asks the desktop at most this often (a guest may flip it)


def _clean(value: object) -> str:
    """A fact as title text: control characters (a hostile guest's newlines) dropped, cut to MAX_FACT."""
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text[:MAX_FACT]


def expand_title(template: str, facts: Mapping[str, object]) -> str:
    """``template`` with each placeholder replaced by ``facts[name]`` (missing: "?")."""
    def one(m: re.Match) -> str:
        value = facts.get(m.group(1))
        return "?" if value is None or value == "" else _clean(value)
    return _PLACEHOLDER.sub(one, template)


def uses_rates(template: str) -> bool:
    """Whether the title shows {fps} or {ups} (the viewer works the rates out for the title only then)."""
    return any(m.group(1) in ("fps", "ups") for m in _PLACEHOLDER.finditer(template))


# ---- the window side (glfw) ------------------------------------------------------------------------------

def window_hints() -> None:
    """Before glfw.create_window: WM_CLASS and the Wayland app-id are APP_ID."""
    import glfw
    glfw.window_hint_string(glfw.X11_CLASS_NAME, APP_ID)
    glfw.window_hint_string(glfw.X11_INSTANCE_NAME, APP_ID)
    glfw.window_hint_string(glfw.WAYLAND_APP_ID, APP_ID)


def set_icon(handle, platform: str) -> None:
    """The window icon from kvmfr_client.viewer.icon. On Wayland a client cannot set one through glfw (the
    compositor takes it from the desktop entry whose name is the app-id), so this sets it on X11 only.

    glfwSetWindowIcon is called through glfw.library (the binding's loaded libglfw) with the rendered
    arrays as they are: the binding's own set_window_icon copies each pixel in a Python loop."""
    if platform == "wayland":
        return
    import ctypes

    from glfw.library import glfw as libglfw

    from kvmfr_client.viewer import icon

    class Image(ctypes.Structure):   # GLFWimage
        _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("pixels", ctypes.c_void_p)]

    arrays = [icon.render(n, samples=2) for n in icon.WINDOW_SIZES]
    images = (Image * len(arrays))(*(Image(a.shape[1], a.shape[0], a.ctypes.data) for a in arrays))
    # a prototype of our own: the binding's function object keeps its own argument types
    set_window_icon = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Image))(
        ("glfwSetWindowIcon", libglfw))
    set_window_icon(ctypes.cast(handle, ctypes.c_void_p), len(arrays), images)   # glfw copies the pixels
