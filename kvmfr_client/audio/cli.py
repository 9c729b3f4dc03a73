"""``kvmfr-audio``: play a guest's Scream (UDP or IVSHMEM) and/or SPICE audio without a window.

    kvmfr-audio --scream udp://239.255.77.77:4010 [--interface lo] [--sink NAME] [--latency MS]
    kvmfr-audio --scream ivshmem:/dev/shm/scream-ivshmem
    kvmfr-audio --spice 127.0.0.1:5900 [--spice-password-file FILE]
    kvmfr-audio --list-sinks

Each setting flag is a spelling of an audio:* or spice:* option (kvmfr_client.config.flags); the options
also come from the same INI files as kvmfr-view's, and as section:option=value arguments.
"""

from __future__ import annotations

# Next to nothing here, not even most of the standard library: main() takes SIGINT and SIGTERM over
# (kvmfr_client.startup) before the rest loads (numpy, PulseAudio's binding, the SPICE client: a few tenths
# of a second).
import os
import signal
import sys

from kvmfr_client.startup import run_program

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kvmfr_client import config


def build_parser() -> config.flags.Parser:
    import argparse

    from kvmfr_client import config
    from kvmfr_client.config.flags import checked
    from kvmfr_client.config.registry import bounded
    p = config.build_parser("kvmfr-audio", description="Play a VM's Scream or SPICE audio through "
                            "PulseAudio/PipeWire.", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spice-password", metavar="PASSWORD",
                   help="SPICE password (visible to other users in ps: prefer --spice-password-file or "
                        "$KVMFR_SPICE_PASSWORD)")
    p.add_argument("--list-sinks", action="store_true", help="list sinks and exit")
    p.add_argument("--stats", type=checked(bounded(float, lambda v: v == 0 or 0.1 <= v <= 86400,
                                                   "0 (off) or 0.1..86400 seconds")),
                   metavar="S", default=0, help="log counters every S seconds, 0.1..86400 (default 0: off)")
    p.add_argument("--stats-file", metavar="PATH", help="with --stats: append them as JSON lines to PATH instead")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """The program; returns its exit status (kvmfr_client.config.exits). Its first action is to take SIGINT
    and SIGTERM over: Ctrl+C or SIGTERM while playing, or while starting to (its modules loading included),
    ends it cleanly with 0 (it runs until stopped); during ``--list-sinks`` (a job) with 130 / 143 and one
    line."""
    argv = sys.argv[1:] if argv is None else argv
    return run_program(lambda: _main(argv), lambda name, status: _stopped(argv, name, status))


def _stopped(argv: list[str], name: str, status: int) -> int:
    """The exit status of a run stopped by signal ``name`` before it played (or listed the sinks)."""
    if "--list-sinks" in argv:
        print(f"kvmfr-audio: stopped by {name} before the sinks were listed", file=sys.stderr)
        return status
    return 0   # exits.OK: stopping is how it ends


def _main(argv: list[str]) -> int:
    import json
    import logging
    import threading
    import time

    from kvmfr_client import config
    from kvmfr_client.audio import sinks
    from kvmfr_client.audio.priority import freeze_startup_objects, raise_thread_priority
    from kvmfr_client.audio.service import AudioConfigError, AudioService
    from kvmfr_client.config import exits
    from kvmfr_client.spice.errors import SpiceError
    parser = build_parser()
    args, cfg = config.start_program(parser, argv, "%(asctime)s %(name)s: %(message)s", quiet=logging.INFO)
    if args.list_sinks:
        try:
            lines = sinks.describe_sinks(cfg["audio:server"] or None)
        except Exception as exc:  # pulsectl raises its own types for "no server"
            print(f"kvmfr-audio: cannot reach the sound server: {exc}", file=sys.stderr)
            return exits.FAILED
        for line in lines:
            print(line)
        return exits.OK
    if args.spice_password is not None:
        # The one place a SPICE password is read is spice_password(cfg); this is its fallback.
        os.environ["KVMFR_SPICE_PASSWORD"] = args.spice_password
    service = AudioService(cfg)
    if not service.enabled:
        print("kvmfr-audio: nothing to play; give --scream and/or --spice", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        service.start()
    except (AudioConfigError, sinks.SinkError, SpiceError, OSError, ValueError) as exc:
        print(f"kvmfr-audio: {exc}", file=sys.stderr)
        return 1
    log = logging.getLogger("kvmfr-audio")
    freeze_startup_objects()
    # This thread shares the GIL with the audio threads: if it lost the CPU while holding it, they
    # would wait for it, so it runs at their priority (it sleeps nearly all the time).
    raise_thread_priority()
    stats_file = open(args.stats_file, "a", buffering=1) if args.stats_file else None
    try:
        while not done.wait(args.stats or 3600):
            if stats_file:
                stats_file.write(json.dumps({"t": time.monotonic(), **service.stats()}) + "\n")
            elif args.stats:
                log.info("stats: %s", service.stats())
    finally:
        if stats_file:
            stats_file.close()
        log.info("stopping; %s", service.stats())
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
