"""The player: jitter buffer -> drift resampler -> PulseAudio (or PipeWire's Pulse server).

One thread, named ``audio-player``, waits on the jitter buffer and writes each chunk at once to a
non-blocking Pulse stream that starts with ``target`` of silence queued; that queue in the sound server
is where packet jitter is absorbed. For Scream UDP there is no such thread (``driven``): the receive
thread plays, its steady state in C (``native/scream_pump.c``, see ``scream_udp``), and runs this class's
policy on what the pump played each time it returns, at least every ``QUERY_EVERY``.

``target`` is each packet's latency from its arrival on the host to the sink mixing it, which is the
audio queued ahead of it, and so equally the longest hiccup (a late packet, a late thread) that plays
through without a gap. The sink device's own buffer (its period, which the player asks to be
``device_latency``, 2 ms by default) comes on top and is not counted: audio handed to the device no
longer protects against a late packet. After every write the player measures that latency (the time the packet spent with us + what
Pulse reports queued in the stream ahead of it, the device's part excluded) and

* feeds the drift controller, which nudges the resampling ratio so the queue stays on target;
* drops audio that stands in excess: when what was ahead of the packets stayed above the target for a
  whole window (packets that came in a burst after the sink ran dry, or after a stall of the player),
  that excess is skipped from the audio still to come, so latency returns to the target within half a
  second instead of staying high; past ``max_latency`` it is skipped at once;
* counts an underrun when Pulse reported an underflow and the next packet came soon after (a long
  silence is the guest pausing, not an underrun). Recovery: the queue is padded back to the target. A
  second underrun within a minute shows the machine cannot hold the target: it rises by 5 ms (up to
  ``max_latency / 2``), so a machine that cannot hold the configured latency settles at one it can
  hold; after a minute without underruns it steps back.

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

from kvmfr_client.audio import pulse
from kvmfr_client.audio.drift import DriftController, DriftResampler
from kvmfr_client.audio.formats import PcmFormat, player_spec
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.priority import raise_thread_priority
from kvmfr_client.audio.warnings import RateLimitedWarning

log = logging.getLogger(__name__)

# A silence longer than this is the guest pausing (Scream stops sending on silence), not an underrun.
IDLE_GAP = 0.25
# An underrun within a minute of the previous one raises the target by a step (up to max_latency / 2);
# each minute without one lowers it again.
TARGET_STEP = 0.005
TARGET_RELAX_AFTER = 60.0
# What stays ahead of every packet for this long beyond the target + EXCESS_TOLERANCE is skipped
# (see _trim_excess). Packet jitter only ever lowers the level for a moment, so the window's minimum
# is the standing level.
EXCESS_WINDOW = 0.5
EXCESS_TOLERANCE = 0.010
# The stream's queue is asked of the server at most this often; carried forward in between. Asking more
# often adds nothing: between the server's timing updates (every 1.5 s once a stream runs) libpulse's
# answer is its own interpolation, the same straight line as our carried-forward model, and a query costs
# a wake of Python in the Scream UDP pump (native/scream_pump.c returns for it), ~0.3 ms of CPU on the
# development VM. The model's only drift is the sink's clock against ours (~100 ppm: 0.02 ms in 0.2 s).
QUERY_EVERY = 0.2
# How often the sink's own latency is read again (another stream on the sink can change it).
DEVICE_REFRESH = 1.0


@dataclass
class PlayerStats:
    chunks: int = 0
    frames: int = 0
    underruns: int = 0
    idle_gaps: int = 0
    repeated_underflows: int = 0  # a dry spell Pulse reported again right after the refill (not counted)
    reopens: int = 0
    format_changes: int = 0
    catchups: int = 0
    server_errors: int = 0
    ratio: float = 1.0
    queued: float = 0.0  # seconds queued right after the last write (jitter buffer + Pulse, device included)
    ahead: float = 0.0  # the last packet's latency from its arrival to the sink mixing it (device excluded)
    device: float = 0.0  # the sink device's own latency (seconds), on top of `ahead`
    target: float = 0.0  # the target in force (raised after underruns, relaxed after quiet minutes)
    skipped: float = 0.0  # seconds of audio skipped to bring latency back to the target
    # (monotonic time, ms between packets, the last packet's ahead in ms) of each underrun; the last
    # packet may already have come after the stall, so its ahead is not always the level before it.
    underrun_log: deque = field(default_factory=lambda: deque(maxlen=1000))
    # (monotonic time, latency s of the packet, underruns) after each write, last ~10 minutes; kept
    # only while Player.record_history is set.
    history: deque = field(default_factory=lambda: deque(maxlen=120_000))


class Player:
    """Plays what sources push into :attr:`buffer`. ``start()``/``stop()`` run its thread."""

    def __init__(self, *, latency_ms: float = 19, max_latency_ms: float = 100, device_latency_ms: float = 5.0,
                 sink: str | None = None, server: str | None = None, stream_name: str = "guest audio",
                 record_history: bool = False):
        self.base_target = self.target = latency_ms / 1000.0
        self.device_request = device_latency_ms / 1000.0
        self.max_latency = max(max_latency_ms / 1000.0, 2 * self.target)
        self._last_raise = 0.0
        self.sink = sink
        self.server = server
        self.stream_name = stream_name
        self._last_underrun = -TARGET_RELAX_AFTER
        self.buffer = JitterBuffer(max_seconds=max(0.5, 2 * self.max_latency))
        self._window_start = 0.0
        self._window_min = float("inf")
        self._skip = 0.0  # seconds of incoming audio still to skip (see _trim_excess)
        self.stats = PlayerStats()
        self.record_history = record_history
        self._gain = 1.0
        self._muted = False
        self._stream: pulse.PlaybackStream | None = None
        self._underflows_seen = 0
        self._recovered_at = -1.0  # when the queue was last refilled after an underflow (monotonic)
        self._dry_index: int | None = None  # the stream's underflow_index() at that refill
        self._pump_stream: pulse.PlaybackStream | None = None  # the stream a driving pump was last given
        self._fmt: PcmFormat | None = None
        self._device = 0.0  # the sink's configured latency, refreshed every DEVICE_REFRESH seconds
        self._device_checked = 0.0
        self._resampler: DriftResampler | None = None
        self._controller = DriftController(self.target)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.driven = False  # set by a source that calls _play from its own thread
        self.on_stream_opened = None  # such a source's hook: it pushes what arrived during the open
        self.driver_running = None  # and whether its thread runs (for `running`)
        self._last_write: float | None = None
        self._queried: tuple[float, float] | None = None  # (when, seconds in the stream) of the last query
        self._written_since_query = 0.0
        # A flood from the guest's address keeps the queue above max_latency, which would log a
        # catch-up per packet: at most one line per 5 s, with the number of those not logged.
        self._info = RateLimitedWarning(log, level=logging.INFO)

    # --- control ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        if self.driven:  # a source's thread plays (ScreamUdpSource with a player)
            return
        self._thread = threading.Thread(target=self._run, name="audio-player", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.buffer.wake()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.driven and self.running:
            # The source's thread did not end (stopped first, 2 s allowed): it may still be in the stream, whose
            # loop it runs itself without a lock (own_loop), so the stream is left to the process's exit.
            log.warning("audio: the source's thread did not stop; its Pulse stream is left open")
            return
        self._close()

    def set_volume(self, gain: float) -> None:
        """Software gain, 0..1 (SPICE volume messages end up here)."""
        self._gain = min(max(gain, 0.0), 1.0)

    def set_mute(self, muted: bool) -> None:
        self._muted = muted

    def set_latency(self, latency_ms: float) -> None:
        """A new target latency (the viewer's settings panel): the queue drifts or skips to it as to a
        target raised after underruns."""
        self.base_target = self.target = latency_ms / 1000.0
        self.max_latency = max(self.max_latency, 2 * self.target)
        self._controller.target = self.target

    @property
    def running(self) -> bool:
        if self.driven:
            return self.driver_running is not None and self.driver_running()
        return self._thread is not None and self._thread.is_alive()

    # --- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        raise_thread_priority()
        while not self._stop.is_set():
            chunk = self.buffer.pop(timeout=0.1)
            if chunk is None:
                continue
            try:
                self._play(chunk.fmt, chunk.frames, chunk.arrived)
            except pulse.PulseError as exc:
                self.server_failed(exc)
                self._stop.wait(1.0)

    def server_failed(self, exc: pulse.PulseError) -> None:
        """A sound-server call failed: counted and logged, and the stream closed (the next chunk opens a
        new one). The calling thread waits a second before it plays again."""
        self.stats.server_errors += 1
        log.warning("sound server: %s; retrying in 1 s", exc)
        self._close()

    def _underrun(self, now: float, gap: float) -> None:
        self.stats.underruns += 1
        self.stats.underrun_log.append((now, round(gap * 1000, 1), round(self.stats.ahead * 1000, 1)))
        log.info("audio underrun: the sound server ran out of queued audio (%.1f ms between packets, %.1f ms "
                 "was ahead)", gap * 1000, self.stats.ahead * 1000)
        if now - self._last_underrun < TARGET_RELAX_AFTER:
            self._raise_target(now)
        self._last_underrun = now

    def _raise_target(self, now: float) -> None:
        """A second underrun within a minute: the machine has shown it cannot hold the current target."""
        ceiling = max(self.base_target, self.max_latency / 2)
        if self.target < ceiling:
            self.target = min(ceiling, self.target + TARGET_STEP)
            self._controller.target = self.target
            log.info("audio target latency raised to %.0f ms after underruns", self.target * 1000)
        self._last_raise = now

    def _relax_target(self, now: float) -> None:
        """A minute without underruns: step back towards the configured target."""
        if (self.target > self.base_target and now - self._last_raise > TARGET_RELAX_AFTER
                and now - self._last_underrun > TARGET_RELAX_AFTER):
            self.target = max(self.base_target, self.target - TARGET_STEP)
            self._controller.target = self.target
            self._last_raise = now
            log.info("audio target latency back to %.0f ms", self.target * 1000)

    def _restart_window(self, now: float) -> None:
        self._window_start, self._window_min = now, float("inf")

    def _trim_excess(self, now: float, ahead: float) -> None:
        """Latency that stood above the target for a whole window absorbs no jitter: it is packets that
        came in a burst after the sink ran dry, or a backlog after the player itself stalled. Skip it
        from the audio still to come (the jitter buffer first, then incoming chunks), once per window;
        past max_latency at once."""
        self._window_min = min(self._window_min, ahead)
        if ahead > self._catchup_above(now):
            # Within a refill's window the queue is measured by the model carried forward from the
            # refill, which does not see the device's share leave it (see _play): counted here as there.
            recovering = now - self._recovered_at < EXCESS_WINDOW
            excess = ahead - self.target - (self._stream.device_share() if recovering else 0.0)
        elif now - self._window_start >= EXCESS_WINDOW:
            excess = self._window_min - self.target if self._window_min > self.target + EXCESS_TOLERANCE else 0.0
            self._restart_window(now)
        else:
            return
        if excess <= 0 or self._skip > 0:
            return
        dropped = self.buffer.discard(excess)
        self._skip = excess - dropped
        self.stats.catchups += 1
        self.stats.skipped += dropped
        self._info.warn("catch-up", "audio catch-up: skipping %.1f ms to get back to %.0f ms", excess * 1000,
                        self.target * 1000)

    def _same_dry_spell(self) -> bool:
        """A report of the dry spell already handled: one that came within one target of its refill (see
        _play), or at the same write index (the server reports where the stream ran dry). When it came,
        not when it is seen: the Scream UDP pump sees the report count only when it returns to Python, up
        to QUERY_EVERY later, and a report that had come a few ms after the refill counted as a second
        underrun and raised the target."""
        return (self._stream.underflow_at - self._recovered_at < self.target
                or self._stream.underflow_index() == self._dry_index)

    def _catchup_above(self, now: float) -> float:
        """The latency past which the excess is skipped at once: max_latency, and target +
        EXCESS_TOLERANCE for EXCESS_WINDOW after a refill. A guest that stalled sends what it owes back
        to back once it resumes, and the refill (at the first of those packets) counts only those that
        had come: the rest came in on top of the target. The window would have skipped them only after
        two windows (the refill's own packets, with little ahead of them, hold the first one's minimum
        low): a second or more at up to twice the target."""
        if now - self._recovered_at < EXCESS_WINDOW:
            return self.target + EXCESS_TOLERANCE
        return self.max_latency

    def _skip_from(self, frames: np.ndarray, rate: int) -> np.ndarray:
        want = int(round(self._skip * rate))
        n = min(len(frames), want)
        self._skip = (want - n) / rate
        self.stats.skipped += n / rate
        return frames[n:]

    def _play(self, fmt: PcmFormat, frames: np.ndarray, arrived: float) -> None:
        now = time.monotonic()
        if self._stream is None or (fmt is not self._fmt and fmt != self._fmt):  # sources reuse one object
            self._open(fmt, arrived)
        elif self._stream.underflows != self._underflows_seen and self._same_dry_spell():
            # Pulse can report one dry spell twice, the second a few ms after we refilled the queue to
            # the target, which cannot have played out yet: the same underrun. (A slower player used
            # to see both reports at once, as one change of the counter.) A real second dry spell within
            # that window is counted here too, not as an underrun: the window is one target long.
            self._underflows_seen = self._stream.underflows
            self.stats.repeated_underflows += 1
        elif self._stream.underflows != self._underflows_seen:
            # Pulse played out everything we had queued. A short gap is an underrun (audible); a long
            # one is the guest pausing (Scream stops sending on silence), which is normal.
            self._underflows_seen = self._stream.underflows
            self._recovered_at = now
            self._dry_index = self._stream.underflow_index()
            gap = now - (self._last_write or now)
            if gap < IDLE_GAP:
                self._underrun(now, gap)
            else:
                self.stats.idle_gaps += 1
            # The sink is silent anyway: pad back to the target so the next stall finds a cushion.
            # Packets that piled up meanwhile count towards it; an excess of them is skipped. The sink,
            # which rendered silence for us meanwhile, rewinds and renders what we write now in its
            # place: its share (device_share, what it holds on average) leaves the queue at once. Not
            # counted, that left the latency 2-5.5 ms (5 ms device) below the target until the controller,
            # warming up again, could take it back seconds later.
            self._skip = 0.0
            cushion = (self.target + self._stream.device_share() - self._in_stream(fresh=True)
                       - self.buffer.level())
            if cushion > 0:
                self._write(np.zeros((int(cushion * fmt.rate), fmt.channels), dtype=np.float32))
            else:
                self._skip = -cushion
            self._controller.restart()
            self._restart_window(now)
        if self._skip > 0:
            frames = self._skip_from(frames, fmt.rate)
            if not len(frames):
                return
        self._relax_target(now)
        gain = 0.0 if self._muted else self._gain
        out = self._resampler.process(frames, self._controller.ratio, gain)
        self._refresh_device_latency(now)
        before = self._in_stream()
        measured = time.monotonic()
        self._write(out)
        after = time.monotonic()
        # One latency query per packet. This packet's latency from its arrival to the sink mixing it:
        # the time it spent with us until the queue was read, plus what was queued in the stream ahead
        # of it then. (Counting until after the write would add the write's own duration, which the
        # queue has meanwhile played out: under load that held the real latency below the target.)
        self._played(arrived, measured, after, before, len(frames), len(out) / fmt.rate, self.buffer.level())

    def _played(self, arrived: float, measured: float, after: float, before: float, frames_in: int,
                out_seconds: float, queued_jb: float = 0.0) -> None:
        """The bookkeeping after one packet's write (here, or by the native pump): its latency to the
        drift controller and the catch-up window, and the stats."""
        ahead = (measured - arrived) + before
        dt = after - self._last_write if self._last_write is not None else 0.0
        self._last_write = after
        ratio = self._controller.update(ahead, dt)
        self._trim_excess(after, ahead)
        st = self.stats
        st.chunks += 1
        st.frames += frames_in
        st.ratio = ratio
        st.queued = before + out_seconds + self._device + queued_jb
        st.ahead = ahead
        st.device = self._device
        st.target = self.target
        if self.record_history:
            st.history.append((after, ahead, st.underruns))

    # --- a source that plays from its own thread (driven: Scream UDP's native pump) -----------------

    def play_buffered(self) -> None:
        """(driven) Play what waits in the jitter buffer, in the calling thread."""
        while (chunk := self.buffer.pop(timeout=0)) is not None:
            self._play(chunk.fmt, chunk.frames, chunk.arrived)

    def pump_ready(self, fmt: PcmFormat | None) -> bool:
        """(driven) Whether the native pump may play packets of ``fmt`` now: a stream of that format is
        open, 16-bit, no skip in progress, no underflow report unhandled, nothing waiting in the jitter
        buffer, the stream's queue known. Does the upkeep _play does per packet (the device's latency,
        the target's relaxing, the queue's query when due)."""
        stream = self._stream
        if (stream is None or fmt is None or self._fmt != fmt or fmt.bits != 16 or fmt.channels > 8
                or self._skip > 0 or self._resampler is None or stream.underflows != self._underflows_seen
                or self.buffer.level() > 0):
            return False
        now = time.monotonic()
        self._refresh_device_latency(now)
        self._relax_target(now)
        self._in_stream()  # asks the server when a query is due
        return self._queried is not None

    def load_pump(self, p) -> None:
        """(driven, after pump_ready) Hand a ``struct scream_pump`` the stream, the resampler and the
        policy's figures of this moment: the ratio, the gain, the queue model, when to come back."""
        stream, fmt = self._stream, self._fmt
        if stream is not self._pump_stream:
            self._pump_stream = stream
            # -1: no underflow yet (pa_stream_get_underflow_index). Not read at the first write: an
            # underflow before the pump's first call would be taken as the baseline and go unhandled.
            p.underflow_index, p.underflow_valid = -1, 1
            (p.ml, p.stream, p.fn_lock, p.fn_unlock, p.fn_write, p.fn_underflow_index,
             p.fn_iterate) = stream.native_handles()
        p.resampler = self._resampler.native_state
        p.frame_bytes, p.channels, p.rate = fmt.frame_bytes, fmt.channels, fmt.rate
        p.ratio = self._controller.ratio
        p.gain = 0.0 if self._muted else self._gain
        queried_at, queried = self._queried
        p.queried_ns, p.queried_value = int(queried_at * 1e9), queried
        p.written_since = self._written_since_query
        p.model_end = self._model_end
        p.max_ahead = self._catchup_above(time.monotonic())
        p.policy_due_ns = int(min(queried_at + QUERY_EVERY, self._device_checked + DEVICE_REFRESH) * 1e9)

    def unload_pump(self, p) -> int:
        """(driven, after the pump returned) Take back its queue model and book each packet it played as
        _play books its own; returns how many it played. Raises the sound server's error when its write
        failed."""
        self._written_since_query = p.written_since
        self._model_end = p.model_end
        n = p.samples
        for s in p.sample[0:n]:
            self._played(s.arrived_ns * 1e-9, s.measured_ns * 1e-9, s.after_ns * 1e-9, s.before, s.frames_in,
                         s.frames_out / p.rate)
        p.samples = 0
        if p.pulse_rc < 0:
            raise self._stream.failure("pa_stream_write")
        return n

    def _open(self, fmt: PcmFormat, first_arrived: float) -> None:
        if self._fmt is not None and fmt != self._fmt:
            self.stats.format_changes += 1
            log.info("audio format changed: %s -> %s", self._fmt.describe(), fmt.describe())
        self._close()
        spec = player_spec(fmt)
        frame = 4 * fmt.channels
        # With ADJUST_LATENCY, Pulse gives the sink (tlength - 2 * minreq) / 2 of the stream's total
        # tlength as its own latency: ask for the target plus the device latency we want in all, and
        # a minreq that leaves the device just that.
        device = min(self.device_request, self.target / 2)
        tlength = int((self.target + device) * fmt.rate)
        minreq = max(1, int((self.target - device) / 2 * fmt.rate))
        self._stream = pulse.PlaybackStream(
            spec, server=self.server, device=self.sink, stream_name=self.stream_name,
            # prebuf 1 ms: the stream plays as soon as the prefill (or, after a slow open, the first
            # packet) is in. With Pulse's usual prebuf (tlength - minreq) a first packet that had waited
            # most of the target for the stream to open was held until a few more had come: ~10 ms late.
            tlength=tlength * frame, minreq=minreq * frame, prebuf=max(1, fmt.rate // 1000) * frame,
            maxlength=int(self.max_latency * 2 * fmt.rate) * frame, thread_setup=raise_thread_priority,
            # Driven, the stream is used by the source's thread only, which also runs its loop: no loop
            # thread to wake per write (see pulse.PlaybackStream's own_loop).
            own_loop=self.driven)
        self._fmt = fmt
        if self.on_stream_opened is not None:
            self.on_stream_opened()  # a source playing from its own thread queues what came meanwhile
        self._resampler = DriftResampler(fmt.channels)
        self._controller.reset()
        self._underflows_seen = 0
        self._dry_index = None
        self._last_write = None
        self._restart_window(time.monotonic())
        # Start with the queue at the target: silence now, so that the first packet and those after
        # it each find a cushion of `target` ahead of them instead of a buffer that is just filling.
        # The first packet has waited while the stream opened, and packets that came meanwhile are
        # queued behind it: both count towards the cushion; too much of them (a slow server) is
        # skipped rather than played late.
        # No waiting for the server's first timing update here: every ms spent waiting is a ms the
        # first packet is late, and a wait longer than the target used to be skipped (an audible jump
        # about a second into the stream). The device's latency is what we asked for until the server
        # says otherwise (DEVICE_REFRESH).
        # The sink renders ahead from a stream as soon as it plays, so its share (what it holds on
        # average: pulse.SINK_SHARE_STANDIN of the device latency until the server's figures come)
        # leaves the queue at once, as after an underrun's refill (see _play). Not counted, the first
        # seconds of each stream played 2-2.5 ms below the target (5 ms device) until the drift
        # controller, inactive for its first seconds, took it back.
        now = time.monotonic()
        self._device_checked = now
        self._device = device
        share = device * pulse.SINK_SHARE_STANDIN
        cushion = self.target + share - max(self.buffer.level(), now - first_arrived)
        self._skip = 0.0
        if cushion < -EXCESS_TOLERANCE:
            # A server so slow to open the stream that the first packets would play far too late:
            # skip the excess before anything plays (nothing is heard jumping).
            self._skip = -cushion - self.buffer.discard(-cushion)
        # A smaller excess plays; the drift controller takes it back within seconds, inaudibly.
        prefill = int(max(0.0, cushion) * fmt.rate)
        self._model_end = now
        self._queried = None
        self._written_since_query = 0.0
        if prefill:
            self._write(np.zeros((prefill, fmt.channels), dtype=np.float32))
        log.debug("audio stream open: prefill %.1f ms", prefill / fmt.rate * 1000)
        self.stats.reopens += 1
        log.info("audio playing %s on %s (target %.0f ms + the device's %.1f ms, pulse buffer %s)", fmt.describe(),
                 self.sink or "default sink", self.target * 1000, self._device * 1000, self._stream.buffer_attr())

    def _refresh_device_latency(self, now: float, fallback: float | None = None, force: bool = False) -> None:
        """The sink's configured latency: the smallest any of its streams asked for, so it changes when
        another stream joins the sink; read again every DEVICE_REFRESH seconds."""
        if not force and now - self._device_checked < DEVICE_REFRESH:
            return
        self._device_checked = now
        device = self._stream.device_latency()
        if device is None or device <= 0:  # no timing update yet, or a server that does not say
            device = fallback if fallback is not None else self._device
        self._device = device

    def _write(self, frames: np.ndarray) -> None:
        self._stream.write(frames.astype(np.float32, copy=False).tobytes())
        now = time.monotonic()
        seconds = len(frames) / self._fmt.rate
        self._model_end = max(now, self._model_end) + seconds
        self._written_since_query += seconds

    def _in_stream(self, fresh: bool = False) -> float:
        """Seconds queued in the Pulse stream, not yet handed to the sink device; until the server's
        first timing update, our own running model. The server's figure is asked at most every
        QUERY_EVERY seconds (``fresh``: now); in between it is carried forward (what was written since,
        less the time that played), which costs nothing."""
        now = time.monotonic()
        if not fresh and self._queried is not None and now - self._queried[0] < QUERY_EVERY:
            t, value = self._queried
            return max(0.0, value + self._written_since_query - (now - t))
        queued = self._stream.queued()
        if queued is None:
            self._queried = None
            return max(0.0, self._model_end - now - self._device)
        self._queried = (now, queued)
        self._written_since_query = 0.0
        return queued

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._fmt = None
