"""Text drawn over the picture: the stats overlay (top-left) and state messages (centred).

Text is rasterised by numpy with the built-in font (:mod:`font`) into a texture, re-made only when
the text changes.
"""

from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL

from kvmfr_client.viewer import font


class Overlay:
    def __init__(self, scale: int = 2, anchor: str = "topleft") -> None:
        self.scale = scale
        self.anchor = anchor     # topleft, center or bottom
        self._tex = 0
        self._lines: list[str] = []
        self._image: np.ndarray | None = None
        self._uploaded: np.ndarray | None = None
        self._images: dict[int, np.ndarray] = {}
        self.centered = False

    def set_lines(self, lines: list[str], centered: bool = False) -> bool:
        """Set the text; returns True if it changed (the caller then redraws)."""
        lines = list(lines)
        if lines == self._lines and centered == self.centered:
            return False
        self._lines, self.centered = lines, centered
        self._images: dict[int, np.ndarray] = {}
        self._image = self._render(self.scale) if lines else None
        self._uploaded = None
        return True

    def _render(self, scale: int) -> np.ndarray:
        if scale not in self._images:
            self._images[scale] = font.render(self._lines, scale)
        return self._images[scale]

    def layout(self, win_w: int, win_h: int) -> tuple[np.ndarray | None, int, int]:
        """The text image for a window this size (smaller font if it would not fit) and its top-left."""
        if not self._lines:
            return None, 0, 0
        img = self._render(self.scale)
        if img.shape[1] > win_w or img.shape[0] > win_h:
            img = self._render(1)
        h, w = img.shape[:2]
        if self.centered or self.anchor == "center":
            return img, (win_w - w) // 2, (win_h - h) // 2
        if self.anchor == "bottom":
            return img, (win_w - w) // 2, max(0, win_h - h - 8)
        return img, 8, 8

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def _upload(self, img: np.ndarray) -> None:
        if not self._tex:
            self._tex = GL.glGenTextures(1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._tex)
            for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_NEAREST)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._tex)
        GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, img.shape[1], img.shape[0], 0, GL.GL_RGBA,
                        GL.GL_UNSIGNED_BYTE, ctypes.c_void_p(img.ctypes.data))
        self._uploaded = img

    def draw(self, renderer, win_w: int, win_h: int) -> None:
        img, x, y = self.layout(win_w, win_h)
        if img is None:
            return
        if self._uploaded is not img:
            self._upload(img)
        h, w = img.shape[:2]
        renderer.draw_texture_px(self._tex, x, y, w, h, win_w, win_h)

    def close(self) -> None:
        if self._tex:
            GL.glDeleteTextures(1, [self._tex])
            self._tex = 0
