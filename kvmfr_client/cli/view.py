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

# Next to nothing here, not even most of the standard library: main() takes SIGINT and SIGTERM over
# (kvmfr_client.startup) before the rest loads (numpy, the native helper: a few tenths of a second).
import os
import stat
import sys

from ..startup import run_program, stream_large_copies

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .. import config
JOBS = {"--headless", "--inspect", "--benchmark"}   # the modes that are jobs: a signal cuts them short


def build_parser() -> config.flags.Parser:
    import argparse

    from .. import config
    from ..config.flags import checked
    from ..config.registry import number
    p = config.build_parser("kvmfr-view", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--headless", action="store_true", help="no window: read frames and report")
    p.add_argument("--frames", type=checked(number(int, 1, 10**9)), default=300,
                   help="headless: frames to read (1..1000000000)")
    p.add_argument("--timeout", type=checked(number(float, 0.1, 10**7, "seconds")), default=60.0,
                   help="headless: give up after this many seconds")
    p.add_argument("--json", action="store_true", help="headless/inspect: print one JSON object")
    p.add_argument("--progress", action="store_true",
                   help="headless: also print one JSON line a second while reading (frames, last serial, "
                        "state, error counts)")
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
    from .. import config
    parser = build_parser()
    args = parser.parse_args(argv)
    return args, config.load_config(parser, args)


class WritableWarning:
    """The warning about a shared-memory file that every user may write, said at most once per run.

    :meth:`check` is called when the program starts (the file may be there already) and again when the
    reader first maps the file, since QEMU often creates it after the viewer started (the window and the
    headless reader wait for a missing file); after a warning it does nothing."""

    def __init__(self, path: str):
        self.path = path
        self.said = False

    def check(self) -> None:
        if not self.said:
            self.said = warn_if_world_writable(self.path)


def warn_if_world_writable(path: str) -> bool:
    """One warning line when the shared memory (a file or a kvmfr device) may be written by every user:
    any local program could then feed this viewer frames. True when it was said."""
    try:
        st = os.stat(path)
    except OSError:
        return False   # not there yet (or not usable): the reader says so itself
    is_kvmfr = stat.S_ISCHR(st.st_mode) and os.path.basename(path).startswith("kvmfr")
    if not (stat.S_ISREG(st.st_mode) or is_kvmfr) or not st.st_mode & stat.S_IWOTH:
        return False
    print(f"kvmfr-view: warning: {path} is writable by every user (mode {stat.S_IMODE(st.st_mode):04o}): any "
          f"local program can feed this viewer frames; make it 0660 (chmod o-w {path}) with the VM's group",
          file=sys.stderr)
    return True


def _inspect(path: str, as_json: bool) -> int:
    """Decode a still copy of the memory; a file that cannot be decoded is one line (and, with --json, a
    JSON object with an ``error`` member), exit status 3."""
    import json
    import logging

    from .. import config
    from ..core import errors
    from ..core.snapshot import read_snapshot
    log = logging.getLogger(__name__)
    try:
        snap = read_snapshot(path)
    except (errors.KvmfrError, ValueError) as exc:
        log.debug("cannot inspect %s: %r %s", path, exc, getattr(exc, "__dict__", ""))
        message = f"cannot inspect {path}: {exc}" if path not in str(exc) else str(exc)
        if as_json:
            print(json.dumps({"file": path, "error": message}))
        print(f"kvmfr-view: {message}", file=sys.stderr)
        return config.exits.SHM
    data = {"host": snap.host.__dict__ | {"uuid": snap.host.uuid.hex()}, "protocol": snap.host.protocol,
            "protocol_name": snap.host.protocol_name, "queues": snap.queues}
    if snap.newest_frame is not None:
        f = snap.newest_frame
        data["newest_frame"] = {"serial": f.serial, "type": f.type.name, "width": f.width, "height": f.height,
                                "pitch": f.pitch, "flags": int(f.flags), "damage": f.damage,
                                "sdr_white_level": f.sdr_white_level,
                                "host_timings_ms": None if f.host_timings is None else f.host_timings.as_ms(),
                                "hdr_metadata": None if f.hdr_metadata is None else f.hdr_metadata.__dict__,
                                "incomplete": snap.newest_frame_incomplete}
    if snap.newest_cursor is not None:
        c = snap.newest_cursor
        data["newest_cursor"] = {"flags": int(c.flags), "x": c.x, "y": c.y, "visible": c.visible,
                                 "sdr_white_level": c.sdr_white_level,
                                 "shape": None if c.shape is None else
                                 {"type": c.shape.type.name, "width": c.shape.width, "height": c.shape.height,
                                  "hotspot": [c.shape.hx, c.shape.hy]}}
    print(json.dumps(data, indent=None if as_json else 2))
    return config.exits.OK


def main(argv: list[str] | None = None) -> int:
    """The program; returns its exit status (kvmfr_client.config.exits). Its first action is to take
    SIGINT and SIGTERM over, so a signal at any moment, even while its modules load, ends it cleanly: the
    window (and its start) with 0, quietly; a job (--headless, --inspect, --benchmark) starting or
    inspecting with one line and 130 / 143. The window and the headless reader take them over again to
    stop cleanly while they run."""
    if argv is None:
        argv = sys.argv[1:]
        if not JOBS & set(argv):   # the window: its frame copies bypass the caches (docs/viewer.md)
            stream_large_copies("kvmfr-view")
    return run_program(lambda: _main(argv), lambda name, status: _stopped(argv, name, status))


def _stopped(argv: list[str], name: str, status: int) -> int:
    """The exit status of a run stopped by signal ``name`` before its mode took the signals over."""
    if not JOBS & set(argv):
        return 0   # the window: stopping it is how it ends, even while it starts (exits.OK)
    print(f"kvmfr-view: stopped by {name}", file=sys.stderr)
    return status


def _main(argv: list[str]) -> int:
    import logging

    from .. import config
    log = logging.getLogger(__name__)
    if "--benchmark" in argv:   # its own flags (kvmfr-view --benchmark -h)
        from ..latency.benchmark import main as benchmark_main
        return benchmark_main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.progress and not args.headless:
        parser.error("--progress is for the headless reader: add --headless")
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="kvmfr-view: %(levelname)s %(name)s: %(message)s")
    if args.inspect:
        return _inspect(args.inspect, args.json)
    cfg = config.load_config(parser, args)
    displays = cfg["app:displays"] or ()   # several displays, one window each (viewer/multi.py)
    if displays and args.headless:
        parser.error("app:displays (--displays) is for the window: the headless reader reads one file (-f)")
    writable = WritableWarning(cfg["app:shmFile"])
    warnings = {path: WritableWarning(path) for path in displays}
    for w in warnings.values() or [writable]:
        w.check()
    if args.headless:
        from .headless import main_headless
        log.info("reading %d frames from %s", args.frames, cfg["app:shmFile"])
        return main_headless(cfg["app:shmFile"], args.frames, args.json, args.timeout, mapped=writable.check,
                             progress=args.progress)
    from ..viewer import filters
    try:   # what one option alone cannot say: egl:nvGain above egl:nvGainMax, a preset that is not there
        filters.from_config(cfg)
    except filters.FilterError as exc:
        parser.error(str(exc))
    if getattr(args, "save_preset", None):
        try:
            path = filters.save_preset(args.save_preset, filters.from_config(cfg))
        except (filters.FilterError, OSError) as exc:
            parser.error(str(exc))
        print(f"kvmfr-view: saved the filter chain as preset {args.save_preset!r} in {path}")
        return config.exits.OK
    try:
        from .. import viewer
        run = viewer.run
    except (ImportError, AttributeError):
        print("kvmfr-view: the window is not available in this build; use --headless", file=sys.stderr)
        return config.exits.FAILED
    from ..spice import SpiceError
    from .services import start_services, stop_services
    try:
        viewer_input, audio = start_services(cfg)
    except SpiceError as exc:   # e.g. an unreadable spice:passwordFile: a bad setting, said in one line
        print(f"kvmfr-view: {exc}", file=sys.stderr)
        return config.exits.USAGE
    try:
        if displays:
            from ..viewer import multi
            return multi.run(cfg, displays, args, viewer_input, lambda path: warnings[path].check(), audio)
        return run(cfg, args, input_hook=viewer_input, on_mapped=writable.check, audio=audio)
    finally:
        stop_services(viewer_input, audio)

if __name__ == "__main__":
    sys.exit(main())
