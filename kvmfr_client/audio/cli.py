"""``kvmfr-audio``: play a guest's Scream (UDP or IVSHMEM) and/or SPICE audio without a window.

    kvmfr-audio --scream udp://239.255.77.77:4010 [--interface lo] [--sink NAME] [--latency MS]
    kvmfr-audio --scream ivshmem:/dev/shm/scream-ivshmem
    kvmfr-audio --spice 127.0.0.1:5900
    kvmfr-audio --list-sinks
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time

from kvmfr_client import config
from kvmfr_client.audio import sinks
from kvmfr_client.audio.priority import freeze_startup_objects, raise_thread_priority
from kvmfr_client.audio.service import AudioConfigError, AudioService


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kvmfr-audio", description="Play a VM's Scream or SPICE audio through PulseAudio/PipeWire.")
    p.add_argument("--scream", metavar="udp://GROUP_OR_HOST:PORT | ivshmem:PATH",
                   help="Scream source (default group 239.255.77.77:4010)")
    p.add_argument("--interface", help="interface (name or IPv4) to join the multicast group on")
    p.add_argument("--spice", metavar="HOST:PORT", help="also play the SPICE playback channel of this server")
    p.add_argument("--spice-password", default="", help="SPICE ticket (password), if the server has one")
    p.add_argument("--sink", help="PulseAudio sink name (see --list-sinks); default: the default sink")
    p.add_argument("--latency", type=int, metavar="MS", help="target latency in ms from packet arrival to the sink (default 19)")
    p.add_argument("--max-latency", type=int, metavar="MS", help="latency above which the excess is skipped at once (default 100)")
    p.add_argument("--server", help="PulseAudio server (like PULSE_SERVER)")
    p.add_argument("--list-sinks", action="store_true", help="list sinks and exit")
    p.add_argument("--stats", type=float, metavar="S", default=0, help="log counters every S seconds")
    p.add_argument("--stats-file", metavar="PATH", help="with --stats: append them as JSON lines to PATH instead")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("options", nargs="*", metavar="audio:option=value", help="any audio:* option")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")
    if args.list_sinks:
        try:
            lines = sinks.describe_sinks(args.server)
        except Exception as exc:  # pulsectl raises its own types for "no server"
            print(f"kvmfr-audio: cannot reach the sound server: {exc}", file=sys.stderr)
            return 1
        for line in lines:
            print(line)
        return 0
    overrides = list(args.options)
    if args.scream:
        overrides.append(f"audio:scream={args.scream}")
    if args.interface:
        overrides.append(f"audio:interface={args.interface}")
    if args.sink:
        overrides.append(f"audio:sink={args.sink}")
    if args.latency:
        overrides.append(f"audio:latency={args.latency}")
    if args.max_latency:
        overrides.append(f"audio:maxLatency={args.max_latency}")
    if args.server:
        overrides.append(f"audio:server={args.server}")
    try:
        cfg = dict(config.load(overrides, user_file=False))
    except config.ConfigError as exc:
        print(f"kvmfr-audio: {exc}", file=sys.stderr)
        return 2
    if args.spice:
        host, _, port = args.spice.rpartition(":")
        if not host or not port.isdigit():
            print(f"kvmfr-audio: --spice wants HOST:PORT, got {args.spice!r}", file=sys.stderr)
            return 2
        cfg.update({"audio:spice": True, "spice:host": host, "spice:port": int(port),
                    "spice:password": args.spice_password})
    service = AudioService(cfg)
    if not service.enabled:
        print("kvmfr-audio: nothing to play; give --scream and/or --spice", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        service.start()
    except (AudioConfigError, sinks.SinkError, OSError, ValueError) as exc:
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
