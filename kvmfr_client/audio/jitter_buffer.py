"""The jitter buffer between an audio source's thread and the player's thread.

Sources push decoded frames as they arrive, in bursts or late; the player pops them at the sound card's
pace. The buffer keeps each chunk's format, so a format change mid-stream reaches the player at exactly
the frame where it happened, and it caps its size so a stalled player cannot make latency grow forever.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from kvmfr_client.audio.formats import PcmFormat


@dataclass
class Chunk:
    fmt: PcmFormat
    frames: np.ndarray  # float32, shape (n, channels)
    arrived: float  # time.monotonic() when the source received it


class JitterBuffer:
    """Thread-safe FIFO of :class:`Chunk`; one or more producers, one consumer."""

    def __init__(self, max_seconds: float = 0.5):
        self._chunks: deque[Chunk] = deque()
        self._seconds = 0.0
        self._max_seconds = max_seconds
        self._cond = threading.Condition()
        self.overflow_frames = 0  # dropped because the buffer was full
        self.discarded_frames = 0  # dropped by the player to catch up

    def push(self, fmt: PcmFormat, frames: np.ndarray, arrived: float | None = None) -> None:
        self.push_many(fmt, [(frames, time.monotonic() if arrived is None else arrived)])

    def push_many(self, fmt: PcmFormat, chunks: list[tuple[np.ndarray, float]]) -> None:
        """Push several (frames, arrived) chunks of one format under one lock, with one wake-up."""
        with self._cond:
            for frames, arrived in chunks:
                if len(frames) == 0:
                    continue
                self._chunks.append(Chunk(fmt, frames, arrived))
                self._seconds += len(frames) / fmt.rate
            while self._seconds > self._max_seconds and len(self._chunks) > 1:
                old = self._chunks.popleft()
                self._seconds -= len(old.frames) / old.fmt.rate
                self.overflow_frames += len(old.frames)
            self._cond.notify()

    def pop(self, timeout: float) -> Chunk | None:
        """The oldest chunk, waiting up to ``timeout`` seconds for one; None when none came."""
        with self._cond:
            if not self._chunks:
                if timeout <= 0:
                    return None
                self._cond.wait(timeout)
                if not self._chunks:
                    return None
            chunk = self._chunks.popleft()
            self._seconds -= len(chunk.frames) / chunk.fmt.rate
            if not self._chunks:
                self._seconds = 0.0  # no float residue accumulates over hours
            return chunk

    def level(self) -> float:
        """Seconds of audio waiting."""
        with self._cond:
            return max(0.0, self._seconds)

    def discard(self, seconds: float) -> float:
        """Drop up to ``seconds`` of the oldest audio (whole chunks); returns what was dropped."""
        dropped = 0.0
        with self._cond:
            while self._chunks and dropped + len(self._chunks[0].frames) / self._chunks[0].fmt.rate <= seconds:
                old = self._chunks.popleft()
                d = len(old.frames) / old.fmt.rate
                dropped += d
                self._seconds -= d
                self.discarded_frames += len(old.frames)
        return dropped

    def clear(self) -> None:
        with self._cond:
            self._chunks.clear()
            self._seconds = 0.0

    def wake(self) -> None:
        """Wake a waiting :meth:`pop` (used at shutdown)."""
        with self._cond:
            self._cond.notify_all()
