"""GL objects and the choice of path for each frame: a framebuffer blit when it can, shaders when it must.

Data path inside the renderer::

    frame rows (numpy, or a mapped pixel buffer: upload.py) --glTexSubImage2D (whole or damage rects)--> source texture
        BGRA/RGBA: the source texture *is* the display texture
        RGBA10/RGBA16F/BGR_32/RGB_24: a conversion shader (shaders/convert_*.frag) writes the display
        texture (8-bit RGBA, unsized internal format) -- only the damaged area when there is damage
    display texture --glBlitFramebuffer (1:1, no rotation)--> window       "blit" path
                    --textured quad (shaders/present.frag)--> window         "shader" path
                    --filter chain (filter_chain.py)--> blit or quad          "filter+blit" / "filter+shader"
    cursor: a small quad on top; the overlay UI (gui.py, Dear ImGui) last

Why: on Mesa llvmpipe a 1080p blit costs ~0.2 ms and a full-window textured quad 12-50 ms
(docs/viewer.md), so the quad is used only where scaling or rotation needs it. Textures use the unsized
``GL_RGBA`` internal format because sized ``GL_RGBA8`` makes Mesa swizzle every upload.
All calls must come from the thread that owns the GL context.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass, field

import numpy as np
from OpenGL import GL

from kvmfr_client.core.formats import PACKED_24, FrameFlags, FrameType, data_width
from kvmfr_client.viewer import hdr, layout, upload
from kvmfr_client.viewer.cursor_layer import CursorLayer
from kvmfr_client.viewer.shaders import Program

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _TexFormat:
    internal: int
    fmt: int
    gltype: int
    bytes_per_texel: int
    program: str | None     # conversion shader, None when the texture is shown directly
    integer: bool = False


_FORMATS = {
    FrameType.BGRA: _TexFormat(GL.GL_RGBA, GL.GL_BGRA, GL.GL_UNSIGNED_BYTE, 4, None),
    FrameType.RGBA: _TexFormat(GL.GL_RGBA, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, 4, None),
    FrameType.RGBA10: _TexFormat(GL.GL_RGB10_A2, GL.GL_RGBA, GL.GL_UNSIGNED_INT_2_10_10_10_REV, 4,
                                 "convert_rgba10.frag"),
    # Half floats go up as raw 16-bit integers: Mesa converts GL_HALF_FLOAT uploads on the CPU
    # (~70 ms at 1080p, measured), integers go in at ~1.6 ms; the shader decodes the bits.
    FrameType.RGBA16F: _TexFormat(GL.GL_RGBA16UI, GL.GL_RGBA_INTEGER, GL.GL_UNSIGNED_SHORT, 8,
                                  "convert_rgba16f.frag", integer=True),
    # Packed 24-bit rows go up as 8-bit RGBA texels; the shader picks the pixels out of them.
    **{ftype: _TexFormat(GL.GL_RGBA8UI, GL.GL_RGBA_INTEGER, GL.GL_UNSIGNED_BYTE, 4, "convert_packed24.frag",
                         integer=True) for ftype in PACKED_24},
}


@dataclass
class RenderOptions:
    keep_aspect: bool = True
    int_upscale: bool = False
    dont_upscale: bool = False
    rotate: int = 0
    filter: str = "linear"
    map_hdr: bool = True
    peak_nits: float = 250.0
    force_shader: bool = False   # benchmarks/tests: never take the blit path
    filters: list = field(default_factory=list)   # the filter chain (kvmfr_client.viewer.filters); [] = none
    upload: str = "auto"         # egl:upload: auto, pbo or direct (kvmfr_client.viewer.upload)

    @property
    def policy(self) -> layout.Policy:
        return layout.Policy(self.keep_aspect, self.int_upscale, self.dont_upscale)


def _texture(internal: int, width: int, height: int, fmt: int, gltype: int, zero_bytes: int,
             nearest: bool = True) -> int:
    tex = GL.glGenTextures(1)
    GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
    filt = GL.GL_NEAREST if nearest else GL.GL_LINEAR
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, filt)
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, filt)
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)
    GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
    GL.glPixelStorei(GL.GL_UNPACK_SKIP_PIXELS, 0)
    GL.glPixelStorei(GL.GL_UNPACK_SKIP_ROWS, 0)
    # Start black, so rows a truncated frame does not carry show as black, not garbage.
    zeros = np.zeros(max(zero_bytes, 1), np.uint8)
    GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, internal, width, height, 0, fmt, gltype,
                    ctypes.c_void_p(zeros.ctypes.data))
    return tex


class Quad:
    """A unit quad (pos and uv both 0..1) drawn as a triangle strip; matrices do the rest."""

    def __init__(self) -> None:
        self.vao = GL.glGenVertexArrays(1)
        self.vbo = GL.glGenBuffers(1)
        GL.glBindVertexArray(self.vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        data = np.array([0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1], np.float32)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, data, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 2, GL.GL_FLOAT, GL.GL_FALSE, 16, ctypes.c_void_p(0))
        GL.glEnableVertexAttribArray(1)
        GL.glVertexAttribPointer(1, 2, GL.GL_FLOAT, GL.GL_FALSE, 16, ctypes.c_void_p(8))
        GL.glBindVertexArray(0)

    def draw(self) -> None:
        GL.glBindVertexArray(self.vao)
        GL.glDrawArrays(GL.GL_TRIANGLE_STRIP, 0, 4)


def scale_translate(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[w, 0, x], [0, h, y], [0, 0, 1]], float)


class Renderer:
    def __init__(self, options: RenderOptions | None = None):
        self.options = options or RenderOptions()
        self.quad = Quad()
        self.empty_vao = GL.glGenVertexArrays(1)
        self._programs: dict[str, Program] = {}
        self.present_prog = self._program("quad.vert", "present.frag")
        self.cursor = CursorLayer(self._program("quad.vert", "cursor.frag"), self.quad)
        # Current frame format and GL objects for it.
        self.ftype: FrameType | None = None
        self.width = self.height = 0
        self.flags = FrameFlags(0)
        self.frame_rotation = 0
        self.light = hdr.Light(self.options.peak_nits)   # the HDR mapping's facts for the frame shown
        self._src_tex = 0
        self._disp_tex = 0
        self._fbo = 0
        self._tex_filter: int | None = None
        self._placed_key: tuple | None = None
        self._placed_value: tuple | None = None
        self.has_frame = False
        self.last_path = "none"
        self._generation = 0     # counts uploads: the filter chain reruns only on a new picture
        self.chain = None
        self.filter_errors: list[str] = []
        if self.options.filters:
            from kvmfr_client.viewer.filter_chain import FilterChain
            self.chain = FilterChain(self.options.filters, self.empty_vao, self._program)
            self.filter_errors = self.chain.errors
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        # ---- upload path (egl:upload) ----
        name, version, exts = upload.context_facts()
        self.upload_path, self.upload_reason = upload.choose(self.options.upload, name, version, exts)
        self.pixel_buffers = None if self.upload_path == "direct" else \
            upload.PixelBuffers(self.upload_path == "pbo-persistent")
        log.info("upload path %s (%s)", self.upload_path, self.upload_reason)

    def next_destination(self, rows: int, pitch: int) -> tuple | None:
        """(slot, rows array) for the frames thread's next copy on the pixel-buffer path (for frames of
        ``rows`` x ``pitch`` bytes, the last frame's); None on the direct path."""
        if self.pixel_buffers is None:
            return None
        return self.pixel_buffers.handout(rows, pitch)

    def set_filters(self, passes: list) -> None:
        """Replace the filter chain (the settings panel); [] turns it off (the plain blit path)."""
        if self.chain is not None:
            self.chain.close()
            self.chain = None
        self.options.filters = list(passes)
        self.filter_errors = []
        if passes:
            from kvmfr_client.viewer.filter_chain import FilterChain
            self.chain = FilterChain(self.options.filters, self.empty_vao, self._program)
            self.filter_errors = self.chain.errors
        self._generation += 1

    def _program(self, vert: str, frag: str) -> Program:
        key = vert + "|" + frag
        if key not in self._programs:
            self._programs[key] = Program(vert, frag)
        return self._programs[key]

    @staticmethod
    def info() -> dict[str, str]:
        def s(name):
            v = GL.glGetString(name)
            return v.decode(errors="replace") if v else ""
        return {"renderer": s(GL.GL_RENDERER), "version": s(GL.GL_VERSION), "vendor": s(GL.GL_VENDOR)}

    # ---- frames -----------------------------------------------------------------------------

    def _configure(self, ftype: FrameType, width: int, height: int) -> None:
        self._release_frame_objects()
        spec = _FORMATS[ftype]
        tex_w = data_width(ftype, width)
        self._src_tex = _texture(spec.internal, tex_w, height, spec.fmt, spec.gltype,
                                 tex_w * height * spec.bytes_per_texel)
        if spec.program is None:
            self._disp_tex = self._src_tex
        else:
            self._disp_tex = _texture(GL.GL_RGBA, width, height, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, width * height * 4)
            self._convert = self._program("fullscreen.vert", spec.program)
        self._fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self._disp_tex, 0)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"frame framebuffer incomplete (status 0x{status:x}) for {ftype.name} {width}x{height}")
        self.ftype, self.width, self.height = ftype, width, height
        self._tex_filter = None
        self.has_frame = False
        log.info("frame format %s %dx%d (%s)", ftype.name, width, height,
                 "direct" if spec.program is None else spec.program)

    def _release_frame_objects(self) -> None:
        if self._fbo:
            GL.glDeleteFramebuffers(1, [self._fbo])
        for tex in {self._src_tex, self._disp_tex} - {0}:
            GL.glDeleteTextures(1, [tex])
        self._src_tex = self._disp_tex = self._fbo = 0

    def upload(self, ftype: FrameType, width: int, height: int, pixels: np.ndarray,
               flags: FrameFlags = FrameFlags(0), damage=None, rotation: int = 0,
               light: hdr.Light | None = None, slot=None) -> str:
        """Upload one frame. ``pixels``: (rows, >=row bytes) uint8, C-contiguous rows (any row stride);
        ``damage``: rects (x, y, w, h) in frame pixels to upload alone (the texture must hold the
        previous frame), or None for the whole frame; ``light``: the HDR mapping's facts for this frame
        (:func:`kvmfr_client.viewer.hdr.light_for`), None: ``egl:peakLuminance`` alone; ``slot``: the
        pixel buffer (:meth:`next_destination`) ``pixels`` lie in, None for our own memory. Returns "full"
        or "damage"."""
        ftype = FrameType(ftype)
        if ftype != self.ftype or width != self.width or height != self.height:
            self._configure(ftype, width, height)
            damage = None
        if light is None:
            light = hdr.Light(self.options.peak_nits)
        # Another mapping converts the whole frame again; the texture still holds the previous frame, so
        # the damage rectangles alone still go up (a pixel buffer holds nothing else).
        convert_all = not self.has_frame or light != self.light
        if not self.has_frame:
            damage = None
        self.light = light
        spec = _FORMATS[ftype]
        self.flags = FrameFlags(flags)
        self.frame_rotation = rotation
        rows = min(pixels.shape[0], height)
        stride = pixels.strides[0]
        if pixels.strides[-1] != 1 or stride % spec.bytes_per_texel:
            pixels = np.ascontiguousarray(pixels)
            stride = pixels.strides[0]
            slot = None   # the copy is in our memory now
        tex_w = data_width(ftype, width)
        rects = self._texel_rects(ftype, damage, tex_w, rows) if damage else [(0, 0, tex_w, rows)]
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._src_tex)
        GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, stride // spec.bytes_per_texel)
        ptr = pixels.ctypes.data
        skips = False   # the unpack skips are 0 between uploads: a whole frame (at 0, 0) leaves them so
        try:
            if slot is not None:   # the rows lie in a pixel buffer: GL reads them at offsets into it
                ptr -= self.pixel_buffers.bind(slot)
            for x, y, w, h in rects:
                if x or y or skips:
                    skips = True
                    GL.glPixelStorei(GL.GL_UNPACK_SKIP_PIXELS, x)
                    GL.glPixelStorei(GL.GL_UNPACK_SKIP_ROWS, y)
                GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, x, y, w, h, spec.fmt, spec.gltype, ctypes.c_void_p(ptr))
        finally:   # whatever failed, later uploads read from our memory with the default unpack state
            if skips:
                GL.glPixelStorei(GL.GL_UNPACK_SKIP_PIXELS, 0)
                GL.glPixelStorei(GL.GL_UNPACK_SKIP_ROWS, 0)
            GL.glPixelStorei(GL.GL_UNPACK_ROW_LENGTH, 0)
            if slot is not None:
                self.pixel_buffers.uploaded(slot)   # fences and unbinds GL_PIXEL_UNPACK_BUFFER
        if spec.program is not None:
            self._run_conversion(ftype, None if convert_all else damage)
        self.has_frame = True
        self._generation += 1
        return "damage" if damage else "full"

    @staticmethod
    def _texel_rects(ftype: FrameType, damage, tex_w: int, rows: int) -> list[tuple[int, int, int, int]]:
        out = []
        for x, y, w, h in damage:
            if ftype in PACKED_24:
                # Rounded out to the texels holding the rectangle's first and last bytes.
                start = x * 3 // 4
                x, w = start, data_width(ftype, max(0, x + w)) - start
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(tex_w, x + w), min(rows, y + h)
            if x1 > x0 and y1 > y0:
                out.append((x0, y0, x1 - x0, y1 - y0))
        return out

    def _run_conversion(self, ftype: FrameType, damage) -> None:
        prog = self._convert
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._fbo)
        GL.glViewport(0, 0, self.width, self.height)
        GL.glDisable(GL.GL_BLEND)
        if damage:
            # Convert only what changed: the bounding box of the damage (in frame pixels).
            x0 = max(0, min(r[0] for r in damage))
            y0 = max(0, min(r[1] for r in damage))
            x1 = min(self.width, max(r[0] + r[2] for r in damage))
            y1 = min(self.height, max(r[1] + r[3] for r in damage))
            GL.glEnable(GL.GL_SCISSOR_TEST)
            GL.glScissor(x0, y0, max(0, x1 - x0), max(0, y1 - y0))
        prog.use()
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._src_tex)
        prog.set_int("src", 0)
        if ftype in PACKED_24:
            prog.set_int("bgr", ftype == FrameType.BGR_32)
        else:
            hdr = bool(self.flags & FrameFlags.HDR) or bool(self.flags & FrameFlags.HDR_PQ)
            prog.set_int("pq", bool(self.flags & FrameFlags.HDR_PQ))
            prog.set_int("hdr_map", hdr and self.options.map_hdr)
            prog.set_float("hdr_gain", self.light.gain if hdr else 1.0)   # SDR frames: as they are
            prog.set_float("hdr_white", self.light.white)
        GL.glBindVertexArray(self.empty_vao)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)

    # ---- drawing ----------------------------------------------------------------------------

    @property
    def hdr_mapped(self) -> bool:
        """The frame shown went through the HDR -> SDR tone mapping (not clipped, not SDR)."""
        if not self.options.map_hdr or self.ftype is None:
            return False
        if self.flags & FrameFlags.HDR_PQ:
            return self.ftype in (FrameType.RGBA10, FrameType.RGBA16F)
        return self.ftype == FrameType.RGBA16F and bool(self.flags & FrameFlags.HDR)

    @property
    def rotation(self) -> int:
        return (self.frame_rotation + self.options.rotate) % 360

    def placement(self, win_w: int, win_h: int) -> layout.Placement:
        return self._placed(win_w, win_h)[0]

    def _placed(self, win_w: int, win_h: int) -> tuple[layout.Placement, np.ndarray]:
        """The placement and its frame-to-NDC matrix (read-only), kept while nothing they depend on changes:
        they are asked at every redraw."""
        key = (self.width, self.height, win_w, win_h, self.rotation, self.options.policy)
        if key != self._placed_key:
            pl = layout.place(self.width, self.height, win_w, win_h, key[4], key[5])
            ndc = layout.frame_to_ndc(self.width, self.height, win_w, win_h, pl)
            ndc.flags.writeable = False
            self._placed_key, self._placed_value = key, (pl, ndc)
        return self._placed_value

    def _set_filter(self, pl: layout.Placement) -> None:
        opts = self.options
        fw, fh = layout.rotated_size(self.width, self.height, pl.rotation)
        integer = pl.w % fw == 0 and pl.h % fh == 0 and pl.w // fw == pl.h // fh
        want = GL.GL_NEAREST if (opts.filter == "nearest" or integer) else GL.GL_LINEAR
        if want != self._tex_filter:
            GL.glBindTexture(GL.GL_TEXTURE_2D, self._disp_tex)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, want)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, want)
            self._tex_filter = want

    def draw(self, win_w: int, win_h: int, overlay=None, target: int = 0) -> str:
        """Draw frame, cursor and overlay into the default framebuffer (not swapped), or into framebuffer
        ``target`` (a headless benchmark's). Returns the path."""
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, target)
        GL.glViewport(0, 0, win_w, win_h)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        path = "none"
        pl, ndc = self._placed(win_w, win_h) if self.has_frame else (None, None)
        if pl is None or pl.fills != (0, 0, win_w, win_h):
            GL.glClearColor(0.0, 0.0, 0.0, 1.0)
            GL.glClear(GL.GL_COLOR_BUFFER_BIT)
        if pl is not None:
            if self.chain is not None:
                path = self._draw_filtered(pl, win_w, win_h)
            elif (pl.rotation == 0 and pl.w == self.width and pl.h == self.height
                    and not self.options.force_shader):
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._fbo)
                top = win_h - pl.y
                GL.glBlitFramebuffer(0, 0, self.width, self.height, pl.x, top, pl.x + self.width,
                                     top - self.height, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
                GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
                path = "blit"
            else:
                self._set_filter(pl)
                prog = self.present_prog
                prog.use()
                prog.set_mat3("to_ndc", ndc @ scale_translate(0, 0, self.width, self.height))
                GL.glActiveTexture(GL.GL_TEXTURE0)
                GL.glBindTexture(GL.GL_TEXTURE_2D, self._disp_tex)
                prog.set_int("frame", 0)
                GL.glDisable(GL.GL_BLEND)
                self.quad.draw()
                path = "shader"
            self.cursor.picture_scale = pl.w / layout.rotated_size(self.width, self.height, pl.rotation)[0]
            self.cursor.draw(ndc, self.width, self.height, self.light, self.hdr_mapped)
        if overlay is not None:
            overlay.draw(self, win_w, win_h)
        self.last_path = path
        return path

    def _draw_filtered(self, pl: layout.Placement, win_w: int, win_h: int) -> str:
        from kvmfr_client.viewer.filter_chain import Image
        tw, th = layout.rotated_size(pl.w, pl.h, pl.rotation)   # the picture in the frame's orientation
        out = self.chain.run(Image(self._disp_tex, self._fbo, self.width, self.height), tw, th, self._generation)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        GL.glViewport(0, 0, win_w, win_h)
        if (pl.rotation == 0 and (out.w, out.h) == (pl.w, pl.h) and not out.is_float
                and not self.options.force_shader):
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, out.fbo)
            top = win_h - pl.y
            GL.glBlitFramebuffer(0, 0, out.w, out.h, pl.x, top, pl.x + out.w, top - out.h,
                                 GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
            return "filter+blit"
        fw, fh = layout.rotated_size(out.w, out.h, pl.rotation)
        integer = pl.w % fw == 0 and pl.h % fh == 0 and pl.w // fw == pl.h // fh
        filt = GL.GL_NEAREST if (self.options.filter == "nearest" or integer) else GL.GL_LINEAR
        GL.glBindTexture(GL.GL_TEXTURE_2D, out.tex)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, filt)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, filt)
        if out.tex == self._disp_tex:
            self._tex_filter = filt
        prog = self.present_prog
        prog.use()
        prog.set_mat3("to_ndc", layout.frame_to_ndc(out.w, out.h, win_w, win_h, pl) @ scale_translate(0, 0, out.w, out.h))
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, out.tex)
        prog.set_int("frame", 0)
        GL.glDisable(GL.GL_BLEND)
        self.quad.draw()
        return "filter+shader"

    def readback(self, win_w: int, win_h: int) -> np.ndarray:
        """What the back buffer holds now, as top-down RGBA (H, W, 4). Call before swapping."""
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        GL.glReadBuffer(GL.GL_BACK)
        # GL_BGRA is the window's own layout: Mesa returns it byte-exact (GL_RGBA readback of
        # partly covered llvmpipe tiles was seen swapped).
        out = np.empty((win_h, win_w, 4), np.uint8)
        GL.glReadPixels(0, 0, win_w, win_h, GL.GL_BGRA, GL.GL_UNSIGNED_BYTE, ctypes.c_void_p(out.ctypes.data))
        return np.ascontiguousarray(out[::-1, :, [2, 1, 0, 3]])

    def close(self) -> None:
        if self.chain is not None:
            self.chain.close()
        if self.pixel_buffers is not None:
            self.pixel_buffers.close()
        self._release_frame_objects()
        self.cursor.close()
