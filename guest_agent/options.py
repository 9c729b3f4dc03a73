"""The guest agent's options (``agent:*``), declared once in the one registry (kvmfr_client.config).

``kvmfr-agent --shm PATH --size 1920x1080 ...`` are their spellings (kvmfr_client.config.flags); they can
also be given as ``agent:option=value`` or in a ``-C`` file. The agent reads no host client INI files.
"""

from __future__ import annotations

from kvmfr_client.config import Option, bounded, parse_bool, parse_positive_float, parse_size, register
from kvmfr_client.core.formats import FrameType


_count = bounded(int, lambda v: v >= 0, "0 or more")


register(
    Option("agent", "shmFile", "/dev/shm/looking-glass",
           "shared-memory file or /dev/kvmfrN to write (created and sized when missing)"),
    Option("agent", "source", "testpattern",
           "testpattern: moving image with serial+timestamp barcode; damage: only a small region changes; "
           "x11: capture this guest's X screen ($DISPLAY) and cursor (agent:size is ignored)",
           choices=("testpattern", "damage", "x11")),
    Option("agent", "size", (1920, 1080), "frame size WIDTHxHEIGHT", parse=parse_size),
    Option("agent", "fps", 60.0, "frames per second", parse=parse_positive_float),
    Option("agent", "format", "BGRA", "frame format", choices=tuple(t.name for t in FrameType)),
    Option("agent", "frames", 0, "stop after this many frames (0: run until stopped)", parse=_count),
    Option("agent", "cursor", True, "send cursor updates", parse=parse_bool),
    Option("agent", "always", False, "produce frames even with no client subscribed", parse=parse_bool),
)
