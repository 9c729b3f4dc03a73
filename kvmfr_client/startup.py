"""The first thing every program does: take SIGINT and SIGTERM over, before anything heavy loads.

Standard library only, like everything Python runs to import it (``kvmfr_client/__init__.py`` loads its API
on first use). The console scripts pip writes import the program's entry module (kvmfr_client.cli.view,
kvmfr_client.audio.cli, kvmfr_client.spice.cli, guest_agent.cli), whose top imports only the standard
library, and call its ``main()``; ``main()`` is :func:`run_program`, which calls :func:`_take_stop_signals`
before the program imports the rest (numpy, the native helper, asyncio, cryptography, PulseAudio's binding:
a few tenths of a second). A Ctrl+C or SIGTERM in that window then ends the program at once, as it would a
moment later: the program's own line (or none) and exit status, no traceback, nothing started.

Once ``kvmfr_client.config.exits`` is loaded, :func:`run_program` hands over to its
:func:`~kvmfr_client.config.exits.raise_on_stop_signals` (the :class:`~kvmfr_client.config.exits.Stopped`
exception, which it catches), so both moments end through the same ``stopped`` function of the program. A
library import never takes signals over; only a program's ``main()`` calls this.
"""

from __future__ import annotations

import signal   # and nothing else: this runs before the program has loaded anything

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    # (signal name, exit status 128 + N) -> what the program then exits with, having said what it must
    OnStop = Callable[[str, int], int]


def _take_stop_signals(ended: Callable[[int], int]) -> None:
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


def run_program(run: Callable[[], int], stopped: OnStop) -> int:
    """A program's ``main()``: returns ``run()``'s exit status, or, when SIGINT or SIGTERM stops it (while
    its modules load or later, before it takes the signals over itself), ``stopped(name, 128 + N)``'s.

    ``run`` imports what the program needs; ``stopped`` prints the program's one line, or nothing, and
    returns the status (a job: the 128 + N given; a program that runs until stopped: 0). ``stopped`` must
    itself load nothing heavy, since it may run before anything has loaded."""
    _take_stop_signals(lambda signum: stopped(signal.Signals(signum).name, 128 + signum))
    # Only now, with the signals taken: importing the configuration package is the first heavy step.
    from kvmfr_client.config import exits
    exits.raise_on_stop_signals()   # from here, the shared clean stop (exits.Stopped)
    try:
        return run()
    except exits.Stopped as exc:
        return stopped(exc.args[0], exc.exit_code)


# glibc's memcpy writes blocks at least this big with non-temporal (streaming) stores: x86-64 only, read by the
# dynamic loader at start (docs/viewer.md, "Frame loop costs").
STREAMING_COPIES = "glibc.cpu.x86_non_temporal_threshold=0x40000"


def stream_large_copies(program: str) -> None:
    """Run the program again (exec, same process id) with ``GLIBC_TUNABLES`` set to :data:`STREAMING_COPIES`,
    so that every copy of 256 KiB or more bypasses the caches; ``program``: the console script's name
    (kvmfr-view), to tell the program's own start from an embedding one.

    Why: glibc's threshold for streaming stores is 240 MiB on the 2-core machines, so each copy of a frame (ours
    out of shared memory, llvmpipe's texture upload, its blit into the window: 8 MiB each at 1080p) went through
    the caches, evicting everything the threads run next (the interpreter among it) and reading each
    destination line before writing it. Streaming, the viewer measured ~0.6 CPU-ms less a 1080p frame.

    Nothing happens when the program was not started as itself (``python -m kvmfr_client.cli.view`` or the
    console script), off x86-64 glibc, when ``GLIBC_TUNABLES`` already sets that threshold (the user's choice,
    or the run after the exec), or when the exec fails."""
    import os
    import sys
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    started_as = spec.name if spec is not None else os.path.basename(sys.argv[0] if sys.argv else "")
    if started_as not in (program, "kvmfr_client.cli.view"):
        return
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    argv = getattr(sys, "orig_argv", None)
    if (not libc.startswith("glibc") or os.uname().machine != "x86_64" or "x86_non_temporal_threshold" in tunables
            or not argv or not sys.executable):
        return
    env = dict(os.environ, GLIBC_TUNABLES=f"{tunables}:{STREAMING_COPIES}" if tunables else STREAMING_COPIES)
    try:
        os.execve(sys.executable, argv, env)
    except OSError:
        return

