"""`kvmfr-agent`: the guest side. Writes frames and cursor into shared memory in the Looking Glass B7
wire format (LGMP 6 / KVMFR 20), so our viewer or a real Looking Glass client can show them.

    kvmfr-agent --shm /dev/shm/looking-glass --source testpattern --size 1920x1080 --fps 60
    kvmfr-agent audio ...        (the Scream-compatible audio sender; see docs/audio.md)
"""

from __future__ import annotations

import argparse
import logging
import sys

from kvmfr_client.config import parse_size
from kvmfr_client.core.formats import FrameType


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kvmfr-agent", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shm", default="/dev/shm/looking-glass",
                   help="shared-memory file or /dev/kvmfrN (created and sized when missing)")
    p.add_argument("--source", default="testpattern", choices=["testpattern", "damage", "x11"],
                   help="testpattern: moving image with serial+timestamp barcode; damage: only a small region "
                        "changes; x11: capture this guest's X screen ($DISPLAY) and cursor (--size is ignored)")
    p.add_argument("--size", default="1920x1080", type=parse_size, help="frame size WxH")
    p.add_argument("--fps", default=60.0, type=float, help="frames per second")
    p.add_argument("--format", default="BGRA", choices=[t.name for t in FrameType], help="frame format")
    p.add_argument("--frames", default=0, type=int, help="stop after N frames (0: run until stopped)")
    p.add_argument("--no-cursor", action="store_true", help="send no cursor updates")
    p.add_argument("--always", action="store_true", help="produce frames even with no client subscribed")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "audio":
        from guest_agent.audio.cli import main as audio_main
        return audio_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="kvmfr-agent: %(levelname)s %(message)s")
    from .agent import AgentOptions, run_agent
    opts = AgentOptions(shm=args.shm, source=args.source, width=args.size[0], height=args.size[1], fps=args.fps,
                        ftype=FrameType[args.format], frames=args.frames, cursor=not args.no_cursor,
                        idle_without_clients=not args.always)
    return run_agent(opts)


if __name__ == "__main__":
    sys.exit(main())
