"""The first thing every program does: take SIGINT and SIGTERM over, before anything heavy loads.

Standard library only, like everything Python runs to import it (``kvmfr_client/__init__.py`` loads its API
on first use). The console scripts pip writes import the program's entry module (kvmfr_client.cli.view,
kvmfr_client.audio.cli, kvmfr_client.spice.cli, guest_agent.cli), whose top imports only the standard
library, and call its ``main()``; ``main()`` calls :func:`take_stop_signals` before it imports the rest
(numpy, the native helper, asyncio, cryptography, PulseAudio's binding: a few tenths of a second). A Ctrl+C
or SIGTERM in that window then ends the program at once, as it would a moment later: the program's own
line (or none) and exit status, no traceback, nothing started.

Once loaded, ``main()`` hands over to :func:`kvmfr_client.config.exits.raise_on_stop_signals` (the
:class:`~kvmfr_client.config.exits.Stopped` exception, which it catches): this module covers only the
loading. A library import never takes signals over; only a program's ``main()`` calls this.
"""

from __future__ import annotations

import signal   # and nothing else: this runs before the program has loaded anything

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable


def take_stop_signals(ended: Callable[[int], int]) -> None:
    """Until the program installs its own handlers, SIGINT and SIGTERM end it: ``ended(signum)`` prints
    what the program says when stopped (one line on stderr, or nothing) and returns its exit status, which
    is raised as SystemExit: it passes through the import machinery and prints no traceback.

    Only the main thread may set handlers; elsewhere (a test calling ``main()`` from a thread) this does
    nothing."""
    def stopped_while_loading(signum, _frame) -> None:
        raise SystemExit(ended(signum))

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, stopped_while_loading)
        except ValueError:   # not the main thread
            return
