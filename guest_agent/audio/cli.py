"""``kvmfr-agent audio``: a Scream sender for Linux guests.

    kvmfr-agent audio [--udp 239.255.77.77:4010 | --ivshmem /dev/shm/scream-ivshmem] [--source NAME]
                      [--rate 48000] [--bits 16] [--channels 2] [--interface IP] [--ttl 1]
                      [--silence-threshold FRAMES] [--server PULSE_SERVER]

Records everything the guest plays (the default sink's monitor, or --source) and sends it the way
the Windows Scream driver does, so ``kvmfr-audio``/``kvmfr-view`` (or Scream's own receiver) play it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from guest_agent.audio.capture import DEFAULT_SOURCE, ScreamCapture
from guest_agent.audio.scream_sender import ScreamIvshmemWriter, ScreamUdpSender
from kvmfr_client.audio import pulse, scream_wire
from kvmfr_client.audio.formats import DEFAULT_MASKS, FormatError, PcmFormat
from kvmfr_client.audio.priority import freeze_startup_objects


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kvmfr-agent audio", description="Send this guest's sound as Scream (UDP or IVSHMEM).")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--udp", metavar="HOST:PORT", default=None,
                       help=f"send datagrams here (default {scream_wire.DEFAULT_GROUP}:{scream_wire.DEFAULT_PORT}; "
                            "a multicast group or the host's address)")
    where.add_argument("--ivshmem", metavar="PATH", help="write the Scream ring into this IVSHMEM device/file")
    p.add_argument("--ivshmem-size", type=int, default=2, metavar="MB", help="size to create PATH with (default 2)")
    p.add_argument("--source", default=DEFAULT_SOURCE, help="Pulse source to record (default: the default sink's monitor)")
    p.add_argument("--rate", type=int, default=48000, help="sample rate, a multiple of 44100 or 48000 (default 48000)")
    p.add_argument("--bits", type=int, default=16, choices=(16, 24, 32))
    p.add_argument("--channels", type=int, default=2, choices=range(1, 9), metavar="1-8")
    p.add_argument("--interface", help="IPv4 address of the interface to send multicast on")
    p.add_argument("--ttl", type=int, default=1, help="multicast TTL (default 1)")
    p.add_argument("--silence-threshold", type=int, default=0, metavar="FRAMES",
                   help="stop sending after this many silent frames (Scream suggests 10000; default 0 = never)")
    p.add_argument("--server", help="PulseAudio server (like PULSE_SERVER)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["audio"]:
        argv = argv[1:]
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")
    log = logging.getLogger("kvmfr-agent.audio")
    try:
        fmt = PcmFormat(args.rate, args.bits, args.channels, DEFAULT_MASKS[args.channels]).validate()
        scream_wire.rate_marker(fmt.rate)
    except FormatError as exc:
        print(f"kvmfr-agent audio: {exc}", file=sys.stderr)
        return 2
    if args.ivshmem:
        sender = ScreamIvshmemWriter(args.ivshmem, fmt, size=args.ivshmem_size * 1024 * 1024)
        where = f"IVSHMEM ring {args.ivshmem}"
    else:
        host, _, port = (args.udp or f"{scream_wire.DEFAULT_GROUP}:{scream_wire.DEFAULT_PORT}").rpartition(":")
        if not host or not port.isdigit():
            print(f"kvmfr-agent audio: --udp wants HOST:PORT, got {args.udp!r}", file=sys.stderr)
            return 2
        sender = ScreamUdpSender(fmt, host, int(port), interface=args.interface, ttl=args.ttl)
        where = f"udp://{host}:{port}"
    try:
        capture = ScreamCapture(fmt, sender, source=args.source, server=args.server,
                                silence_threshold=args.silence_threshold)
    except pulse.PulseError as exc:
        print(f"kvmfr-agent audio: cannot record {args.source}: {exc}", file=sys.stderr)
        sender.close()
        return 1
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    log.info("sending %s from %s to %s", fmt.describe(), args.source, where)
    freeze_startup_objects()
    capture.start()
    try:
        while not done.wait(5.0):
            if args.verbose:
                log.debug("sent %d blocks, %d silent blocks skipped", capture.blocks, capture.skipped_silent)
    finally:
        capture.stop()
        sender.close()
        log.info("stopped after %d blocks", capture.blocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
