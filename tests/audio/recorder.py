"""Records a Pulse source (a null sink's monitor) in a thread, noting when each frame reached the sink."""

from __future__ import annotations

import threading
import time

import numpy as np

from kvmfr_client.audio import pulse
from kvmfr_client.audio.formats import SINK_7_1_POSITIONS


class Recorder:
    BLOCK_SECONDS = 0.005

    def __init__(self, server: str, source: str, rate: int, channels: int = 8):
        self.rate = rate
        self.channels = channels
        spec = pulse.StreamSpec(pulse.SAMPLE_FLOAT32LE, rate, SINK_7_1_POSITIONS[:channels])
        self.block = int(rate * self.BLOCK_SECONDS)
        self._stream = pulse.SimpleStream(spec, record=True, server=server, device=source,
                                           app_name="kvmfr-test", stream_name="test recorder",
                                           fragsize=self.block * 4 * channels)
        self._blocks: list[np.ndarray] = []
        # (index of the block's last frame + 1, monotonic time that frame reached the sink)
        self._marks: list[tuple[int, float]] = []
        self._frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-recorder", daemon=True)

    def __enter__(self) -> "Recorder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        nbytes = self.block * 4 * self.channels
        while not self._stop.is_set():
            data = self._stream.read(nbytes)
            now = time.monotonic()
            try:
                lat = self._stream.latency()
            except pulse.PulseError:
                lat = 0.0
            block = np.frombuffer(data, dtype="<f4").reshape(-1, self.channels)
            self._blocks.append(block)
            self._frames += len(block)
            self._marks.append((self._frames, now - lat))

    def stop(self) -> np.ndarray:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=3)
            self._stream.close()
        return self.audio()

    def audio(self) -> np.ndarray:
        if not self._blocks:
            return np.zeros((0, self.channels), dtype=np.float32)
        return np.concatenate(self._blocks)

    def time_of_frame(self, index: int) -> float:
        """When recorded frame ``index`` reached the sink (monotonic seconds)."""
        marks = np.array(self._marks)
        k = int(np.searchsorted(marks[:, 0], index + 1))
        k = min(k, len(marks) - 1)
        end, t = marks[k]
        # Use the median offset of nearby marks to smooth scheduling noise in any one read.
        lo, hi = max(0, k - 20), min(len(marks), k + 20)
        offsets = marks[lo:hi, 1] - marks[lo:hi, 0] / self.rate
        return float(np.median(offsets) + index / self.rate)
