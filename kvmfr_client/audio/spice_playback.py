"""SPICE playback channel -> jitter buffer: the guest's sound as QEMU's SPICE server sends it.

The link, the RSA ticket, the message framing and the main channel come from ``kvmfr_client.spice``
(the input client's package); this module adds only the playback channel (type 5) on top:

* START (channels, format, frequency) opens a stream; only raw S16 exists (QEMU: stereo 48 kHz);
* DATA (time + PCM) is decoded and pushed to the player's jitter buffer;
* VOLUME (per-channel u16) and MUTE (u8) set the player's software gain;
* MODE is answered by nothing: we advertise neither CELT nor Opus, so the server sends raw PCM.

Malformed messages are logged (rate-limited) and skipped. :class:`SpicePlaybackSource` runs its own
SPICE session (main + playback) in thread ``audio-spice`` and reconnects with back-off; a viewer that
already has a SPICE session can attach :class:`PlaybackChannel` to it with :func:`link_playback`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading

from kvmfr_client.audio import formats
from kvmfr_client.audio.formats import DEFAULT_MASKS, FormatError, PcmFormat
from kvmfr_client.audio.warnings import RateLimitedWarning
from kvmfr_client.spice import protocol as P
from kvmfr_client.spice.protocol import AUDIO_FMT_S16, MODE_RAW
from kvmfr_client.spice.channel import Channel
from kvmfr_client.spice.client import JoinedChannel
from kvmfr_client.spice.errors import SpiceAuthError, SpiceError, SpiceVersionError
from kvmfr_client.spice.link import Address, link
from kvmfr_client.spice.main import MainChannel

log = logging.getLogger(__name__)

# Playback channel messages (server -> client) and capabilities.
MSG_DATA = 101
MSG_MODE = 102
MSG_START = 103
MSG_STOP = 104
MSG_VOLUME = 105
MSG_MUTE = 106
MSG_LATENCY = 107
CAP_VOLUME = 1
CAP_LATENCY = 2

_START = struct.Struct("<IHII")  # channels, format, frequency, time


class PlaybackChannel(Channel):
    """Feeds a :class:`~kvmfr_client.audio.player.Player` from a linked playback channel."""

    name = "playback"
    caps = (CAP_VOLUME,)

    def __init__(self, link_, address, player):
        super().__init__(link_, address)
        self.player = player
        self.fmt: PcmFormat | None = None
        self.packets = 0
        self.bad_packets = 0
        self.started = asyncio.Event()
        self._warn = RateLimitedWarning(log)

    def handle(self, msg_type: int, payload: bytes) -> None:
        try:
            if msg_type == MSG_DATA:
                self._data(payload)
            elif msg_type == MSG_START:
                self._start(payload)
            elif msg_type == MSG_STOP:
                log.debug("spice playback: stop")
            elif msg_type == MSG_VOLUME:
                count = payload[0]
                volumes = struct.unpack_from(f"<{count}H", payload, 1)
                if count:
                    self.player.set_volume(sum(volumes) / count / 65535)
                    log.debug("spice playback: volume %s", volumes)
            elif msg_type == MSG_MUTE:
                self.player.set_mute(bool(payload[0]))
                log.debug("spice playback: mute %s", bool(payload[0]))
            elif msg_type == MSG_MODE:
                _time, mode = struct.unpack_from("<IH", payload)
                if mode != MODE_RAW:
                    self._bad("mode", "spice playback: server chose compressed mode %d, which we did not offer", mode)
            elif msg_type == MSG_LATENCY:
                log.debug("spice playback: server latency hint %d ms", struct.unpack_from("<I", payload)[0])
            else:
                log.debug("spice playback: unhandled message %d", msg_type)
        except (struct.error, IndexError, FormatError) as exc:
            self._bad(f"msg{msg_type}", "spice playback: malformed message %d (%d bytes): %s; skipped",
                      msg_type, len(payload), exc)

    def _start(self, payload: bytes) -> None:
        channels, fmt_code, frequency, _time = _START.unpack_from(payload)
        if fmt_code != AUDIO_FMT_S16:
            raise FormatError(f"sample format {fmt_code} is not S16 (1)")
        if not 1 <= channels <= formats.MAX_CHANNELS:
            raise FormatError(f"channel count {channels} is not 1..{formats.MAX_CHANNELS}")
        self.fmt = PcmFormat(frequency, 16, channels, DEFAULT_MASKS[channels]).validate()
        log.info("spice playback: start %s", self.fmt.describe())
        self.started.set()

    def _data(self, payload: bytes) -> None:
        if self.fmt is None:
            self._bad("nostart", "spice playback: audio before START; dropped")
            return
        pcm = payload[4:]
        if len(pcm) % self.fmt.frame_bytes:
            self._bad("partial", "spice playback: %d bytes is not whole %d-byte frames; tail dropped",
                      len(pcm), self.fmt.frame_bytes)
        frames = formats.decode(self.fmt, pcm)
        if len(frames):
            self.player.buffer.push(self.fmt, frames)
        self.packets += 1

    def _bad(self, kind: str, msg: str, *args) -> None:
        self.bad_packets += 1
        self._warn.warn(kind, msg, *args)


async def link_playback(address: Address, session_id: int, player, password: str | None = None,
                        timeout: float = 5.0) -> PlaybackChannel:
    """Link a playback channel into an existing SPICE session and start reading it."""
    link_ = await link(address, P.ChannelType.PLAYBACK, connection_id=session_id, password=password,
                       channel_caps=PlaybackChannel.caps, timeout=timeout)
    channel = PlaybackChannel(link_, address, player)
    channel.start()
    return channel


class _AudioOnlyMain(MainChannel):
    """A main channel that leaves the guest's mouse mode alone: this session only listens."""

    def request_mouse_mode(self, mode) -> bool:
        return False


