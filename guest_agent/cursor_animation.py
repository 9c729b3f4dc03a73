"""A synthetic guest cursor: moves on a circle and cycles through the three KVMFR shape types."""

from __future__ import annotations

import math

import numpy as np

from kvmfr_client.core.cursor import CursorType

SIZE = 32
HOTSPOT = (4, 2)


def color_arrow() -> tuple:
    """32x32 BGRA arrow with straight alpha: opaque white outline, half-transparent blue fill."""
    img = np.zeros((SIZE, SIZE, 4), np.uint8)
    for y in range(24):
        w = y // 2 + 1
        img[y, 0:w] = (255, 255, 255, 255)          # white outline (BGRA)
        if w > 2:
            img[y, 1:w - 1] = (200, 80, 0, 128)       # blue-ish fill, half alpha
    return CursorType.COLOR, SIZE, SIZE, SIZE * 4, HOTSPOT[0], HOTSPOT[1], img.tobytes()


def monochrome() -> tuple:
    """32x32 monochrome with all four AND/XOR results: quadrants transparent, black, white, invert."""
    and_mask = np.zeros((SIZE, SIZE), np.uint8)
    xor_mask = np.zeros((SIZE, SIZE), np.uint8)
    h = SIZE // 2
    and_mask[:h, :h], xor_mask[:h, :h] = 1, 0      # transparent
    and_mask[:h, h:], xor_mask[:h, h:] = 0, 0      # black
    and_mask[h:, :h], xor_mask[h:, :h] = 0, 1      # white
    and_mask[h:, h:], xor_mask[h:, h:] = 1, 1      # invert
    pitch = SIZE // 8
    data = np.packbits(and_mask, axis=1).tobytes() + np.packbits(xor_mask, axis=1).tobytes()
    return CursorType.MONOCHROME, SIZE, 2 * SIZE, pitch, 0, 0, data


def masked_color() -> tuple:
    """32x32 masked colour: left half opaque orange, right half XOR with (255,255,255) (invert)."""
    img = np.zeros((SIZE, SIZE, 4), np.uint8)
    img[:, : SIZE // 2] = (0, 128, 255, 0)           # BGRA, mask 0: drawn opaque
    img[:, SIZE // 2:] = (255, 255, 255, 255)        # mask set: XOR
    return CursorType.MASKED_COLOR, SIZE, SIZE, SIZE * 4, 0, 0, img.tobytes()


SHAPES = (color_arrow, monochrome, masked_color)


class CursorAnimation:
    """Position on a circle around the screen centre; a new shape type every ``shape_period`` frames."""

    def __init__(self, width: int, height: int, shape_period: int = 120):
        self.width, self.height = width, height
        self.shape_period = shape_period
        self._shapes = [make() for make in SHAPES]
        self.warp: tuple[int, int] | None = None
        self.hotspot = (0, 0)   # of the shape last sent

    def shape_for(self, serial: int) -> tuple | None:
        """The shape to send with frame ``serial`` (only when it changes)."""
        if serial % self.shape_period == 1 or serial == 1:
            return self._shapes[(serial // self.shape_period) % len(self._shapes)]
        return None

    def update(self, serial: int) -> tuple[int, int, tuple | None]:
        """Top-left of the image for frame ``serial`` and the shape to send (only when it changes)."""
        shape = self.shape_for(serial)
        if shape is not None:
            self.hotspot = (shape[4], shape[5])
        x, y = self.position(serial)
        return x - self.hotspot[0], y - self.hotspot[1], shape

    def position(self, serial: int) -> tuple[int, int]:
        if self.warp is not None:   # the client moved the cursor (SETCURSORPOS): stay there
            return self.warp
        a = serial * 2 * math.pi / 240
        r = min(self.width, self.height) / 3
        return int(self.width / 2 + r * math.cos(a)), int(self.height / 2 + r * math.sin(a))
