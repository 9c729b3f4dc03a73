"""Synthetic sources: the moving test pattern and the small-region (damage) pattern."""

from __future__ import annotations

from guest_agent.cursor_animation import CursorAnimation
from guest_agent.producer import Producer
from kvmfr_client.core.formats import FrameFlags, FrameType
from kvmfr_client.core.testpattern import Pattern, PatternKind, now_us


class PatternSource:
    """Writes kvmfr_client.core.testpattern frames: barcode rows, then the body straight from the
    precomputed stored image (no per-frame image building)."""

    def __init__(self, width: int, height: int, ftype: FrameType, kind: PatternKind):
        self.pattern = Pattern(width, height, ftype, kind)
        self.ftype = ftype
        self.flags = FrameFlags.HDR if ftype == FrameType.RGBA16F else FrameFlags(0)
        self.cursor = CursorAnimation(width, height)

    @property
    def capture_name(self) -> str:
        return "testpattern" if self.pattern.kind == PatternKind.MOVING else "testpattern-damage"

    def post(self, producer: Producer, serial: int) -> int:
        """Capture (render) and post frame ``serial``; returns its capture time in microseconds."""
        p = self.pattern
        t_us = now_us()
        damage = p.damage(serial)
        producer.begin_frame(serial, self.ftype, p.width, p.height, pitch=p.pitch, damage=damage,
                             flags=int(self.flags))
        if p.kind == PatternKind.DAMAGE:
            # The slot keeps what it held two frames ago; the producer rewrites only what changed.
            producer.write_damage(p.render_stored(serial, t_us))
        else:
            producer.write_rows(p.code_stored(serial, t_us), 0)
            producer.write_rows(p.body_stored(serial), p.code_rows)
        producer.end_frame()
        return t_us

    def cursor_update(self, serial: int):
        """(x, y, visible, shape or None): the animated cursor moves every frame."""
        x, y, shape = self.cursor.update(serial)
        return x, y, True, shape

    def warp(self, x: int, y: int) -> None:
        self.cursor.warp = (x, y)
