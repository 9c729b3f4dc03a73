"""AudioService: builds the audio path from the ``audio:*`` options and runs it.

    source thread(s) -> JitterBuffer -> Player thread -> PulseAudio / PipeWire

The viewer creates one with its :class:`~kvmfr_client.config.Config`, calls :meth:`start` after the
window is up and :meth:`stop` on exit; ``kvmfr-audio`` does the same without a window.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from kvmfr_client.audio.player import Player
from kvmfr_client.audio.priority import use_realtime
from kvmfr_client.audio.scream_ivshmem import CHUNK_SECONDS, ScreamIvshmemSource
from kvmfr_client.audio.scream_udp import ScreamUdpSource, parse_udp_url
from kvmfr_client.config import with_defaults

# Scream IVSHMEM's lowest target latency: one 20 ms chunk plus a few ms (see start()).
IVSHMEM_FLOOR_MS = (CHUNK_SECONDS + 0.005) * 1000

log = logging.getLogger(__name__)

# The Pulse stream name of each source's player (what pavucontrol shows; tests find its underruns by it).
SCREAM_UDP_STREAM = "guest audio (Scream)"
SCREAM_IVSHMEM_STREAM = "guest audio (Scream IVSHMEM)"
SPICE_STREAM = "guest audio (SPICE)"


class AudioConfigError(ValueError):
    """An ``audio:*`` option value that names no usable source; the message says what to write."""


def parse_scream_source(text: str) -> tuple[str, Any]:
    """``udp://HOST:PORT`` -> ("udp", (host, port)); ``ivshmem:PATH`` -> ("ivshmem", path)."""
    text = text.strip()
    if text.startswith("ivshmem:"):
        path = text[len("ivshmem:"):]
        if not path:
            raise AudioConfigError("audio:scream=ivshmem:PATH needs a path, e.g. ivshmem:/dev/shm/scream-ivshmem")
        return "ivshmem", path
    if text.startswith("udp://") or text == "udp":
        try:
            return "udp", parse_udp_url(text if text != "udp" else "udp://")
        except ValueError as exc:
            raise AudioConfigError(str(exc)) from None
    raise AudioConfigError(f"audio:scream={text!r}: write udp://GROUP_OR_HOST:PORT or ivshmem:PATH")


