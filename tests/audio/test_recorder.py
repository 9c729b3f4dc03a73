"""The tests' recorder of a sink (tests/support/pulse.py, Recorder) places each frame by the sound server's
own timing, not by when this process got to read it: the latency figures of the other audio tests and of
benchmarks/audio.py stand on it."""

from __future__ import annotations

import sys
import time

import numpy as np

RATE = 48000
HOG_S = 0.3


def test_timeline_holds_while_the_recorders_process_is_stalled(pulse):
    with pulse.recorder(pulse.sink48, channels=2) as rec:
        time.sleep(1.0)
        # Hold the interpreter lock for HOG_S: libpulse's thread cannot hand this process the audio
        # (its callbacks need the lock), as a busy or descheduled recorder would not read it.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(5.0)
        try:
            end = time.monotonic() + HOG_S
            while time.monotonic() < end:
                pass
        finally:
            sys.setswitchinterval(interval)
        time.sleep(1.0)
    frames, arrived = np.array(rec.arrivals).T
    readable = arrived - frames / RATE   # when each chunk reached this process, less its place in the stream
    assert readable.max() - readable.min() > 0.8 * HOG_S, "the stall did not hold the recording back"
    probe = np.arange(0, int(frames[-1]) - RATE // 2, RATE // 20)
    mixed = np.array([rec.time_of_frame(int(f)) for f in probe]) - probe / RATE
    # An idle null sink's clock runs at this machine's (within ~30 ppm): one line, the stall not in it.
    spread_ms = (mixed.max() - mixed.min()) * 1000
    assert spread_ms < 0.5, f"the timeline moved by {spread_ms:.2f} ms: {np.round((mixed - mixed[0]) * 1000, 2)}"
    # The sink mixes in 5 ms blocks and the monitor can be read from then on: a frame is mixed, on
    # average, half a block after the earliest moment the block was readable here; never before it.
    earliest = readable.min()
    ahead_ms = (np.median(mixed) - earliest) * 1000
    print(f"\nchunks held back up to {(readable.max() - earliest) * 1000:.0f} ms; the timeline within "
          f"{spread_ms:.2f} ms; mixing {ahead_ms:.2f} ms after the earliest readable moment")
    assert 0.5 < ahead_ms < 4.5, f"mixing placed {ahead_ms:.2f} ms after the earliest readable moment"
