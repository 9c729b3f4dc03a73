"""Where a frame's pixels wait for the texture upload, and which way they go up (``egl:upload``).

Two paths, chosen once per GL context (:func:`choose`):

* ``direct``: the frames thread's native copy writes one persistent buffer in our memory and
  ``glTexSubImage2D`` reads it. On Mesa llvmpipe this is the fastest there is (the texture is in our memory
  too; a pixel buffer only adds a copy: docs/opengl-on-mesa.md, and docs/viewer.md's figures).
* ``pbo``: the native copy writes straight into a pixel buffer object (PBO) and the upload is a
  buffer-to-texture copy the driver can do asynchronously (DMA on a GPU). With GL 4.4 / ARB_buffer_storage
  (``pbo-persistent``): a ring of :data:`RING` buffers mapped once, persistently and coherently, each
  reused only after the fence set after its upload has signalled. Otherwise (``pbo-classic``): one buffer,
  orphaned and mapped again after each upload (the driver gives fresh storage, so nothing waits).

Damage: a PBO does not hold the previous frame, so a damage-only copy into one is uploaded as its damage
rectangles alone (the texture holds the previous frame); see :meth:`PixelBuffers.handout`.
All GL calls here come from the GL thread; the frames thread only writes the memory it was handed.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

import numpy as np
from OpenGL import GL

log = logging.getLogger(__name__)

RING = 3                          # persistent buffers: one being written, one uploading, one spare
FENCE_WAIT_NS = 100_000_000       # a fence two uploads old that has not signalled in this long: wait no more
# Renderers that rasterise on the CPU: measured here, a PBO only adds a copy (docs/viewer.md).
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software rasterizer")


def choose(mode: str, renderer: str, version: tuple[int, int], extensions: set[str]) -> tuple[str, str]:
    """(path, why): path is ``direct``, ``pbo-persistent`` or ``pbo-classic``."""
    storage = version >= (4, 4) or "GL_ARB_buffer_storage" in extensions
    pbo = "pbo-persistent" if storage else "pbo-classic"
    if mode == "direct":
        return "direct", "egl:upload=direct"
    if mode == "pbo":
        return pbo, "egl:upload=pbo"
    low = renderer.lower()
    if any(name in low for name in SOFTWARE_RENDERERS):
        return "direct", f"auto: {renderer.split('(')[0].strip()} renders on the CPU, where a pixel buffer adds a copy"
    return pbo, "auto: a GPU renderer" + ("" if storage else " without GL 4.4 / ARB_buffer_storage")


def context_facts() -> tuple[str, tuple[int, int], set[str]]:
    """(renderer name, GL version, extensions) of the current context."""
    name = (GL.glGetString(GL.GL_RENDERER) or b"").decode(errors="replace")
    major = GL.glGetIntegerv(GL.GL_MAJOR_VERSION)
    minor = GL.glGetIntegerv(GL.GL_MINOR_VERSION)
    count = int(GL.glGetIntegerv(GL.GL_NUM_EXTENSIONS))
    exts = {GL.glGetStringi(GL.GL_EXTENSIONS, i).decode(errors="replace") for i in range(count)}
    return name, (int(major), int(minor)), exts


@dataclass
class Slot:
    """One pixel buffer: its GL name, its mapping while the frames thread may write it, its fence."""

    buffer: int
    size: int
    address: int = 0                # mapped address (0: not mapped)
    fence: object = None            # GLsync set after the upload that last read it (persistent ring)
    flat: np.ndarray | None = None  # the mapping as bytes


class PixelBuffers:
    """The ``pbo`` path's buffers. The GL thread calls :meth:`handout` for the frames thread's next
    destination and :meth:`bind` / :meth:`uploaded` around the ``glTexSubImage2D`` that reads it."""

    def __init__(self, persistent: bool):
        self.persistent = persistent
        self.kind = "pbo-persistent" if persistent else "pbo-classic"
        self.slots: list[Slot] = []
        self._next = 0
        self.size = 0

    # ---- storage -------------------------------------------------------------------------------

    def _make(self, size: int) -> None:
        self.close()
        n = RING if self.persistent else 1
        ids = GL.glGenBuffers(n)
        ids = [int(ids)] if n == 1 else [int(i) for i in ids]
        for buf in ids:
            GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, buf)
            slot = Slot(buf, size)
            if self.persistent:
                flags = GL.GL_MAP_WRITE_BIT | GL.GL_MAP_PERSISTENT_BIT | GL.GL_MAP_COHERENT_BIT
                GL.glBufferStorage(GL.GL_PIXEL_UNPACK_BUFFER, size, None, flags)
                self._map(slot, flags)
            else:
                GL.glBufferData(GL.GL_PIXEL_UNPACK_BUFFER, size, None, GL.GL_STREAM_DRAW)
            self.slots.append(slot)
        GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, 0)
        self.size = size
        self._next = 0
        log.info("upload path %s: %d x %.1f MiB", self.kind, n, size / 2**20)

    @staticmethod
    def _map(slot: Slot, flags: int) -> None:
        ptr = GL.glMapBufferRange(GL.GL_PIXEL_UNPACK_BUFFER, 0, slot.size, flags)
        address = ptr if isinstance(ptr, int) else (ctypes.cast(ptr, ctypes.c_void_p).value or 0)
        if not address:
            raise RuntimeError(f"glMapBufferRange of a {slot.size}-byte pixel buffer failed")
        slot.address = address
        slot.flat = np.ctypeslib.as_array((ctypes.c_uint8 * slot.size).from_address(address))

    # ---- per frame -----------------------------------------------------------------------------

    def handout(self, rows: int, pitch: int) -> tuple[Slot, np.ndarray] | None:
        """(GL thread) A buffer for the next frame, seen as (rows, pitch) bytes (room for at least ``rows``
        rows of the last frame's pitch), mapped and free of pending uploads; None when not possible now
        (the frames thread then copies into its own buffer)."""
        need = rows * pitch
        if need <= 0:
            return None
        if need > self.size:
            self._make(need + need // 8)   # some room for a slightly taller frame
        slot = self.slots[self._next]
        if self.persistent and slot.fence is not None:
            status = GL.glClientWaitSync(slot.fence, GL.GL_SYNC_FLUSH_COMMANDS_BIT, FENCE_WAIT_NS)
            if status not in (GL.GL_ALREADY_SIGNALED, GL.GL_CONDITION_SATISFIED):
                # GL_TIMEOUT_EXPIRED / GL_WAIT_FAILED: the GPU may still read it; keep the fence (the
                # same slot is asked again next time) and let the frames thread use its own buffer
                return None
            GL.glDeleteSync(slot.fence)
            slot.fence = None
        self._next = (self._next + 1) % len(self.slots)
        if not self.persistent and not slot.address:
            GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, slot.buffer)
            # Invalidate: the driver hands out fresh storage instead of waiting for the last upload.
            self._map(slot, GL.GL_MAP_WRITE_BIT | GL.GL_MAP_INVALIDATE_BUFFER_BIT)
            GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, 0)
        cap = slot.size // pitch
        return slot, slot.flat[: cap * pitch].reshape(cap, pitch)

    def bind(self, slot: Slot) -> int:
        """(GL thread) Make ``slot`` the source of the next ``glTexSubImage2D``; returns the address of its
        first byte as the frames thread saw it (pointers into the rows become offsets from it)."""
        address = slot.address
        GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, slot.buffer)
        if not self.persistent:
            GL.glUnmapBuffer(GL.GL_PIXEL_UNPACK_BUFFER)   # a classic buffer must be unmapped to be read by GL
            slot.address, slot.flat = 0, None
        return address

    def uploaded(self, slot: Slot) -> None:
        """(GL thread) The uploads from ``slot`` are queued: fence them (persistent) and unbind."""
        if self.persistent:
            slot.fence = GL.glFenceSync(GL.GL_SYNC_GPU_COMMANDS_COMPLETE, 0)
        GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, 0)

    def close(self) -> None:
        for slot in self.slots:
            if slot.fence is not None:
                GL.glDeleteSync(slot.fence)
            if slot.address:
                GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, slot.buffer)
                GL.glUnmapBuffer(GL.GL_PIXEL_UNPACK_BUFFER)
            slot.flat = None
            GL.glDeleteBuffers(1, [slot.buffer])
        GL.glBindBuffer(GL.GL_PIXEL_UNPACK_BUFFER, 0)
        self.slots = []
        self.size = 0
