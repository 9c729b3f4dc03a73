"""config.exits: the shared clean stop. ``interruptible`` waits for a call that no signal interrupts (libpulse's
connect) so that Ctrl+C and SIGTERM still end the program at once."""

from __future__ import annotations

import os
import threading
import time

import pytest

from kvmfr_client.config import exits


def test_interruptible_passes_the_result_and_the_error_on():
    assert exits.interruptible(lambda: 42, "answer") == 42
    with pytest.raises(ZeroDivisionError):
        exits.interruptible(lambda: 1 / 0, "divide")


@pytest.mark.parametrize("sig", exits.STOP_SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_ends_the_wait_for_a_stuck_call(sig, signals_kept):
    exits.raise_on_stop_signals()
    stuck = threading.Event()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), sig))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(exits.Stopped) as stopped:
            exits.interruptible(stuck.wait, "stuck")
    finally:
        stuck.set()
        timer.join()
    assert stopped.value.exit_code == 128 + sig
    assert time.monotonic() - t0 < 2.0
