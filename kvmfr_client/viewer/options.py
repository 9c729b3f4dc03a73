"""Options of the viewer window and renderer (``win:*``, ``egl:*``, ``app:shmFile``).

Names follow Looking Glass B7 where it has the option, so an existing ``client.ini`` mostly carries over.
``input:escapeKey`` is declared by :mod:`kvmfr_client.spice.options`; the viewer reads it too.
"""

from __future__ import annotations

from kvmfr_client import config
from kvmfr_client.config import Option, parse_bool, parse_size


def parse_position(text: str) -> tuple[int, int] | None:
    """``center`` (None: let the window manager choose) or ``X,Y`` / ``XxY``."""
    value = text.strip().lower()
    if value in ("", "center", "auto"):
        return None
    for sep in (",", "x"):
        if sep in value:
            x, y = value.split(sep, 1)
            return int(x), int(y)
    raise ValueError(f"expected X,Y or center, got {text!r}")


def parse_rotation(text: str) -> int:
    value = int(text)
    if value not in (0, 90, 180, 270):
        raise ValueError(f"rotation must be 0, 90, 180 or 270, got {value}")
    return value


def parse_positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


config.register(
    Option("app", "shmFile", None, "shared-memory file or kvmfr device (default: /dev/kvmfr0 if it exists, "
           "else /dev/shm/looking-glass)", parse=str),
    Option("win", "title", "kvmfr-view", "window title prefix; the guest's OS and host version are appended"),
    Option("win", "size", (1024, 768), "initial window size WIDTHxHEIGHT", parse=parse_size),
    Option("win", "position", None, "initial window position X,Y (default: the window manager places it)",
           parse=parse_position),
    Option("win", "autoResize", False, "resize the window to the guest's frame size when it changes",
           parse=parse_bool),
    Option("win", "allowResize", True, "let the user resize the window", parse=parse_bool),
    Option("win", "borderless", False, "no window decorations", parse=parse_bool),
    Option("win", "fullScreen", False, "start full screen (key: escape key + F)", parse=parse_bool),
    Option("win", "maximize", False, "start maximized", parse=parse_bool),
    Option("win", "keepAspect", True, "keep the guest's aspect ratio (letterbox) when scaling", parse=parse_bool),
    Option("win", "intUpscale", False, "scale up only by whole multiples (sharp pixels)", parse=parse_bool),
    Option("win", "dontUpscale", False, "never scale the frame above its size (smaller windows still scale down)",
           parse=parse_bool),
    Option("win", "rotate", 0, "rotate the picture clockwise by 0, 90, 180 or 270 degrees, on top of the "
           "rotation the host asks for", parse=parse_rotation),
    Option("win", "filter", "linear", "scaling filter when the frame is not shown 1:1",
           choices=("nearest", "linear")),
    Option("win", "vsync", False, "wait for vertical blank before showing a frame (adds latency)",
           parse=parse_bool),
    Option("win", "fpsMin", 0.0, "redraw at least this often (frames/s) even when nothing changed; 0: only on "
           "change", parse=float),
    Option("win", "showFPS", False, "show the stats overlay at start (key: escape key + D)", parse=parse_bool),
    Option("egl", "mapHDRtoSDR", True, "tone-map HDR frames (HDR flag) into SDR instead of clipping",
           parse=parse_bool),
    Option("egl", "peakLuminance", 250.0, "HDR to SDR: content luminance (nits) that maps to SDR white's top; "
           "brighter highlights clip. SDR white is 80 nits (scRGB 1.0)", parse=parse_positive_float),
)
