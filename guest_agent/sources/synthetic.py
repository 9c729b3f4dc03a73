"""Synthetic sources: the moving test pattern and the small-region (damage) pattern."""

from __future__ import annotations

import time

from guest_agent.cursor_animation import CursorAnimation
from guest_agent.producer import Producer, stage_timings
from kvmfr_client.core.formats import FrameFlags, FrameType
from kvmfr_client.core.session import HdrMetadata
from kvmfr_client.core.testpattern import SQUARE, Pattern, PatternKind, now_us

# What the HDR test formats claim to be mastered on (KVMFR 34 HDR static metadata): BT.2020 primaries,
# D65 white, a 1000-nit display down to 0.005 nits, content peaking at 1000 nits, 400 nits frame average.
HDR_TEST_METADATA = HdrMetadata(primaries=((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
                                white_point=(0.3127, 0.3290), max_luminance=1000.0, min_luminance=0.005,
                                max_cll=1000, max_fall=400)
HDR_FORMATS = (FrameType.RGBA16F, FrameType.RGBA10)


class PatternSource:
    """Writes kvmfr_client.core.testpattern frames: barcode rows, then the body straight from the
    precomputed stored image (no per-frame image building)."""

    def __init__(self, width: int, height: int, ftype: FrameType, kind: PatternKind, prerendered: bool = False):
        """``prerendered`` (``--source prerendered``): the damage pattern's frames, but each sent whole (no
        damage rectangles: clients copy and upload every pixel), while the agent rewrites only what changed
        in the frame's slot (the barcode rows and the square): its cost per frame is little more than the
        barcode, so it can feed 2160p60 where writing every pixel takes a core's worth of memory traffic."""
        if prerendered:
            kind = PatternKind.DAMAGE
        self.prerendered = prerendered
        self._whole_next = True      # the first frame after a (re)size: nothing in the slots is valid
        self.pattern = Pattern(width, height, ftype, kind)
        self.ftype = ftype
        self.flags = FrameFlags.HDR if ftype == FrameType.RGBA16F else FrameFlags(0)
        self.hdr = HDR_TEST_METADATA if ftype in HDR_FORMATS else None
        self.cursor = CursorAnimation(width, height)
        self.format_ver = 0

    def resize(self, width: int, height: int) -> bool:
        """Switch to width x height, like a guest mode change (a new format version). Always possible."""
        p = self.pattern
        if (width, height) != (p.width, p.height):
            self.pattern = Pattern(width, height, self.ftype, p.kind)
            self.cursor = CursorAnimation(width, height)
            self.format_ver += 1
            self._whole_next = True
        return True

    @property
    def capture_name(self) -> str:
        if self.prerendered:
            return "testpattern-prerendered"
        return "testpattern" if self.pattern.kind == PatternKind.MOVING else "testpattern-damage"

    def post(self, producer: Producer, serial: int) -> int:
        """Capture (render) and post frame ``serial``; returns its capture time in microseconds. The
        stages are timed for KVMFR 34 (capture: rendering the rows; copy: writing them into shared memory;
        no post-processing)."""
        p = self.pattern
        t_us = now_us()
        t0 = time.monotonic_ns()
        damage = p.damage(serial)
        changed = None
        if self.prerendered:
            # Sent whole; the slot gets only what changed (none after a resize: then it is written whole).
            changed, damage = ([] if self._whole_next else damage), []
            self._whole_next = False
        if self.prerendered:
            rows = [self._canvas_for(serial, t_us)]
        elif p.kind == PatternKind.DAMAGE:
            rows = [p.render_stored(serial, t_us)]
        else:
            rows = [p.code_stored(serial, t_us), p.body_stored(serial)]
        t1 = time.monotonic_ns()
        producer.begin_frame(serial, self.ftype, p.width, p.height, pitch=p.pitch, damage=damage,
                             flags=int(self.flags), format_ver=self.format_ver, hdr=self.hdr, changed=changed)
        if p.kind == PatternKind.DAMAGE:
            # The slot keeps what it held two frames ago; the producer rewrites only what changed.
            producer.write_damage(rows[0])
        else:
            producer.write_rows(rows[0], 0)
            producer.write_rows(rows[1], p.code_rows)
        producer.end_frame(stage_timings(t1 - t0, time.monotonic_ns() - t1))
        return t_us

    def _canvas_for(self, serial: int, t_us: int):
        """The whole stored frame ``serial``, kept from frame to frame: only the barcode rows and the square
        (put back where it was, drawn where it is) are rewritten, never the whole picture."""
        p = self.pattern
        canvas = getattr(self, "_canvas", None)
        if canvas is None or canvas.shape != (p.height, p.pitch):
            self._canvas = p.render_stored(serial, t_us)
        else:
            canvas[: p.code_rows] = p.code_stored(serial, t_us)
            y, bpp = p.square_y, p.bpp
            x = p.square_x(self._canvas_serial) * bpp
            canvas[y: y + SQUARE, x: x + SQUARE * bpp] = p.base[y: y + SQUARE, x: x + SQUARE * bpp]
            x = p.square_x(serial) * bpp
            canvas[y: y + SQUARE, x: x + SQUARE * bpp] = p.square_stored(serial)
        self._canvas_serial = serial
        return self._canvas

    def cursor_update(self, serial: int):
        """(x, y, visible, shape or None): the animated cursor moves every frame."""
        x, y, shape = self.cursor.update(serial)
        return x, y, True, shape

    def warp(self, x: int, y: int) -> None:
        self.cursor.warp = (x, y)
