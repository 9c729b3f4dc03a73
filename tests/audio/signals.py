"""Test signals, a real-time paced sender, and the measurements the tests assert on."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kvmfr_client.audio.priority import raise_thread_priority

# One tone per channel, none a harmonic of another within the analysis resolution.
CHANNEL_TONES = (440.0, 620.0, 830.0, 1010.0, 1270.0, 1530.0, 1790.0, 2090.0)


MARKER_SECONDS = 0.04


def tones(rate: int, seconds: float, freqs, amplitude: float = 0.4, fade: float = 0.01,
          marker: bool = True) -> np.ndarray:
    """(frames, len(freqs)) float32 with short fades so edges do not click, after a 40 ms noise burst
    (``marker``) that makes the time alignment unambiguous, which a pure tone is not."""
    if marker:
        head = noise_burst(rate, MARKER_SECONDS, len(freqs), seed=7)
        return np.concatenate([head, tones(rate, seconds, freqs, amplitude, fade, marker=False)])
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = np.stack([amplitude * np.sin(2 * np.pi * f * t + 0.3 * i) for i, f in enumerate(freqs)], axis=1)
    ramp = min(int(rate * fade), n // 2)
    if ramp:
        env = np.ones(n)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        out *= env[:, None]
    return out.astype(np.float32)


def noise_burst(rate: int, seconds: float, channels: int, seed: int = 1, amplitude: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amplitude * rng.uniform(-1, 1, size=(int(rate * seconds), channels))).astype(np.float32)


@dataclass
class PacedSender:
    """Calls ``send(bytes)`` with ``chunk_bytes`` of ``pcm`` at the real-time rate, in its own thread.

    ``send_times[i]`` is when chunk i left; ``rate_scale`` > 1 sends faster than real time (a fast
    guest clock); ``hook(i, chunk)`` may return False to drop chunk i (packet loss) or a list of raw
    items to hand to ``send_extra`` after it (bad or reordered packets).
    """

    send: Callable[[bytes], object]
    pcm: bytes
    chunk_bytes: int
    chunk_seconds: float
    rate_scale: float = 1.0
    hook: Callable[[int, bytes], object] | None = None
    send_extra: Callable[[bytes], object] | None = None
    send_times: list = field(default_factory=list)

    def __post_init__(self):
        self._thread = threading.Thread(target=self._run, name="test-sender", daemon=True)

    def start(self) -> "PacedSender":
        self._thread.start()
        return self

    def join(self, timeout: float = 60) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        # The guest's sender runs on another machine; here it shares ours, so give it the same
        # priority as the audio threads it feeds (best effort).
        raise_thread_priority()
        t0 = time.monotonic()
        period = self.chunk_seconds / self.rate_scale
        for i, start in enumerate(range(0, len(self.pcm) - self.chunk_bytes + 1, self.chunk_bytes)):
            due = t0 + i * period
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            chunk = self.pcm[start:start + self.chunk_bytes]
            extra = self.hook(i, chunk) if self.hook else None
            self.send_times.append(time.monotonic())
            if extra is False:
                continue
            self.send(chunk)
            for item in extra or ():
                (self.send_extra or self.send)(item)


def align(recorded: np.ndarray, reference: np.ndarray) -> int:
    """Index in ``recorded`` where ``reference`` starts (FFT cross-correlation, 1-D signals)."""
    n = len(recorded) + len(reference)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(reference, size)), size)
    lag = int(np.argmax(corr[:len(recorded)]))
    return lag


def snr_db(recorded: np.ndarray, reference: np.ndarray) -> float:
    """SNR of ``recorded`` against ``reference`` (same length) after the best gain."""
    ref = reference.astype(np.float64)
    rec = recorded.astype(np.float64)
    gain = np.dot(rec, ref) / max(np.dot(ref, ref), 1e-20)
    err = rec - gain * ref
    return float(10 * np.log10(np.dot(ref, ref) * gain * gain / max(np.dot(err, err), 1e-20)))


def dominant_freq(x: np.ndarray, rate: int) -> float:
    x = x.astype(np.float64) * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x))
    k = int(np.argmax(spec[1:])) + 1
    if 1 <= k < len(spec) - 1:
        a, b, c = np.log(spec[k - 1] + 1e-30), np.log(spec[k] + 1e-30), np.log(spec[k + 1] + 1e-30)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return float(k * rate / len(x))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0
