"""`kvmfr-agent`: the guest side. Writes frames and cursor into shared memory in the Looking Glass B7
wire format (LGMP 6 / KVMFR 20), or with ``--protocol master`` in Looking Glass master's (LGMP 12 /
KVMFR 34), so our viewer or a real Looking Glass client of that version can show them.

    kvmfr-agent --shm /dev/shm/looking-glass --source testpattern --size 1920x1080 --fps 60
    kvmfr-agent --device auto --display 0    (in a VM: the IVSHMEM device labelled kvmfr-display-0)
    kvmfr-agent audio ...        (the Scream-compatible audio sender; see docs/audio.md)
    kvmfr-agent install-service [--system|--user] [--dry-run] [-- AGENT OPTIONS]   (systemd units)
    kvmfr-agent uninstall-service [--system|--user] [--dry-run]

Exit status (kvmfr_client.config.exits): 0 when stopped (Ctrl+C, SIGTERM) or after --frames; 1 when the
source cannot run (no X display for --source x11), or systemctl failed (install-service); 2 for a bad
command line or value; 3 when --shm names something frames cannot be written into (a folder, a FIFO, no
permission, a missing folder), or --device finds no usable IVSHMEM device (none, two candidates, too small).
"""

from __future__ import annotations

# Only the standard library here: main() takes SIGINT and SIGTERM over (kvmfr_client.startup, which loads
# nothing else) before anything heavy is imported (numpy and the native helper, a few tenths of a second).
import argparse
import importlib
import logging
import sys
from typing import TYPE_CHECKING

from kvmfr_client.startup import run_program

if TYPE_CHECKING:
    from kvmfr_client.config.flags import Parser

log = logging.getLogger("kvmfr-agent")


def build_parser() -> Parser:
    """``--shm --source --size --fps --format --frames --no-cursor --always`` are spellings of ``agent:*``
    options (kvmfr_client.config.flags; declared in guest_agent/options.py)."""
    from kvmfr_client import config
    importlib.import_module(".options", __package__)   # declares agent:*
    p = config.build_parser("kvmfr-agent", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """The program (also ``kvmfr-agent audio``); returns its exit status. Its first action is to take
    SIGINT and SIGTERM over, so a signal even while its modules load ends it quietly with 0."""
    argv = sys.argv[1:] if argv is None else argv
    # Stopped while starting, nothing has started yet (no file, no socket), and stopping is how the agent
    # ends: 0 (exits.OK), quietly.
    return run_program(lambda: _run(argv), lambda _name, _status: 0)


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "audio":
        from guest_agent.audio.cli import main as audio_main
        return audio_main(argv[1:])
    if argv and argv[0] in ("install-service", "uninstall-service"):
        from guest_agent.service import main as service_main
        return service_main(argv)
    return _main(argv)


def _main(argv: list[str]) -> int:
    from kvmfr_client import config
    from kvmfr_client.config import exits
    parser = build_parser()
    args, cfg = config.start_program(parser, argv, "kvmfr-agent: %(levelname)s %(message)s",
                                     verbose=logging.INFO)
    from kvmfr_client.core import errors

    from .agent import AgentError, AgentOptions, ShmPathError, run_agent
    opts = AgentOptions.from_config(cfg)
    try:
        _find_device(opts, cfg["agent:display"])
        return run_agent(opts)
    except ShmPathError as exc:
        return _fail(exc, exits.SHM)
    except AgentError as exc:
        return _fail(exc, exits.FAILED)
    except errors.KvmfrError as exc:   # the producer refused the file (its words; the values to the debug log)
        log.debug("producer: %r (field %s, value %s, limit %s)", exc, exc.field, exc.value, exc.limit)
        return _fail(exc, exits.SHM)


def _find_device(opts, display: int) -> None:
    """``--device auto`` or a PCI address -> the file that maps that IVSHMEM device (guest_agent/device.py);
    a path stays as it is. Raises ShmPathError with the device's one line."""
    from kvmfr_client.core.session import recommended_shm_size_for

    from .agent import ShmPathError
    from .device import DeviceError, resolve_display
    # x11's size is the X screen's, known once it is open: the producer checks the memory then
    need = 0 if opts.source == "x11" else recommended_shm_size_for(opts.width, opts.height, opts.ftype)
    try:
        path = resolve_display(opts.shm, display, need, f"{opts.width}x{opts.height}")
    except DeviceError as exc:
        raise ShmPathError(str(exc)) from None
    if path != opts.shm:
        log.info("display %d: writing into %s (from --device %s)", display, path, opts.shm)
        opts.shm = path


def _fail(exc: Exception, status: int) -> int:
    print(f"kvmfr-agent: {exc}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
