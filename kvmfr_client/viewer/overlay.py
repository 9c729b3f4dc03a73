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
        self._uploaded = False
        self.centered = False

    def set_lines(self, lines: list[str], centered: bool = False) -> bool:
        """Set the text; returns True if it changed (the caller then redraws)."""
        lines = list(lines)
        if lines == self._lines and centered == self.centered:
            return False
        self._lines, self.centered = lines, centered
        self._image = font.render(lines, self.scale) if lines else None
        self._uploaded = False
        return True

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def _upload(self) -> None:
        img = self._image
        if not self._tex:
            self._tex = GL.glGenTextures(1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._tex)
            for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_NEAREST)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._tex)
        GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, img.shape[1], img.shape[0], 0, GL.GL_RGBA,
                        GL.GL_UNSIGNED_BYTE, ctypes.c_void_p(img.ctypes.data))
        self._uploaded = True

    def draw(self, renderer, win_w: int, win_h: int) -> None:
        if self._image is None:
            return
        if not self._uploaded:
            self._upload()
        h, w = self._image.shape[:2]
        if self.centered or self.anchor == "center":
            x, y = (win_w - w) // 2, (win_h - h) // 2
        elif self.anchor == "bottom":
            x, y = (win_w - w) // 2, max(0, win_h - h - 8)
        else:
            x, y = 8, 8
        renderer.draw_texture_px(self._tex, x, y, w, h, win_w, win_h)

    def close(self) -> None:
        if self._tex:
            GL.glDeleteTextures(1, [self._tex])
            self._tex = 0
