"""Exit statuses shared by every program, and the clean stop on Ctrl+C (SIGINT) and SIGTERM.

Documented in README.md ("Exit statuses") and docs/viewer.md; every program uses these names, so one
number means one thing everywhere:

    OK        0  done; or a program that runs until stopped (window, agent, kvmfr-audio) was stopped
    FAILED    1  it ran, but the job was not done (frames fell short, no display, the server refused)
    USAGE     2  a bad command line, option value or configuration file (one line says which)
    SHM       3  the shared-memory file cannot be used (a directory, a FIFO, a device that is not kvmfr,
                 no permission, cannot be created)
    128 + N      a job cut short by signal N: 130 for SIGINT (Ctrl+C), 143 for SIGTERM
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

OK = 0
FAILED = 1
USAGE = 2
SHM = 3
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_exit(signum: int) -> int:
    """The exit status of a job cut short by ``signum`` (the shell's 128 + N)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while the program was starting or working; ``exit_code`` is 128 + N.

    A KeyboardInterrupt, so ``except Exception`` blocks on the way up do not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return signal_exit(self.signum)


def _raise_stopped(signum, _frame) -> None:
    raise Stopped(signum)


def raise_on_stop_signals() -> None:
    """From now on SIGINT and SIGTERM raise :class:`Stopped` in the main thread (SIGTERM would otherwise
    kill the process without its clean-up; SIGINT would print a KeyboardInterrupt traceback)."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, _raise_stopped)


@contextmanager
def on_stop_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM call ``handler(signum)`` (which asks the loop to end) instead
    of raising; the previous handlers come back afterwards. Python runs it on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, lambda signum, _frame: handler(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def interruptible(call: Callable[[], T], name: str) -> T:
    """``call()``, run on a daemon thread named ``name`` while this (main) thread waits for it.

    For a blocking C call that no signal interrupts (libpulse's connect waits on a condition variable, for
    ever when the sound server is stopped): Python runs signal handlers only on the main thread, between
    bytecodes, so here a Ctrl+C or SIGTERM raises :class:`Stopped` out of the wait at once (with
    :func:`raise_on_stop_signals`), and the process may end while the call is still stuck. Its result is
    returned, its exception raised here."""
    if threading.current_thread() is not threading.main_thread():
        return call()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:   # handed to the waiting thread, which raises it
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.25)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
