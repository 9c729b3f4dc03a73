"""The SPICE record channel (type 6): the guest's microphone input, sent by the client.

The server says when the guest opened its capture device (START: channels, sample format, rate; QEMU's
SPICE audio is always stereo S16 at 48 kHz) and when it closed it (STOP), and passes on the guest's
capture volume (VOLUME: one u16 per channel) and mute (MUTE: u8). The client answers START with MODE
(raw PCM: we announce no codec) and START_MARK, then sends DATA messages (time u32 + interleaved S16
frames) for as long as it records. spice-server copies DATA into a ring of 8192 frames that QEMU's
sound card reads; it counts the frames as ``size / 4``, so only whole stereo S16 frames are sent.

What the server sends is checked: a START with another format, a channel count other than 1-2 or a rate
outside 8-192 kHz is refused (counted, logged, and nothing is recorded for it). A server that stops
reading gets no more than ``MAX_BACKLOG`` bytes queued; later blocks are dropped (``dropped_blocks``).
"""

from __future__ import annotations

import logging
import struct
from typing import Callable

from . import protocol as P
from .protocol import AUDIO_FMT_S16, MODE_RAW, RecordClientMsg, RecordServerMsg
from .channel import Channel
from .errors import SpiceProtocolError
from .link import Address, link

log = logging.getLogger(__name__)


RECORD_CAP_VOLUME = 1
START = struct.Struct("<IHI")  # channels, format, frequency
MODE = struct.Struct("<IH")  # time, mode
RATE_RANGE = (8000, 192000)
MAX_DATA_BYTES = 64 * 1024  # one DATA message at most (spice-gtk sends ~20 ms)
# Audio waiting in our socket buffer for a server that stopped reading: beyond this (1.4 s of 48 kHz
# stereo) blocks are dropped, so a stalled server costs bounded memory and no growing delay.
MAX_BACKLOG = 256 * 1024


class RecordChannel(Channel):
    """A linked record channel. ``on_start(channels, rate)``, ``on_stop()``, ``on_volume(gain 0..1)`` and
    ``on_mute(bool)`` are called on the SPICE loop; :meth:`send_pcm` (on the loop) sends audio while the
    guest records."""

    name = "record"
    caps = (RECORD_CAP_VOLUME,)

    def __init__(self, link_, address: Address):
        super().__init__(link_, address)
        self.channels = 0
        self.rate = 0
        self.recording = False
        self.frames_sent = 0
        self.dropped_blocks = 0  # not sent: the server had not taken MAX_BACKLOG bytes already sent
        self._marked = False
        self.on_start: Callable[[int, int], None] | None = None
        self.on_stop: Callable[[], None] | None = None
        self.on_volume: Callable[[float], None] | None = None
        self.on_mute: Callable[[bool], None] | None = None

    def handle(self, msg_type: int, payload: bytes) -> None:
        if msg_type == RecordServerMsg.START:
            channels, fmt, rate = P.unpack(START, payload, "RECORD START")
            if fmt != AUDIO_FMT_S16 or not 1 <= channels <= 2 or not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
                # Nothing is sent for a stream we cannot give: not for the one before it either.
                was, self.recording = self.recording, False
                if was and self.on_stop is not None:
                    self.on_stop()
                raise SpiceProtocolError(f"RECORD START asks for format {fmt}, {channels} channels at {rate} Hz;"
                                         " this client sends S16, 1-2 channels, 8-192 kHz")
            self.channels, self.rate, self.recording, self._marked = channels, rate, True, False
            log.info("record: the guest opened its microphone (%d channels, %d Hz)", channels, rate)
            if self.on_start is not None:
                self.on_start(channels, rate)
        elif msg_type == RecordServerMsg.STOP:
            self.recording = False
            log.info("record: the guest closed its microphone")
            if self.on_stop is not None:
                self.on_stop()
        elif msg_type == RecordServerMsg.VOLUME:
            count = P.unpack(struct.Struct("<B"), payload, "RECORD VOLUME")[0]
            if count == 0 or len(payload) < 1 + 2 * count:
                raise SpiceProtocolError(f"RECORD VOLUME of {len(payload)} bytes for {count} channels")
            volumes = struct.unpack_from(f"<{count}H", payload, 1)
            if self.on_volume is not None:
                self.on_volume(sum(volumes) / count / 65535)
        elif msg_type == RecordServerMsg.MUTE:
            mute = bool(P.unpack(struct.Struct("<B"), payload, "RECORD MUTE")[0])
            if self.on_mute is not None:
                self.on_mute(mute)
        else:
            super().handle(msg_type, payload)

    def send_pcm(self, pcm: bytes, mm_time: int) -> None:
        """Send interleaved S16 frames recorded at ``mm_time`` (ms) while the guest records; dropped
        otherwise (the guest closed the device meanwhile)."""
        if not self.recording or self.closed:
            return
        transport = getattr(self._writer, "transport", None)
        if transport is not None and transport.get_write_buffer_size() > MAX_BACKLOG:
            self.dropped_blocks += 1
            self._warn.warn("backlog", "record: the SPICE server is not taking the microphone's audio; dropping it")
            return
        frame = 2 * self.channels
        pcm = pcm[:len(pcm) - len(pcm) % frame]
        time32 = mm_time & 0xFFFFFFFF
        if not self._marked:  # raw PCM (no codec announced), and where the stream starts
            self.send(RecordClientMsg.MODE, MODE.pack(time32, MODE_RAW))
            self.send(RecordClientMsg.START_MARK, struct.pack("<I", time32))
            self._marked = True
        for i in range(0, len(pcm), MAX_DATA_BYTES):
            piece = pcm[i:i + MAX_DATA_BYTES]
            self.send(RecordClientMsg.DATA, struct.pack("<I", time32) + piece)
            self.frames_sent += len(piece) // frame


async def link_record(address: Address, session_id: int, password: str | None = None,
                      timeout: float = 5.0) -> RecordChannel:
    """Link a record channel into an existing SPICE session and start reading it."""
    link_ = await link(address, P.ChannelType.RECORD, connection_id=session_id, password=password,
                       channel_caps=RecordChannel.caps, timeout=timeout)
    channel = RecordChannel(link_, address)
    channel.start()
    return channel
