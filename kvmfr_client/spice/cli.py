"""kvmfr-input: send keys and mouse input to a VM through QEMU's SPICE server, for scripts.

Exit status: 0 when the server accepted the link and handled every input; 1 when it could not be
reached, refused the link or the password, or went away; 2 for a command line that cannot be used.
"""

from __future__ import annotations

# Next to nothing here, not even most of the standard library: main() takes SIGINT and SIGTERM over
# (kvmfr_client.startup) before the rest loads (asyncio, cryptography, the SPICE client: a few tenths of a
# second).
import sys

from kvmfr_client.startup import run_program

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kvmfr_client import config

    from .link import Address


def build_parser() -> config.flags.Parser:
    """``--spice`` and ``--password-file`` are spellings of spice:host/spice:port and spice:passwordFile
    (kvmfr_client.config.flags); without them the configured ones are used (INI files, -C)."""
    import argparse

    from kvmfr_client import config
    from kvmfr_client.config.flags import checked
    from kvmfr_client.config.registry import number

    from .actions import USAGE
    parser = config.build_parser(
        "kvmfr-input", description="Send keyboard and mouse input to a VM over SPICE.",
        epilog=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter, items=False)
    # Each range is declared here, once; a value outside it is one line naming the flag, exit status 2.
    parser.add_argument("--delay", type=checked(number(float, 0, 3600, "seconds")), default=0.0, metavar="SECONDS",
                        help="pause after each command, 0..3600 (default 0)")
    parser.add_argument("--key-delay", type=checked(number(float, 0, 10, "seconds")), default=0.01,
                        metavar="SECONDS",
                        help="pause after each key or button event, 0..10 (default 0.01): a PS/2 keyboard"
                             " drops keys sent faster than the guest reads them")
    parser.add_argument("--timeout", type=checked(number(float, 0.1, 3600, "seconds")), default=5.0,
                        metavar="SECONDS", help="give up connecting after this long, 0.1..3600 (default 5)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the SPICE conversation")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="commands, see below")
    return parser


async def run(address: Address, password: str | None, actions, delay: float, timeout: float,
              key_delay: float = 0.0) -> None:
    from . import protocol as P
    from .actions import needs_absolute, play
    from .client import SpiceClient
    from .errors import SpiceError
    mode = P.MouseMode.CLIENT if needs_absolute(actions) else P.MouseMode.SERVER
    client = SpiceClient(address, password, mouse_mode=mode)
    await client.connect(timeout)
    try:
        if mode == P.MouseMode.CLIENT:
            if not client.main.supports(P.MouseMode.CLIENT):
                raise SpiceError("`moveto` needs client (absolute) mouse mode, which this VM does not"
                                 " offer: add `-device qemu-xhci -device usb-tablet` or a SPICE agent")
            if not await client.main.wait_mouse_mode(P.MouseMode.CLIENT, timeout):
                raise SpiceError("the server did not switch to client (absolute) mouse mode")
        await play(client, actions, delay, key_delay)
    finally:
        await client.close(flush=True)


def main(argv: list[str] | None = None) -> int:
    """The program; returns its exit status. Its first action is to take SIGINT and SIGTERM over, so Ctrl+C
    or SIGTERM at any point, even while its modules load, ends it with 130 / 143 and one line (the
    connection, if any, is closed on the way out)."""
    return run_program(lambda: _main(argv), _stopped)


def _stopped(name: str, status: int) -> int:
    print(f"kvmfr-input: stopped by {name} before every command was sent", file=sys.stderr)
    return status


def _main(argv: list[str] | None) -> int:
    import asyncio

    from kvmfr_client import config

    from .actions import USAGE, ActionError, parse
    from .client import spice_password
    from .errors import SpiceError
    from .link import Address
    parser = build_parser()
    args, cfg = config.start_program(parser, argv, "kvmfr-input: %(name)s: %(message)s")
    try:
        actions = parse(args.command)
    except (ValueError, ActionError) as exc:
        print(f"kvmfr-input: {exc}", file=sys.stderr)
        return 2
    if not actions:
        print(f"kvmfr-input: no commands given\n{USAGE}", file=sys.stderr)
        return 2
    address = Address(cfg["spice:host"], cfg["spice:port"])
    try:
        password = spice_password(cfg)
    except SpiceError as exc:
        print(f"kvmfr-input: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(run(address, password, actions, args.delay, args.timeout, args.key_delay))
    except SpiceError as exc:
        print(f"kvmfr-input: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
