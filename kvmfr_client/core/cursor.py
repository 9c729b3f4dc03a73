"""Guest cursor events and shapes, decoded into images a renderer can draw.

A shape becomes two 8-bit RGBA layers of the visible size:
* ``color``: drawn over the frame with straight-alpha blending;
* ``xor``: RGB to XOR with what is underneath, where its alpha is 255 (monochrome "invert" pixels and
  masked-colour pixels with the mask set).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from .native import lib


class CursorType(enum.IntEnum):
    COLOR = lib.CURSOR_TYPE_COLOR
    MONOCHROME = lib.CURSOR_TYPE_MONOCHROME
    MASKED_COLOR = lib.CURSOR_TYPE_MASKED_COLOR


class CursorFlags(enum.IntFlag):
    POSITION = lib.CURSOR_FLAG_POSITION
    VISIBLE = lib.CURSOR_FLAG_VISIBLE
    SHAPE = lib.CURSOR_FLAG_SHAPE
    COLOR_TRANSFORM = lib.CURSOR_FLAG_COLOR_TRANSFORM   # KVMFR 34
    VISIBLE_VALID = lib.CURSOR_FLAG_VISIBLE_VALID       # KVMFR 34: VISIBLE says something only with this


@dataclass
class CursorShape:
    type: CursorType
    width: int
    height: int          # visible rows (half the wire height for MONOCHROME)
    hx: int
    hy: int
    pitch: int
    data: bytes = field(repr=False)   # the wire bytes, as copied out of shared memory

    def layers(self) -> tuple[np.ndarray, np.ndarray]:
        """(color, xor) RGBA layers of shape (height, width, 4)."""
        return decode_shape(self.type, self.width, self.height, self.pitch, self.data)


@dataclass
class CursorEvent:
    """One pointer-queue message: what changed is in ``flags``; other fields keep the last value."""

    flags: CursorFlags
    x: int               # top-left of the image in guest screen pixels (hotspot at x+hx)
    y: int
    visible: bool
    shape: CursorShape | None   # set when the message carried a new shape
    t_seen_ns: int = 0
    sdr_white_level: int = 0    # KVMFR 34: nits of SDR white for the shape (0: not given, B7)

    @property
    def has_position(self) -> bool:
        return bool(self.flags & CursorFlags.POSITION)

    def after(self, earlier: "CursorEvent | None") -> "CursorEvent":
        """This event folded onto an earlier one nobody read: what both said, the newer where both did."""
        if earlier is None:
            return self
        moved = self.has_position
        return CursorEvent(flags=self.flags | earlier.flags, x=self.x if moved else earlier.x,
                           y=self.y if moved else earlier.y, visible=self.visible,
                           shape=self.shape or earlier.shape, t_seen_ns=self.t_seen_ns,
                           sdr_white_level=self.sdr_white_level if self.shape else earlier.sdr_white_level)


def decode_shape(ctype: CursorType, width: int, height: int, pitch: int, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    color = np.zeros((height, width, 4), np.uint8)
    xor = np.zeros((height, width, 4), np.uint8)
    if width == 0 or height == 0:
        return color, xor
    raw = np.frombuffer(data, np.uint8)
    if ctype == CursorType.MONOCHROME:
        rows = raw[: 2 * height * pitch].reshape(2 * height, pitch)
        bits = np.unpackbits(rows, axis=1, bitorder="big")[:, :width].astype(bool)
        and_mask, xor_mask = bits[:height], bits[height:]
        black = ~and_mask & ~xor_mask
        white = ~and_mask & xor_mask
        invert = and_mask & xor_mask
        color[black] = (0, 0, 0, 255)
        color[white] = (255, 255, 255, 255)
        xor[invert] = (255, 255, 255, 255)
        return color, xor
    px = raw[: height * pitch].reshape(height, pitch)[:, : width * 4].reshape(height, width, 4)
    rgba = px[..., [2, 1, 0, 3]]
    if ctype == CursorType.COLOR:
        return np.ascontiguousarray(rgba), xor
    masked = rgba[..., 3] != 0
    color[~masked, :3] = rgba[~masked, :3]
    color[~masked, 3] = 255
    xor[masked, :3] = rgba[masked, :3]
    xor[masked, 3] = 255
    return color, xor


def composite(frame_rgba: np.ndarray, shape: CursorShape, x: int, y: int) -> np.ndarray:
    """Reference composition of a cursor over an RGBA frame (what the renderer must show)."""
    out = frame_rgba.copy()
    color, xor = shape.layers()
    h, w = color.shape[:2]
    fh, fw = out.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        return out
    c = color[y0 - y: y1 - y, x0 - x: x1 - x].astype(np.uint32)
    d = out[y0:y1, x0:x1, :3].astype(np.uint32)
    a = c[..., 3:4]
    d = (c[..., :3] * a + d * (255 - a) + 127) // 255
    xm = xor[y0 - y: y1 - y, x0 - x: x1 - x]
    sel = xm[..., 3] == 255
    d[sel] ^= xm[sel, :3]
    out[y0:y1, x0:x1, :3] = d.astype(np.uint8)
    return out
