"""Clock-drift handling: a controller that picks a resampling ratio and a resampler that applies it.

The guest's sound card and the host's sink run on different crystals. Played as-is, the difference
(typically 10-100 ppm) makes the buffer grow or drain by a few ms a minute. The controller watches the
total queued audio (jitter buffer + Pulse) and nudges the playback ratio by at most a fraction of a
percent, far below what an ear hears as pitch, so the queue stays at the target for hours.
"""

from __future__ import annotations

import numpy as np

from kvmfr_client.core.native import ffi, lib


class DriftController:
    """PI controller: queued seconds -> ratio (input frames consumed per output frame).

    The first ``warmup`` seconds after a (re)start only smooth the measurement. Then the proportional
    term steers the queue back to ``target`` and the integral learns the clock ratio, which it keeps;
    the two together settle the queue on the target itself (gains: critically damped, ki = kp^2 / 4, a
    time constant of 2 / kp, about 7 s), not at the edge of a tolerance band, so none of the cushion is
    given away. With 20 s (kp 0.1) a clock ratio of 250 ppm, which the development VM's null sink shows
    against the sender's clock, took minutes to learn, and until then the proportional term alone held
    the queue 2.5 ms (250 ppm / kp) below the target: in 30 s benchmark runs the queue never settled.
    """

    MAX_CORRECTION = 0.002  # +-2000 ppm, about 3.5 cents of pitch at the extreme
    INTEGRATE_BAND = 0.010  # errors up to this are drift to learn; larger ones are transients

    # Real clock drift is 10-100 ppm, i.e. well under 0.1 ms per second: nothing needs correcting in
    # the first seconds. Packet jitter is smoothed away (a 1.2 s average at 167 packets/s) before it
    # reaches the ratio: +-0.3 ms of it moves the pitch by 90 ppm, 0.15 cents.
    def __init__(self, target: float, kp: float = 0.3, ki: float = 0.0225, smoothing: float = 0.005,
                 warmup: float = 2.0):
        self.target = target
        self.kp = kp
        self.ki = ki
        self.warmup = warmup
        self._alpha = smoothing
        self.reset()

    def reset(self) -> None:
        """A new stream: forget everything, the learned clock ratio included."""
        self._integral = 0.0
        self.restart()

    def restart(self) -> None:
        """The same clocks after a jump of the queue (an underrun, a catch-up): measure afresh but keep
        the learned clock ratio."""
        self.smoothed: float | None = None
        self._elapsed = 0.0
        self.settled = False
        self.ratio = 1.0 + self._integral

    # The measurement is smoothed towards its running median, not its mean: a packet that comes late
    # finds little ahead of it, and those few low values pulled the mean down, so holding the mean on
    # the target held the typical packet's latency 0.5-1 ms above it (benchmarks/audio.py). Each packet
    # moves the estimate a fixed step towards its value: 0.02 ms, i.e. up to 3 ms/s, far faster than
    # any clock drift, and a ripple of a few steps.
    MEDIAN_STEP = 0.00002

    def update(self, queued: float, dt: float) -> float:
        """Feed one measurement of queued seconds taken ``dt`` seconds after the previous one."""
        if self.smoothed is None:
            self.smoothed = queued
        elif not self.settled:
            # Warm-up: the mean, to come close quickly from wherever the stream started.
            self.smoothed += self._alpha * (queued - self.smoothed)
        else:
            self.smoothed += self.MEDIAN_STEP if queued > self.smoothed else -self.MEDIAN_STEP
        self._elapsed += dt
        if not self.settled:
            self.settled = self._elapsed >= self.warmup
            return self.ratio
        error = self.smoothed - self.target  # seconds too much audio queued
        limit = self.MAX_CORRECTION
        # Only a small, lasting error is drift; a large one is a transient (a burst, a stall) that the
        # proportional term and the player's catch-up handle. Learning from it would wind the integral
        # up and leave the queue off target for minutes afterwards.
        if abs(error) <= self.INTEGRATE_BAND:
            self._integral = min(max(self._integral + self.ki * error * dt, -limit), limit)
        self.ratio = 1.0 + min(max(self.kp * error + self._integral, -limit), limit)
        return self.ratio


class DriftResampler:
    """Streaming cubic (Catmull-Rom) resampler for ratios close to 1, continuous across calls.

    The per-sample loop is the native helper's (``native/resample.c``): in numpy it took ~20 array
    operations a packet, the largest share of the player's CPU."""

    def __init__(self, channels: int):
        self.channels = channels
        self._state = ffi.new("struct kv_resampler *")
        if lib.kv_resampler_init(self._state, channels) != 0:
            raise ValueError(f"the resampler takes 1..{lib.KV_RESAMPLE_MAX_CHANNELS} channels, not {channels}")

    @property
    def native_state(self):
        """The ``struct kv_resampler *`` behind this resampler, for native code that resamples the same
        stream (native/scream_pump.c): both continue one filter history."""
        return self._state

    def process(self, frames: np.ndarray, ratio: float, gain: float = 1.0) -> np.ndarray:
        """float32 (n, channels) in, resampled at ``ratio`` (input frames per output frame) and scaled by
        ``gain`` out."""
        x = np.ascontiguousarray(frames, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"expected frames of {self.channels} channels, got shape {x.shape}")
        cap = lib.kv_resample_bound(self._state, len(x), ratio)
        out = np.empty((cap, self.channels), dtype=np.float32)
        count = lib.kv_resample(self._state, ffi.from_buffer("float[]", x), len(x), ratio, gain,
                                ffi.from_buffer("float[]", out), cap)
        if count == 0xFFFFFFFF:
            raise ValueError(f"resampling ratio {ratio} is outside 0.5..2")
        return out[:count]
