"""Where the frame goes in the window: scaling policy, letterbox and rotation, as plain arithmetic.

Everything here is pure Python/numpy so it is tested without a window. Window coordinates are
framebuffer pixels with the origin at the top-left, y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Policy:
    keep_aspect: bool = True
    int_upscale: bool = False
    dont_upscale: bool = False


@dataclass(frozen=True)
class Placement:
    x: int          # top-left of the picture in the window
    y: int
    w: int          # picture size in the window (after rotation)
    h: int
    rotation: int   # clockwise degrees: 0, 90, 180, 270

    @property
    def fills(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


def rotated_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation in (90, 270) else (width, height)


def place(frame_w: int, frame_h: int, win_w: int, win_h: int, rotation: int, policy: Policy) -> Placement:
    """The rectangle the (rotated) frame occupies in a ``win_w`` x ``win_h`` window."""
    src_w, src_h = rotated_size(frame_w, frame_h, rotation)
    if src_w <= 0 or src_h <= 0 or win_w <= 0 or win_h <= 0:
        return Placement(0, 0, max(win_w, 0), max(win_h, 0), rotation)
    sx, sy = win_w / src_w, win_h / src_h
    if policy.keep_aspect or policy.int_upscale:
        sx = sy = min(sx, sy)
    if policy.int_upscale and sx >= 1.0:
        sx = sy = float(int(sx))
    if policy.dont_upscale:
        sx, sy = min(sx, 1.0), min(sy, 1.0)
    w = max(1, min(win_w, round(src_w * sx)))
    h = max(1, min(win_h, round(src_h * sy)))
    return Placement((win_w - w) // 2, (win_h - h) // 2, w, h, rotation)


def frame_to_ndc(frame_w: int, frame_h: int, win_w: int, win_h: int, pl: Placement) -> np.ndarray:
    """3x3 matrix taking frame pixels (x right, y down) to window NDC, with the rotation applied."""
    # frame pixels -> unit square
    unit = np.array([[1.0 / frame_w, 0, 0], [0, 1.0 / frame_h, 0], [0, 0, 1]])
    # rotate the unit square clockwise about its centre (y down, so "clockwise" as seen on screen)
    rot = {
        0: np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        90: np.array([[0, -1, 1], [1, 0, 0], [0, 0, 1]]),
        180: np.array([[-1, 0, 1], [0, -1, 1], [0, 0, 1]]),
        270: np.array([[0, 1, 0], [-1, 0, 1], [0, 0, 1]]),
    }[pl.rotation].astype(float)
    # unit square -> window pixels of the placement -> NDC (y up)
    to_win = np.array([[pl.w, 0, pl.x], [0, pl.h, pl.y], [0, 0, 1]], float)
    to_ndc = np.array([[2.0 / win_w, 0, -1], [0, -2.0 / win_h, 1], [0, 0, 1]])
    return to_ndc @ to_win @ rot @ unit


def pixels_to_ndc(win_w: int, win_h: int) -> np.ndarray:
    """3x3 matrix taking window pixels (y down) to NDC (for overlays drawn in window space)."""
    return np.array([[2.0 / win_w, 0, -1], [0, -2.0 / win_h, 1], [0, 0, 1]])


def window_to_frame(px: float, py: float, frame_w: int, frame_h: int, win_w: int, win_h: int,
                    pl: Placement) -> tuple[float, float]:
    """Window pixel -> frame pixel (for input: where the local pointer is over the guest)."""
    m = frame_to_ndc(frame_w, frame_h, win_w, win_h, pl)
    ndc = pixels_to_ndc(win_w, win_h) @ np.array([px, py, 1.0])
    fx, fy, _ = np.linalg.solve(m, ndc)
    # The solve leaves rounding error (16.999999999999993 for 17 at 1:1); callers take the pixel with
    # int(), so snap what is that close to a whole pixel back onto it.
    return _snap(float(fx)), _snap(float(fy))


def _snap(v: float) -> float:
    r = round(v)
    return float(r) if abs(v - r) < 1e-6 else v
