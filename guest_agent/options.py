"""The guest agent's options (``agent:*``), declared once in the one registry (kvmfr_client.config).

``kvmfr-agent --shm PATH --size 1920x1080 ...`` are their spellings (kvmfr_client.config.flags); they can
also be given as ``agent:option=value`` or in a ``-C`` file. The agent reads no host client INI files.
Values are range-checked here, when the command line is read: a bad one is one line, exit status 2.
"""

from __future__ import annotations

from kvmfr_client.config import Option, parse_bool, register
from kvmfr_client.config.registry import number, size_within
from kvmfr_client.core import testpattern
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.ivshmem_ids import MAX_DISPLAYS

from . import device

# A frame side of more than 16384 pixels is beyond what Looking Glass (and GL textures) can show.
MAX_FRAME_SIDE = 16384
MAX_FPS = 1000.0
MAX_FRAMES = 0xFFFFFFFF   # frame serials are 32-bit: more would wrap them
SHM_FILE = "/dev/shm/looking-glass"
MAX_DISPLAY = MAX_DISPLAYS - 1   # kvmfr-vm labels displays 0..MAX_DISPLAYS-1


def default_target() -> str:
    """Inside a VM with an IVSHMEM device: ``auto`` (found by its label); elsewhere the usual file."""
    return device.AUTO if device.has_ivshmem() else SHM_FILE


def parse_frame_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, at most 16384 per side and big enough for the test pattern's barcode and square."""
    width, height = size_within(MAX_FRAME_SIDE, "a frame")(text)
    min_width = 8 * testpattern.BLOCK
    if width < min_width:
        raise ValueError(f"{width}x{height} is too narrow for the test pattern: at least {min_width} pixels wide")
    min_height = testpattern.code_rows(width) + testpattern.SQUARE + 8
    if height < min_height:
        raise ValueError(f"{width}x{height} is too short for the test pattern: at least {min_height} rows at "
                         f"width {width}")
    return width, height


register(
    Option("agent", "shmFile", default_target,
           "where to write frames: auto (this VM's IVSHMEM device for agent:display, found by its kvmfr-vm "
           "label), a PCI address (0000:00:10.0), or a shared-memory file or /dev/kvmfrN (a file is created "
           f"and sized when missing, mode 0660); default: auto in a VM with an IVSHMEM device, else {SHM_FILE}"),
    Option("agent", "source", "testpattern",
           "testpattern: moving image with serial+timestamp barcode; damage: only a small region changes; "
           "prerendered: damage's frames sent whole, the agent rewriting only what changed (cheap at 2160p60); "
           "x11: capture this guest's X screen ($DISPLAY) and cursor (agent:size is ignored)",
           choices=("testpattern", "damage", "prerendered", "x11")),
    Option("agent", "size", (1920, 1080), f"frame size WIDTHxHEIGHT, at most {MAX_FRAME_SIDE} per side",
           parse=parse_frame_size),
    Option("agent", "fps", 60.0, f"frames per second, more than 0 and at most {MAX_FPS:g}",
           parse=number(float, 0.01, MAX_FPS, "frames per second")),
    Option("agent", "format", "BGRA", "frame format", choices=tuple(t.name for t in FrameType)),
    Option("agent", "frames", 0, "stop after this many frames (0: run until stopped)",
           parse=number(int, 0, MAX_FRAMES, also=" (0: run until stopped)")),
    Option("agent", "cursor", True, "send cursor updates", parse=parse_bool),
    Option("agent", "always", False, "produce frames even with no client subscribed", parse=parse_bool),
    Option("agent", "protocol", "b7",
           "wire protocol to write: b7 (LGMP 6 / KVMFR 20, Looking Glass B7) or master (LGMP 12 / KVMFR 34, "
           "Looking Glass master: host stage timings, SDR white level, HDR metadata, window-size requests)",
           choices=("b7", "master")),
    Option("agent", "display", 0, f"with agent:shmFile=auto: the display whose IVSHMEM device to write "
           f"(kvmfr-vm's label kvmfr-display-N), 0..{MAX_DISPLAY}", parse=number(int, 0, MAX_DISPLAY)),
)
