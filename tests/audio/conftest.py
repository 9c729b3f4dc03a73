"""Fixtures for the audio tests: a private PulseAudio daemon (see pulse_daemon.py) for the session."""

from __future__ import annotations

import pytest

from tests.audio.pulse_daemon import PulseStartError, start_pulse, stop_pulse


@pytest.fixture(scope="session")
def pulse():
    try:
        daemon = start_pulse(high_priority=True)
    except PulseStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield daemon
    finally:
        stop_pulse(daemon)
