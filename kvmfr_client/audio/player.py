"""The player: jitter buffer -> drift resampler -> PulseAudio (or PipeWire's Pulse server).

One thread, named ``audio-player``, waits on the jitter buffer and writes each chunk at once to a
non-blocking Pulse stream that starts with ``target`` of silence queued; that queue in the sound server
is where packet jitter is absorbed. After every write the player measures what is queued (Pulse's
reported latency + anything still in the jitter buffer) and

* feeds the drift controller, which nudges the resampling ratio so the queue stays on target;
* drops the oldest buffered audio when a burst pushed the queue past ``max_latency`` (catch-up);
* counts an underrun when Pulse reported an underflow and the next packet came soon after (a long
  silence is the guest pausing, not an underrun). Recovery: the target is raised by 5 ms (up to
  ``max_latency / 2``) and the queue padded to it, so a machine that cannot hold the configured
  latency settles at one it can hold; after a minute without underruns the target steps back.

A format change reopens the stream at the exact chunk where it happened; a lost sound server is retried
every second, so the sources never notice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from kvmfr_client.audio import _pulse
from kvmfr_client.audio.drift import DriftController, DriftResampler
from kvmfr_client.audio.formats import PcmFormat, player_spec
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.priority import raise_thread_priority

log = logging.getLogger(__name__)

# A silence longer than this is the guest pausing (Scream stops sending on silence), not an underrun.
IDLE_GAP = 0.25
# Each underrun raises the target by a step (up to max_latency / 2); each quiet minute lowers it again.
TARGET_STEP = 0.005
TARGET_RELAX_AFTER = 60.0
# The jitter buffer's minimum over this window is latency that absorbs no jitter (see _trim_standing_queue).
STANDING_WINDOW = 1.0


@dataclass
class PlayerStats:
    chunks: int = 0
    frames: int = 0
    underruns: int = 0
    idle_gaps: int = 0
    reopens: int = 0
    format_changes: int = 0
    catchups: int = 0
    server_errors: int = 0
    ratio: float = 1.0
    queued: float = 0.0  # seconds queued right after the last write (jitter buffer + Pulse)
    target: float = 0.0  # the target in force (raised after underruns, relaxed after quiet minutes)
    # (monotonic time, queued s, jitter-buffer s, ratio, underruns) after each write, last ~10 minutes.
    history: deque = field(default_factory=lambda: deque(maxlen=120_000))


class Player:
    """Plays what sources push into :attr:`buffer`. ``start()``/``stop()`` run its thread."""

    def __init__(self, *, latency_ms: float = 20, max_latency_ms: float = 100, sink: str | None = None,
                 server: str | None = None, stream_name: str = "guest audio", record_history: bool = False):
        self.base_target = self.target = latency_ms / 1000.0
        self.max_latency = max(max_latency_ms / 1000.0, 2 * self.target)
        self._last_raise = 0.0
        self.sink = sink
        self.server = server
        self.stream_name = stream_name
        self.buffer = JitterBuffer(max_seconds=max(0.5, 2 * self.max_latency))
        # Clock drift is the controller's job and stays far below this; only bursts reach it.
        self.standing_limit = max(0.010, self.target / 2)
        self.standing_keep = 0.001
        self._window_start = time.monotonic()
        self._window_min = float("inf")
        self.stats = PlayerStats()
        self._record_history = record_history
        self._gain = 1.0
        self._muted = False
        self._stream: _pulse.PlaybackStream | None = None
        self._underflows_seen = 0
        self._fmt: PcmFormat | None = None
        self._resampler: DriftResampler | None = None
        self._controller = DriftController(self.target)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_write: float | None = None

    # --- control ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audio-player", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.buffer.wake()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._close()

    def set_volume(self, gain: float) -> None:
        """Software gain, 0..1 (SPICE volume messages end up here)."""
        self._gain = min(max(gain, 0.0), 1.0)

    def set_mute(self, muted: bool) -> None:
        self._muted = muted

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        raise_thread_priority()
        while not self._stop.is_set():
            chunk = self.buffer.pop(timeout=0.1)
            if chunk is None:
                continue
            try:
                self._play(chunk.fmt, chunk.frames)
            except _pulse.PulseError as exc:
                self.stats.server_errors += 1
                log.warning("sound server: %s; retrying in 1 s", exc)
                self._close()
                self._stop.wait(1.0)

    def _raise_target(self, now: float) -> None:
        """After an underrun, queue more: the machine has shown it cannot hold the current target."""
        ceiling = max(self.base_target, self.max_latency / 2)
        if self.target < ceiling:
            self.target = min(ceiling, self.target + TARGET_STEP)
            self._controller.target = self.target
            log.info("audio target latency raised to %.0f ms after an underrun", self.target * 1000)
        self._last_raise = now

    def _relax_target(self, now: float) -> None:
        """A minute without underruns: step back towards the configured target."""
        if self.target > self.base_target and now - self._last_raise > TARGET_RELAX_AFTER:
            self.target = max(self.base_target, self.target - TARGET_STEP)
            self._controller.target = self.target
            self._last_raise = now
            log.info("audio target latency back to %.0f ms", self.target * 1000)

    def _wait_for_room(self, seconds: float) -> float:
        """Hold a chunk until Pulse's queue has room for it within the target; a burst then waits in
        the jitter buffer, where it can be trimmed, instead of in the server, where it cannot.
        Returns what is queued in Pulse when the chunk may go."""
        latency = self._latency()
        wait = latency + seconds - self.target
        if wait > 0:
            # In steady state a chunk waits at most its own length. Pulse's interpolated latency can
            # read high for a moment (after an underflow, around timing updates); trusting it for
            # longer would let the real queue run dry while we sleep.
            self._stop.wait(min(wait, seconds + 0.005))
            latency = self._latency()
        return latency

    def _trim_standing_queue(self, now: float) -> None:
        """A jitter buffer that never empties for a whole window only adds latency (packets came in
        a burst after a stall); drop what stood, once per window."""
        level = self.buffer.level()
        self._window_min = min(self._window_min, level)
        if now - self._window_start < STANDING_WINDOW:
            return
        if self._window_min > self.standing_limit:
            dropped = self.buffer.discard(self._window_min - self.standing_keep)
            if dropped:
                self.stats.catchups += 1
                log.info("audio catch-up: dropped %.1f ms that stood in the jitter buffer", dropped * 1000)
        self._window_start, self._window_min = now, float("inf")

    def _play(self, fmt: PcmFormat, frames: np.ndarray) -> None:
        now = time.monotonic()
        if self._stream is None or fmt != self._fmt:
            self._open(fmt, len(frames))
        elif self._stream.underflows != self._underflows_seen:
            # Pulse played out everything we had queued. A short gap is an underrun (audible); a long
            # one is the guest pausing (Scream stops sending on silence), which is normal.
            self._underflows_seen = self._stream.underflows
            gap = now - (self._last_write or now)
            if gap < IDLE_GAP:
                self.stats.underruns += 1
                log.info("audio underrun: the sound server ran out of queued audio (%.1f ms between packets)",
                         gap * 1000)
                self._raise_target(now)
                # The sink is silent anyway: pad to the new target so the next stall finds a cushion.
                pad = int((self.target - self._latency() - len(frames) / fmt.rate) * fmt.rate)
                if pad > 0:
                    self._write(np.zeros((pad, fmt.channels), dtype=np.float32))
            else:
                self.stats.idle_gaps += 1
            self._controller.reset()
        self._relax_target(now)
        gain = 0.0 if self._muted else self._gain
        if gain != 1.0:
            frames = frames * np.float32(gain)
        out = self._resampler.process(frames, self._controller.ratio)
        duration = len(out) / fmt.rate
        before = self._wait_for_room(duration)
        self._trim_standing_queue(time.monotonic())
        self._write(out)
        after = time.monotonic()
        # One latency query per packet: what was queued before plus what we just wrote.
        in_pulse = before + duration
        queued_jb = self.buffer.level()
        queued = in_pulse + queued_jb
        dt = after - self._last_write if self._last_write is not None else 0.0
        self._last_write = after
        ratio = self._controller.update(queued, dt)
        if queued > self.max_latency:
            dropped = self.buffer.discard(queued - self.target)
            if dropped:
                self.stats.catchups += 1
                log.info("audio catch-up: dropped %.1f ms to get back to %.0f ms", dropped * 1000, self.target * 1000)
        st = self.stats
        st.chunks += 1
        st.frames += len(frames)
        st.ratio = ratio
        st.queued = queued
        st.target = self.target
        if self._record_history:
            st.history.append((after, queued, queued_jb, ratio, st.underruns))

    def _open(self, fmt: PcmFormat, first_frames: int) -> None:
        if self._fmt is not None and fmt != self._fmt:
            self.stats.format_changes += 1
            log.info("audio format changed: %s -> %s", self._fmt.describe(), fmt.describe())
        self._close()
        spec = player_spec(fmt)
        frame = 4 * fmt.channels
        target_frames = max(1, int(self.target * fmt.rate))
        self._stream = _pulse.PlaybackStream(
            spec, server=self.server, device=self.sink, stream_name=self.stream_name,
            tlength=target_frames * frame, prebuf=target_frames * frame,
            maxlength=int(self.max_latency * 2 * fmt.rate) * frame, thread_setup=raise_thread_priority)
        self._fmt = fmt
        self._resampler = DriftResampler(fmt.channels)
        self._controller.reset()
        self._underflows_seen = 0
        self._last_write = None
        # Start with the queue at the target: silence now, so that the first packet and those after
        # it each find a cushion of `target` ahead of them instead of a buffer that is just filling.
        # Packets that arrived while the stream was opening count towards the cushion; too many of
        # them (a slow server) are dropped rather than played late.
        sink_latency = self._sink_latency()
        cushion = self.target - sink_latency - first_frames / fmt.rate - self.buffer.level()
        if cushion < 0:
            self.buffer.discard(-cushion)
        prefill = int(max(0.0, cushion) * fmt.rate)
        self._model_end = time.monotonic()
        if prefill:
            self._write(np.zeros((prefill, fmt.channels), dtype=np.float32))
        log.debug("audio stream open: sink latency %.1f ms, prefill %.1f ms", sink_latency * 1000,
                  prefill / fmt.rate * 1000)
        self.stats.reopens += 1
        log.info("audio playing %s on %s (target %.0f ms, pulse buffer %s)", fmt.describe(),
                 self.sink or "default sink", self.target * 1000, self._stream.buffer_attr())

    def _write(self, frames: np.ndarray) -> None:
        self._stream.write(frames.astype(np.float32, copy=False).tobytes())
        now = time.monotonic()
        self._model_end = max(now, self._model_end) + len(frames) / self._fmt.rate

    def _latency(self) -> float:
        """Seconds queued in Pulse; until the server's first timing update, our own running model."""
        latency = self._stream.latency()
        if latency is None:
            return max(0.0, self._model_end - time.monotonic())
        return latency

    def _sink_latency(self) -> float:
        """The latency of the still-empty stream, i.e. the sink's own; 0 if the server is slow to say."""
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline:
            latency = self._stream.latency()
            if latency is not None:
                return max(0.0, latency)
            time.sleep(0.002)
        return 0.0

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._fmt = None
