"""The host's microphone for the guest, over the SPICE record channel of the viewer's session.

When the guest opens its capture device, spice-server sends the record channel's START; what happens then
is ``audio:micDefault``, as in Looking Glass: ``allow`` records at once, ``deny`` sends nothing (the
guest records silence), ``prompt`` asks through the window's alert ("press ScrollLock+E to allow") and
records once the user allows. ScrollLock+E toggles the microphone at any time (it also answers the
question); the answer holds until the viewer exits. While recording, the alert line says so (the
on-screen indicator, ``audio:micShowIndicator``).

Recording: a PulseAudio record stream on ``audio:micSource`` (empty: the default source) in the
format the guest asked for (QEMU: stereo S16 48 kHz), read in 10 ms blocks on thread ``audio-mic``;
the guest's capture volume and mute (VOLUME/MUTE messages) scale each block in numpy, and the block goes
to the SPICE loop as one DATA message.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable, Mapping

import numpy as np

from kvmfr_client.config.options import MIC_POLICIES
from kvmfr_client.spice.client import JoinedChannel
from kvmfr_client.spice.errors import SpiceError, SpiceLinkError
from kvmfr_client.spice.protocol import ChannelType, LinkResult
from kvmfr_client.spice.record import RecordChannel, link_record

log = logging.getLogger(__name__)

BLOCK_S = 0.010  # one record read (and one DATA message): 10 ms
POLICIES = MIC_POLICIES
# PulseAudio channel positions (pa_channel_position_t) for a mono or stereo stream.
_POSITIONS = {1: (0,), 2: (1, 2)}


class Microphone(JoinedChannel):
    """The microphone in the SPICE session of ``spice`` (a running or starting
    :class:`kvmfr_client.spice.client.SpiceThread`), its record channel linked on every "connected" state
    (:class:`kvmfr_client.spice.client.JoinedChannel`). ``on_alert(kind, text)`` (kind ``"mic"``) shows a line
    in the window: set by the viewer, called on the SPICE or the toggle's thread. While :attr:`recording`,
    the last line ("Microphone on") is the indicator."""

    LINK_TASK = "spice-record-link"
    WHAT = "microphone"

    def __init__(self, spice, policy: str = "prompt", source: str = "", server: str = "",
                 show_indicator: bool = True):
        if policy not in POLICIES:
            raise ValueError(f"audio:micDefault must be one of {', '.join(POLICIES)}, got {policy!r}")
        super().__init__(spice)
        self.policy = policy
        self.source = source or None
        self.server = server or None
        self.show_indicator = show_indicator
        self.on_alert: Callable[[str, str], None] | None = None
        self.channel: RecordChannel | None
        self.allowed: bool | None = {"allow": True, "deny": False}.get(policy)  # None: not asked yet
        self.gain = 1.0
        self.muted = False
        self.recording = False
        self.blocks = 0
        self.error: str | None = None
        self._reader: threading.Thread | None = None      # the latest reader
        self._reader_stop: threading.Event | None = None  # its own stop signal (one per reader)
        self._format: tuple[int, int] | None = None        # its (channels, rate)
        self._reader_lock = threading.Lock()   # the three above, between the loop and a failing reader

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], spice) -> "Microphone":
        return cls(spice, cfg["audio:micDefault"], cfg["audio:micSource"], cfg["audio:server"],
                   cfg["audio:micShowIndicator"])

    # -- session -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Close the record channel and stop recording (the caller's thread, not the SPICE loop: it waits
        up to 1 s for the reader)."""
        super().stop()
        self._stop_recording()   # (again, in case the loop could not run the stop: only a signal)
        reader, self._reader = self._reader, None
        if reader is not None and reader is not threading.current_thread():
            reader.join(1.0)

    def _stopping(self) -> None:
        self._stop_recording()

    def _session_state(self, state: str) -> None:
        if state == "lost" and self.recording:   # the guest's STOP will never come on that channel
            self._stop_recording()

    async def _join(self, client, main) -> None:
        # (a new session: _stopping() stopped the recording; the guest says START again if it records)
        try:
            await asyncio.wait_for(main.channels_listed.wait(), 2.0)
        except asyncio.TimeoutError:
            pass   # no list (an older server): try the link anyway
        if main.channels_listed.is_set() and (ChannelType.RECORD, 0) not in main.channels:
            log.info("microphone: the VM offers no SPICE record channel (no sound card on -audiodev spice)")
            return
        try:
            channel = await link_record(client.address, main.init.session_id, client.password)
        except SpiceLinkError as exc:
            if exc.code == LinkResult.CHANNEL_NOT_AVAILABLE:   # a VM without a sound card on SPICE audio
                log.info("microphone: the VM has no SPICE record channel (no sound card with -audiodev spice)")
            else:
                self.error = str(exc)
                log.warning("microphone: %s; no microphone until the session reconnects", exc)
            return
        except SpiceError as exc:
            self.error = str(exc)
            log.warning("microphone: %s; no microphone until the session reconnects", exc)
            return
        channel.on_start = self._guest_opened
        channel.on_stop = self._guest_closed
        channel.on_volume = self._set_gain
        channel.on_mute = self._set_mute
        self.channel = channel
        log.info("microphone: record channel linked in session %#x", main.init.session_id)

    # -- what the guest asks (SPICE loop) ------------------------------------------------------
    def _guest_opened(self, channels: int, rate: int) -> None:
        if self.allowed:
            self._start_recording()
        elif self.allowed is None:
            self._alert("The VM wants the microphone: ScrollLock+E allows it")
        else:
            log.info("microphone: the guest's request is denied (audio:micDefault=deny; ScrollLock+E allows)")

    def _guest_closed(self) -> None:
        self._stop_recording()

    def _set_gain(self, gain: float) -> None:
        self.gain = gain
        log.info("microphone: guest capture volume %.4f", gain)

    def _set_mute(self, muted: bool) -> None:
        self.muted = muted
        log.debug("microphone: guest capture %s", "muted" if muted else "unmuted")

    # -- the user ------------------------------------------------------------------------------
    def toggle(self) -> None:
        """ScrollLock+E: stop the microphone while it records; otherwise allow it (and start it when the
        guest is recording), or, when it was allowed and nothing records, deny it again."""
        channel = self.channel
        if self.recording:
            self.allowed = False
            self.recording = False   # at once: the indicator goes now, the reader stops on the SPICE loop
            self.spice.call(self._stop_recording)
            self._alert("Microphone off")
        elif channel is not None and channel.recording:
            self.allowed = True
            self.spice.call(self._start_recording)
        else:
            self.allowed = not self.allowed
            self._alert("Microphone allowed" if self.allowed else "Microphone denied")

    # -- recording -----------------------------------------------------------------------------
    def _start_recording(self) -> None:
        """(SPICE loop) Start a reader in the format of the guest's START; a new START in another format
        while recording replaces the reader."""
        channel = self.channel
        if channel is None or not channel.recording:
            return
        fmt = (channel.channels, channel.rate)
        if self.recording:
            if fmt == self._format:
                return
            log.info("microphone: the guest asks for %d channel(s) at %d Hz now; recording again", *fmt)
            self._signal_reader()
        else:
            self.recording = True
            if self.show_indicator:
                self._alert("Microphone on (ScrollLock+E stops)")
        stop = threading.Event()
        with self._reader_lock:
            self._format, self._reader_stop = fmt, stop
        self._reader = threading.Thread(target=self._read, args=(channel, *fmt, stop), name="audio-mic",
                                        daemon=True)
        self._reader.start()

    def _stop_recording(self) -> None:
        """(SPICE loop, or stop()) Signal the reader to stop; stop() waits for it, never the loop."""
        was = self.recording
        self.recording = False
        self._signal_reader()
        if was and self.show_indicator:
            self._alert("Microphone off")

    def _signal_reader(self) -> None:
        with self._reader_lock:
            stop, self._reader_stop, self._format = self._reader_stop, None, None
        if stop is not None:
            stop.set()

    def _read(self, channel: RecordChannel, channels: int, rate: int, stop: threading.Event) -> None:
        try:
            self._record(channel, channels, rate, stop)
        finally:
            with self._reader_lock:
                ended_by_itself = self._reader_stop is stop   # (an error): no longer recording
                if ended_by_itself:
                    self._reader_stop = self._format = None
                    self.recording = False
            if ended_by_itself:
                self._alert("Microphone unavailable (see the log)")

    def _record(self, channel: RecordChannel, channels: int, rate: int, stop: threading.Event) -> None:
        from kvmfr_client.audio import pulse
        block = max(1, int(rate * BLOCK_S))
        nbytes = block * 2 * channels
        try:
            stream = pulse.SimpleStream(pulse.StreamSpec(pulse.SAMPLE_S16LE, rate, _POSITIONS[channels]),
                                        record=True, server=self.server, device=self.source,
                                        app_name="kvmfr-view", stream_name="microphone for the VM",
                                        fragsize=nbytes)
        except pulse.PulseError as exc:
            self.error = f"cannot record from {self.source or 'the default source'}: {exc}"
            log.error("microphone: %s", self.error)
            return
        log.info("microphone: recording %s at %d Hz, %d channel(s)", self.source or "the default source", rate,
                 channels)
        try:
            while not stop.is_set():
                data = stream.read(nbytes)
                if self.muted or self.gain < 1.0:
                    samples = np.frombuffer(data, dtype="<i2")
                    gain = 0.0 if self.muted else self.gain
                    data = (samples * gain).astype("<i2").tobytes()
                else:
                    data = bytes(data)
                self.blocks += 1
                self.spice.call(channel.send_pcm, data, int(time.monotonic() * 1000))
        except pulse.PulseError as exc:
            self.error = str(exc)
            log.error("microphone: recording stopped: %s", exc)
        finally:
            stream.close()

    def _alert(self, text: str) -> None:
        log.info("microphone: %s", text)
        if self.on_alert is not None:
            self.on_alert("mic", text)
