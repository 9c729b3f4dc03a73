"""`kvmfr-agent`: the guest side. Writes frames and cursor into shared memory in the Looking Glass B7
wire format (LGMP 6 / KVMFR 20), so our viewer or a real Looking Glass client can show them.

    kvmfr-agent --shm /dev/shm/looking-glass --source testpattern --size 1920x1080 --fps 60
    kvmfr-agent audio ...        (the Scream-compatible audio sender; see docs/audio.md)
"""

from __future__ import annotations

import argparse
import logging
import sys

from kvmfr_client import config

from . import options as _options  # noqa: F401  (declares agent:*)


def build_parser() -> config.flags.Parser:
    """``--shm --source --size --fps --format --frames --no-cursor --always`` are spellings of ``agent:*``
    options (kvmfr_client.config.flags; declared in guest_agent/options.py)."""
    p = config.build_parser("kvmfr-agent", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "audio":
        from guest_agent.audio.cli import main as audio_main
        return audio_main(argv[1:])
    parser = build_parser()
    args, cfg = config.start_program(parser, argv, "kvmfr-agent: %(levelname)s %(message)s",
                                     verbose=logging.INFO)
    from .agent import AgentOptions, run_agent
    opts = AgentOptions.from_config(cfg)
    return run_agent(opts)


if __name__ == "__main__":
    sys.exit(main())