class AudioService:
    """Plays the guest's sound when ``audio:scream`` or ``audio:spice`` is set; otherwise does nothing.

    ``start()`` opens sockets/files (raising :class:`AudioConfigError`, ``sinks.SinkError`` or ``OSError``
    for bad settings) and starts the named threads: one ``audio-player`` per source (each source is its
    own Pulse stream, so Scream and SPICE together are mixed by the sound server, not by us), and
    ``audio-scream-udp`` / ``audio-scream-ivshmem`` / ``audio-spice``. ``stop()`` ends them and closes
    everything. Both are idempotent. ``stats()`` gives counters for an overlay or a log line.
    """

    def __init__(self, config: Mapping[str, Any], spice=None):
        """``spice``: the viewer's running SPICE session (a ``kvmfr_client.spice.client.SpiceThread``),
        which the playback channel then joins instead of opening a second, competing session."""
        self.config = with_defaults(config)   # a plain mapping of some options is completed from the registry
        self.spice = spice
        self.player: Player | None = None  # the first source's player
        self.players: list[Player] = []  # one per source: each is its own stream, the sound server mixes
        self.sources: list = []

    @property
    def enabled(self) -> bool:
        return bool(self.config["audio:scream"]) or bool(self.config["audio:spice"])

    def _player(self, latency: float, name: str) -> Player:
        cfg = self.config
        player = Player(latency_ms=latency, max_latency_ms=float(cfg["audio:maxLatency"]),
                        device_latency_ms=float(cfg["audio:deviceLatency"]),
                        sink=cfg["audio:sink"] or None, server=cfg["audio:server"] or None, stream_name=name)
        self.players.append(player)
        return player

    def start(self) -> None:
        if self.players or not self.enabled:
            return
        cfg = self.config
        use_realtime(bool(cfg["audio:realtime"]))
        latency = float(cfg["audio:latency"])
        scream = cfg["audio:scream"]
        kind, where = parse_scream_source(scream) if scream else (None, None)
        sink = cfg["audio:sink"] or None
        if sink:
            from kvmfr_client.audio.sinks import check_sink

            check_sink(sink, cfg["audio:server"] or None)
        try:
            if kind == "udp":
                host, port = where
                player = self._player(latency, SCREAM_UDP_STREAM)
                self.sources.append(ScreamUdpSource(player.buffer, host, port, cfg["audio:interface"] or None,
                                                    player=player))
            elif kind == "ivshmem":
                # Chunks come 20 ms at a time, found by polling (no doorbell), and a guest completes
                # them on its audio engine's period: keep a chunk plus a few ms ahead of each one.
                floor = IVSHMEM_FLOOR_MS
                if latency < floor:
                    log.info("audio: IVSHMEM delivers 20 ms chunks; target latency %.0f ms for it", floor)
                player = self._player(max(latency, floor), SCREAM_IVSHMEM_STREAM)
                self.sources.append(ScreamIvshmemSource(player.buffer, where, poll=max(latency, floor) / 8000.0))
            if cfg["audio:spice"]:
                from kvmfr_client.audio.spice_playback import SharedSessionPlayback, SpicePlaybackSource

                player = self._player(latency, SPICE_STREAM)
                if self.spice is not None:
                    self.sources.append(SharedSessionPlayback(player, self.spice))
                else:
                    if cfg["spice:enable"] and cfg["spice:input"]:
                        log.warning("audio:spice opens its own SPICE session; spice-server serves one client, so "
                                    "it will fight the viewer's: pass the viewer's session to AudioService(spice=)")
                    from kvmfr_client.spice.client import spice_password

                    self.sources.append(SpicePlaybackSource(player, cfg["spice:host"], cfg["spice:port"],
                                                            password=spice_password(cfg) or ""))
        except Exception:
            self.stop()
            raise
        self.player = self.players[0]
        for player in self.players:
            player.start()
        for source in self.sources:
            source.start()

    def stop(self) -> None:
        for source in self.sources:
            source.stop()
        self.sources = []
        for player in self.players:
            player.stop()
        self.players = []
        self.player = None

    def set_latency(self, latency_ms: float) -> None:
        """``audio:latency`` changed while playing (the viewer's settings panel): every player's target;
        Scream IVSHMEM keeps its 20 ms chunk floor."""
        self.config = {**self.config, "audio:latency": int(latency_ms)}
        floor = IVSHMEM_FLOOR_MS
        for player, source in zip(self.players, self.sources):
            ivshmem = isinstance(source, ScreamIvshmemSource)
            player.set_latency(max(latency_ms, floor) if ivshmem else latency_ms)

    def stats(self) -> dict[str, Any]:
        """Counters for an overlay or a log line: packets, bad packets, underruns, queued ms, ratio."""
        out: dict[str, Any] = {}
        if self.player is not None:
            st = self.player.stats
            out.update(queued_ms=round(st.queued * 1000, 2), ahead_ms=round(st.ahead * 1000, 2),
                       device_ms=round(st.device * 1000, 2), target_ms=round(self.player.target * 1000, 1),
                       jitter_ms=round(self.player.buffer.level() * 1000, 2), ratio=st.ratio,
                       skipped_ms=round(st.skipped * 1000, 1))
            if st.underrun_log:  # (monotonic time, ms between packets, ms that was ahead)
                out["last_underrun"] = list(st.underrun_log[-1])
        for player in self.players:
            for name in ("underruns", "format_changes", "catchups", "idle_gaps", "repeated_underflows"):
                out[name] = out.get(name, 0) + getattr(player.stats, name)
        for source in self.sources:
            for name in ("packets", "bad_packets", "foreign_packets", "floods", "flood_packets", "chunks",
                         "bad_headers", "torn_chunks", "skipped_chunks", "lost_mappings"):
                if hasattr(source, name):
                    out[name] = out.get(name, 0) + getattr(source, name)
        return out
