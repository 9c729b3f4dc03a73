"""The guest cursor, drawn by the viewer over the frame (the host never paints it into frames).

A shape becomes two small textures (see :meth:`kvmfr_client.core.cursor.CursorShape.layers`): a colour layer
blended with straight alpha, then an XOR layer applied with ``glLogicOp(GL_XOR)`` (monochrome
"invert" pixels, masked-colour pixels). Moving the cursor only changes a matrix, so a move redraws
without touching the frame texture.
"""

from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL

from kvmfr_client.core.cursor import CursorShape
from kvmfr_client.viewer import hdr


class CursorLayer:
    def __init__(self, program, quad) -> None:
        self.prog = program
        self.quad = quad
        self._color = self._xor = 0
        self._has_xor = False
        self.size = (0, 0)
        self.hotspot = (0, 0)
        self.x = self.y = 0          # top-left of the image, guest screen pixels
        self.visible = False
        self.hidden_by_user = False  # the settings panel's "show the guest cursor" unticked
        self.screen: tuple[int, int] | None = None   # guest desktop size; None: same as the frame
        self.sdr_white_level = 0     # the cursor's SDR white (nits, KVMFR 34; 0: not given)
        # egl:scalePointer: on a picture shown smaller than the guest's screen the cursor keeps its own
        # size (grown back around its hotspot); picture_scale is set by the renderer before each draw.
        self.keep_size = False       # the viewer sets it from egl:scalePointer
        self.picture_scale = 1.0

    def set_shape(self, shape: CursorShape) -> None:
        color, xor = shape.layers()
        self._color = self._load(self._color, color)
        self._has_xor = bool((xor[..., 3] == 255).any())
        self._xor = self._load(self._xor, xor) if self._has_xor else self._xor
        self.size = (shape.width, shape.height)
        self.hotspot = (shape.hx, shape.hy)

    @staticmethod
    def _load(tex: int, image: np.ndarray) -> int:
        if not tex:
            tex = GL.glGenTextures(1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
            for p in (GL.GL_TEXTURE_MIN_FILTER, GL.GL_TEXTURE_MAG_FILTER):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_NEAREST)
            for p in (GL.GL_TEXTURE_WRAP_S, GL.GL_TEXTURE_WRAP_T):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, p, GL.GL_CLAMP_TO_EDGE)
        GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, max(w, 1), max(h, 1), 0, GL.GL_RGBA,
                        GL.GL_UNSIGNED_BYTE, ctypes.c_void_p(image.ctypes.data) if image.size else None)
        return tex

    def move(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def draw(self, frame_to_ndc: np.ndarray, frame_w: int, frame_h: int, light: hdr.Light | None = None,
             frame_mapped: bool = False) -> None:
        """``light`` / ``frame_mapped``: the frame's HDR mapping and whether it applied (see
        :func:`kvmfr_client.viewer.hdr.cursor_white`)."""
        w, h = self.size
        if not self.visible or self.hidden_by_user or not self._color or w == 0 or h == 0:
            return
        sw, sh = self.screen or (frame_w, frame_h)
        kx, ky = frame_w / max(sw, 1), frame_h / max(sh, 1)
        # the on-screen scale of guest screen pixels; below 1 with keep_size the quad grows back to 1:1
        g = 1.0 / (self.picture_scale * kx) if self.keep_size and 0 < self.picture_scale * kx < 1 else 1.0
        hx, hy = self.hotspot
        x0, y0 = (self.x + hx - hx * g) * kx, (self.y + hy - hy * g) * ky
        m = frame_to_ndc @ np.array([[w * kx * g, 0, x0], [0, h * ky * g, y0], [0, 0, 1]], float)
        prog = self.prog
        prog.use()
        prog.set_mat3("to_ndc", m)
        prog.set_int("layer", 0)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        # Never touch the window's alpha: a compositor would show the desktop through it.
        GL.glColorMask(GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE, GL.GL_FALSE)
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        prog.set_int("xor_pass", 0)
        white = hdr.cursor_white(self.sdr_white_level, frame_mapped) if light is not None else 0.0
        prog.set_float("cursor_white", white)
        if white:
            prog.set_int("hdr_map", 1)
            prog.set_float("hdr_gain", light.gain)
            prog.set_float("hdr_white", light.white)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._color)
        self.quad.draw()
        GL.glDisable(GL.GL_BLEND)
        if self._has_xor:
            GL.glEnable(GL.GL_COLOR_LOGIC_OP)
            GL.glLogicOp(GL.GL_XOR)
            prog.set_int("xor_pass", 1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._xor)
            self.quad.draw()
            GL.glDisable(GL.GL_COLOR_LOGIC_OP)
        GL.glColorMask(GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE)

    def close(self) -> None:
        for tex in (self._color, self._xor):
            if tex:
                GL.glDeleteTextures(1, [tex])
        self._color = self._xor = 0
