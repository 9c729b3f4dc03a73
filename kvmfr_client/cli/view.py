"""`kvmfr-view`: the viewer, its headless reader, and tools.

    kvmfr-view [-f PATH] [-F] [section:option=value ...]       the window (see docs/viewer.md)
    kvmfr-view --headless --frames N [--json]                  read N frames without a window
    kvmfr-view --inspect FILE [--json]                         decode a still copy of the memory
    kvmfr-view --benchmark [--duration S] [--json FILE] ...     capture-to-screen latency (docs/latency.md)

Settings are Looking Glass style section:option names, read from Looking Glass's INI files, ours
(~/.config/kvmfr-client/client.ini), -C files and the command line; Looking Glass's short flags work
(see --help-options and docs/looking-glass-users.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .. import config


def build_parser() -> config.flags.Parser:
    p = config.build_parser("kvmfr-view", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--headless", action="store_true", help="no window: read frames and report")
    p.add_argument("--frames", type=int, default=300, help="headless: frames to read")
    p.add_argument("--timeout", type=float, default=60.0, help="headless: give up after this many seconds")
    p.add_argument("--json", action="store_true", help="headless/inspect: print one JSON object")
    p.add_argument("--inspect", metavar="FILE", help="decode a dump of the shared memory and print it")
    p.add_argument("-v", "--verbose", action="count", default=0)
    try:
        from .. import viewer
    except ImportError:
        viewer = None
    if viewer is not None and hasattr(viewer, "add_arguments"):
        viewer.add_arguments(p)
    return p


def parse_command_line(argv: list[str] | None = None) -> tuple[argparse.Namespace, config.Config]:
    """The parsed flags and the loaded configuration (a bad one: one error line, exit status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args, config.load_config(parser, args)


def _inspect(path: str, as_json: bool) -> int:
    from ..core.snapshot import read_snapshot
    snap = read_snapshot(path)
    data = {"host": snap.host.__dict__ | {"uuid": snap.host.uuid.hex()}, "queues": snap.queues}
    if snap.newest_frame is not None:
        f = snap.newest_frame
        data["newest_frame"] = {"serial": f.serial, "type": f.type.name, "width": f.width, "height": f.height,
                                "pitch": f.pitch, "flags": int(f.flags), "damage": f.damage}
    if snap.newest_cursor is not None:
        c = snap.newest_cursor
        data["newest_cursor"] = {"flags": int(c.flags), "x": c.x, "y": c.y,
                                 "shape": None if c.shape is None else
                                 {"type": c.shape.type.name, "width": c.shape.width, "height": c.shape.height,
                                  "hotspot": [c.shape.hx, c.shape.hy]}}
    print(json.dumps(data, indent=None if as_json else 2))
    return 0


def main(argv: list[str] | None = None) -> int:
    if "--benchmark" in (sys.argv[1:] if argv is None else argv):   # its own flags (kvmfr-view --benchmark -h)
        from ..latency.benchmark import main as benchmark_main
        return benchmark_main(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="kvmfr-view: %(levelname)s %(name)s: %(message)s")
    if args.inspect:
        return _inspect(args.inspect, args.json)
    cfg = config.load_config(parser, args)
    if args.headless:
        from .headless import main_headless
        return main_headless(cfg["app:shmFile"], args.frames, args.json, args.timeout)
    try:
        from .. import viewer
        run = viewer.run
    except (ImportError, AttributeError):
        print("kvmfr-view: the window is not available in this build; use --headless", file=sys.stderr)
        return 2
    from ..spice import SpiceError
    from .services import start_services, stop_services
    try:
        viewer_input, audio = start_services(cfg)
    except SpiceError as exc:   # e.g. an unreadable spice:passwordFile: a bad setting, said in one line
        print(f"kvmfr-view: {exc}", file=sys.stderr)
        return 2
    try:
        return run(cfg, args, input_hook=viewer_input)
    finally:
        stop_services(viewer_input, audio)


if __name__ == "__main__":
    sys.exit(main())