class _ChannelCounters:
    """The packet counters of whichever playback channel is open (0 before one is)."""

    channel: PlaybackChannel | None = None

    @property
    def packets(self) -> int:
        return self.channel.packets if self.channel else 0

    @property
    def bad_packets(self) -> int:
        return self.channel.bad_packets if self.channel else 0


class SpicePlaybackSource(_ChannelCounters):
    """Its own SPICE session (main + playback) to ``host:port`` in thread ``audio-spice``."""

    BACKOFF = (0.25, 5.0)

    def __init__(self, player, host: str, port: int, password: str = ""):
        self.player = player
        self.address = Address(host, port)
        self.password = password or None
        self.channel: PlaybackChannel | None = None
        self.connections = 0
        self.error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="audio-spice", daemon=True)
        self._thread.start()
        self._ready.wait(2.0)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            # (closed: the thread already gave up, e.g. on a refused password)
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _thread_main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        delay = self.BACKOFF[0]
        while not self._stop.is_set():
            main = None
            try:
                main_link = await link(self.address, P.ChannelType.MAIN, password=self.password,
                                       channel_caps=MainChannel.caps)
                main = _AudioOnlyMain(main_link, self.address)
                main.start()
                await asyncio.wait_for(main.initialized.wait(), 5.0)
                self.channel = await link_playback(self.address, main.init.session_id, self.player, self.password)
                self.connections += 1
                delay = self.BACKOFF[0]
                log.info("spice playback: connected to %s", self.address)
                stop = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait([stop, self.channel.reader_task, main.reader_task],
                                   return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
            except (SpiceAuthError, SpiceVersionError) as exc:
                self.error = str(exc)
                log.error("spice playback: %s; giving up", exc)
                return
            except (SpiceError, asyncio.TimeoutError, OSError) as exc:
                self.error = str(exc)
                log.warning("spice playback: %s; retrying in %.2f s", exc, delay)
            finally:
                for channel in (self.channel, main):
                    if channel is not None:
                        await channel.close()
                        task = channel.reader_task
                        if task is not None and task.done() and not task.cancelled():
                            task.exception()
            if self._stop.is_set():
                break
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, self.BACKOFF[1])


class SharedSessionPlayback(_ChannelCounters, JoinedChannel):
    """The playback channel inside a SPICE session that someone else runs (the viewer's input client,
    a :class:`kvmfr_client.spice.client.SpiceThread`), linked with the session id on every "connected"
    state of that client (:class:`kvmfr_client.spice.client.JoinedChannel`)."""

    LINK_TASK = "spice-playback-link"
    WHAT = "spice playback"

    def __init__(self, player, spice_thread):
        super().__init__(spice_thread)
        self.player = player
        self.connections = 0
        self.error: str | None = None

    async def _join(self, client, main) -> None:
        try:
            self.channel = await link_playback(client.address, main.init.session_id, self.player, client.password)
            self.connections += 1
            log.info("spice playback: joined the viewer's SPICE session %#x", main.init.session_id)
        except SpiceError as exc:
            self.error = str(exc)
            log.warning("spice playback: %s; no SPICE audio until the session reconnects", exc)
