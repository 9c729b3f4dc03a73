"""Fixtures for the audio tests: a private PulseAudio daemon (see tests/support/pulse.py) for the session."""

from __future__ import annotations

import pytest

from kvmfr_client.audio.priority import freeze_startup_objects
from tests.support.pulse import running_pulse


@pytest.fixture(scope="session")
def pulse():
    # The audio threads of these tests share pytest's process and GIL; a full garbage collection over
    # pytest's objects would stall them for tens of ms (see priority.freeze_startup_objects).
    freeze_startup_objects()
    with running_pulse(high_priority=True) as daemon:
        yield daemon
