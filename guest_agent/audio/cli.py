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
import sys
import threading

from guest_agent.audio.capture import DEFAULT_SOURCE, ScreamCapture
from guest_agent.audio.scream_sender import ScreamIvshmemWriter, ScreamUdpSender
from kvmfr_client.audio import pulse, scream_wire
from kvmfr_client.audio.formats import (DEFAULT_MASKS, MAX_CHANNELS, MAX_RATE, MIN_RATE, SAMPLE_BITS, FormatError,
                                        PcmFormat)
from kvmfr_client.audio.priority import freeze_startup_objects
from kvmfr_client.config import exits
from kvmfr_client.config.flags import Parser, checked
from kvmfr_client.config.registry import bounded, number

MAX_IVSHMEM_MB = 1024   # an IVSHMEM device of a GiB is far beyond any Scream ring (2 MiB is the usual)


def build_parser() -> argparse.ArgumentParser:
    """One-line errors (exit status 2); every number is range-checked here, each range declared once."""
    p = Parser(prog="kvmfr-agent audio", description="Send this guest's sound as Scream (UDP or IVSHMEM).")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--udp", metavar="HOST:PORT", default=None,
                       help=f"send datagrams here (default {scream_wire.DEFAULT_GROUP}:{scream_wire.DEFAULT_PORT}; "
                            "a multicast group or the host's address)")
    where.add_argument("--ivshmem", metavar="PATH", help="write the Scream ring into this IVSHMEM device/file; "
                       "auto: this VM's Scream device (kvmfr-vm's label kvmfr-scream), or a PCI address")
    p.add_argument("--ivshmem-size", type=checked(number(int, 1, MAX_IVSHMEM_MB, "MiB")), default=2, metavar="MB",
                   help=f"size to create PATH with, 1..{MAX_IVSHMEM_MB} (default 2)")
    p.add_argument("--source", default=DEFAULT_SOURCE, help="Pulse source to record (default: the default sink's monitor)")
    p.add_argument("--rate", type=checked(number(int, MIN_RATE, MAX_RATE, "Hz")), default=48000,
                   help="sample rate, a multiple of 44100 or 48000 (default 48000)")
    p.add_argument("--bits", type=checked(bounded(int, lambda v: v in SAMPLE_BITS, "16, 24 or 32")), default=16)
    p.add_argument("--channels", type=checked(number(int, 1, MAX_CHANNELS)), default=2, metavar=f"1-{MAX_CHANNELS}")
    p.add_argument("--interface", help="IPv4 address of the interface to send multicast on")
    p.add_argument("--ttl", type=checked(number(int, 0, 255)), default=1, help="multicast TTL, 0..255 (default 1)")
    p.add_argument("--silence-threshold", type=checked(number(int, 0, 10**9, also=" (0: never)")), default=0,
                   metavar="FRAMES",
                   help="stop sending after this many silent frames (Scream suggests 10000; default 0 = never)")
    p.add_argument("--server", help="PulseAudio server (like PULSE_SERVER)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """The program; returns its exit status. It runs until stopped: Ctrl+C or SIGTERM, also while it
    starts, end it cleanly with 0 (the capture and the sender are closed on the way out)."""
    exits.raise_on_stop_signals()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["audio"]:
        argv = argv[1:]
    try:
        return _main(argv)
    except exits.Stopped:
        return exits.OK


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")
    log = logging.getLogger("kvmfr-agent.audio")
    try:
        fmt = PcmFormat(args.rate, args.bits, args.channels, DEFAULT_MASKS[args.channels]).validate()
        scream_wire.rate_marker(fmt.rate)
    except FormatError as exc:
        print(f"kvmfr-agent audio: {exc}", file=sys.stderr)
        return exits.USAGE
    made = _sender(args, fmt)
    if isinstance(made, int):
        return made
    sender, where = made
    try:
        return _send(args, fmt, sender, where, log)
    finally:
        sender.close()


def _sender(args, fmt: PcmFormat):
    """(the Scream sender the flags ask for, where it sends), or the exit status after one line saying why
    there is none."""
    if args.ivshmem:
        # -- issue 16: --ivshmem auto / PCI address (guest_agent/device.py)
        from guest_agent.device import DeviceError, resolve_scream
        try:
            args.ivshmem = resolve_scream(args.ivshmem)
        except DeviceError as exc:
            print(f"kvmfr-agent audio: {exc}", file=sys.stderr)
            return exits.SHM
        # --
        try:
            return (ScreamIvshmemWriter(args.ivshmem, fmt, size=args.ivshmem_size * 1024 * 1024),
                    f"IVSHMEM ring {args.ivshmem}")
        except OSError as exc:
            logging.getLogger("kvmfr-agent.audio").debug("cannot use %s: %r", args.ivshmem, exc)
            print(f"kvmfr-agent audio: cannot write the Scream ring into {args.ivshmem}: "
                  f"{exc.strerror or exc}; --ivshmem must name a writable file or IVSHMEM device", file=sys.stderr)
            return exits.SHM
    host, _, port = (args.udp or f"{scream_wire.DEFAULT_GROUP}:{scream_wire.DEFAULT_PORT}").rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        print(f"kvmfr-agent audio: --udp wants HOST:PORT (port 1..65535), got {args.udp!r}", file=sys.stderr)
        return exits.USAGE
    try:
        return (ScreamUdpSender(fmt, host, int(port), interface=args.interface, ttl=args.ttl),
                f"udp://{host}:{port}")
    except OSError as exc:
        logging.getLogger("kvmfr-agent.audio").debug("cannot send to %s:%s: %r", host, port, exc)
        print(f"kvmfr-agent audio: cannot send to {host}:{port}: {exc.strerror or exc}; check --udp and "
              "--interface", file=sys.stderr)
        return exits.USAGE


def _send(args, fmt: PcmFormat, sender, where: str, log: logging.Logger) -> int:
    try:
        # libpulse's connect cannot be interrupted: waited for here, so Ctrl+C/SIGTERM end it at once.
        capture = exits.interruptible(lambda: ScreamCapture(fmt, sender, source=args.source, server=args.server,
                                                            silence_threshold=args.silence_threshold),
                                      "pulse-connect")
    except pulse.PulseError as exc:
        print(f"kvmfr-agent audio: cannot record {args.source}: {exc}", file=sys.stderr)
        return exits.FAILED
    done = threading.Event()
    # From here Ctrl+C and SIGTERM ask the loop to end; the capture stops and the sender closes after it.
    with exits.on_stop_signals(lambda _signum: done.set()):
        log.info("sending %s from %s to %s", fmt.describe(), args.source, where)
        freeze_startup_objects()
        capture.start()
        try:
            while not done.wait(5.0):
                if args.verbose:
                    log.debug("sent %d blocks, %d silent blocks skipped", capture.blocks, capture.skipped_silent)
        finally:
            capture.stop()
            log.info("stopped after %d blocks", capture.blocks)
    return exits.OK

if __name__ == "__main__":
    sys.exit(main())
