"""The Linux guest's side of Scream: record a PulseAudio/PipeWire source (by default the monitor of the
default sink, i.e. everything the guest plays) and send it as Scream UDP or into a Scream IVSHMEM ring.

Recording is paced by the guest's sound server, so what is sent follows the guest's audio clock, as
the Windows driver's does. A block is read every 6 ms (UDP: one datagram) or 20 ms (IVSHMEM: one chunk).
"""

from __future__ import annotations

import logging

from guest_agent.audio.scream_sender import ScreamIvshmemWriter, ScreamUdpSender
from kvmfr_client.audio import pulse, scream_wire
from kvmfr_client.audio.formats import DEFAULT_MASKS, PcmFormat
from kvmfr_client.audio.priority import raise_thread_priority
from kvmfr_client.audio.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "@DEFAULT_MONITOR@"  # Pulse's name for the default sink's monitor
_SAMPLE_FORMATS = {16: pulse.SAMPLE_S16LE, 24: pulse.SAMPLE_S24LE, 32: pulse.SAMPLE_S32LE}


class ScreamCapture(Worker):
    """Records ``source`` in ``fmt`` and hands each block to a Scream sender, in thread ``audio-capture``.

    ``silence_threshold`` > 0 stops sending after that many consecutive silent frames (Scream's
    SilenceThreshold), so an idle guest sends nothing.
    """

    def __init__(self, fmt: PcmFormat, sender: ScreamUdpSender | ScreamIvshmemWriter, *, source: str = DEFAULT_SOURCE,
                 server: str | None = None, silence_threshold: int = 0):
        if not fmt.channel_mask:
            fmt = PcmFormat(fmt.rate, fmt.bits, fmt.channels, DEFAULT_MASKS[fmt.channels])
        self.fmt = fmt.validate()
        self.sender = sender
        if isinstance(sender, ScreamUdpSender):
            self.block = scream_wire.payload_bytes(fmt)
        else:
            self.block = sender.chunk_size
        spec = pulse.StreamSpec(_SAMPLE_FORMATS[fmt.bits], fmt.rate, fmt.positions())
        self._stream = pulse.SimpleStream(spec, record=True, server=server, device=source,
                                           app_name="kvmfr-agent", stream_name="scream capture",
                                           fragsize=self.block)
        self.silence_threshold = silence_threshold
        self.blocks = 0
        self.skipped_silent = 0
        self._silent_frames = 0
        super().__init__()

    thread_name = "audio-capture"

    def _close(self) -> None:
        self._stream.close()

    def _run(self) -> None:
        raise_thread_priority()
        udp = isinstance(self.sender, ScreamUdpSender)
        while not self._stop.is_set():
            try:
                data = bytes(self._stream.read(self.block))
            except pulse.PulseError as exc:
                log.warning("capture: %s; stopping", exc)
                return
            if self._is_silent(data):
                self.skipped_silent += 1
                continue
            if udp:
                self.sender.send_raw(self.sender._header + data)
            else:
                self.sender.write_chunk(data)
            self.blocks += 1

    def _is_silent(self, data: bytes) -> bool:
        if self.silence_threshold <= 0:
            return False
        if data.strip(b"\0"):
            self._silent_frames = 0
            return False
        self._silent_frames += len(data) // self.fmt.frame_bytes
        return self._silent_frames >= self.silence_threshold

