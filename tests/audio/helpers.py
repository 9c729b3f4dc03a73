"""Runs one scenario end to end: AudioService (or kvmfr-audio) -> private PulseAudio -> recording."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from guest_agent.audio.scream_sender import ScreamIvshmemWriter, ScreamUdpSender
from kvmfr_client.audio import AudioService, formats
from kvmfr_client.audio.formats import PcmFormat
from tests.audio.signals import MARKER_SECONDS, PacedSender, align, snr_db



@dataclass
class Result:
    recorded: np.ndarray
    sent: np.ndarray
    rate: int
    latency_ms: float | None
    service_stats: dict
    send_times: list | None = None

    def channel_snr(self, sent_ch: int, sink_ch: int, trim: float = 0.05) -> float:
        ref = self.sent[:, sent_ch]
        rec = self.recorded[:, sink_ch]
        lag = align(rec, ref)
        cut = int(trim * self.rate)
        seg_ref = ref[cut:len(ref) - cut]
        seg_rec = rec[lag + cut:lag + len(ref) - cut]
        if len(seg_rec) < len(seg_ref):
            return float("-inf")
        return snr_db(seg_rec, seg_ref)


# The target for tests that check what comes out, not how soon: far above what any stall on a busy CI
# machine costs, so they stay correctness tests. The default 20 ms is measured on its own.
SAFE_LATENCY = 100


def service_config(pulse, sink: str, scream: str, latency: int = 20, **extra) -> dict:
    cfg = {"audio:scream": scream, "audio:sink": sink, "audio:server": pulse.server, "audio:latency": latency,
           "audio:maxLatency": max(100, 3 * latency), "audio:interface": "", "audio:spice": False}
    cfg.update(extra)
    return cfg


def udp_scenario(pulse, sink: str, fmt: PcmFormat, signal: np.ndarray, *, host: str = "127.0.0.1",
                 interface: str | None = None, hook=None, latency: int = 20, rate_scale: float = 1.0,
                 service: AudioService | None = None, tail: float = 0.4) -> Result:
    """Plays ``signal`` (float32 frames) as Scream UDP in real time and records the sink."""
    own = service is None
    if own:
        service = AudioService(service_config(pulse, sink, f"udp://{host}:0", latency,
                                              **({"audio:interface": interface} if interface else {})))
        service.start()
    port = service.sources[0].port
    sender = ScreamUdpSender(fmt, host, port, interface=interface)
    header = sender._header
    paced = PacedSender(lambda chunk: sender.send_raw(header + chunk), formats.encode(fmt, signal), sender._payload,
                        sender._payload / fmt.frame_bytes / fmt.rate, rate_scale=rate_scale, hook=hook,
                        send_extra=sender.send_raw)
    try:
        return _record_paced(pulse, sink, service, paced, signal, fmt, tail + latency / 1000)
    finally:
        sender.close()
        if own:
            service.stop()


def _record_paced(pulse, sink: str, service: AudioService, paced: PacedSender, signal: np.ndarray,
                  fmt: PcmFormat, tail: float) -> Result:
    """Records ``sink`` while ``paced`` sends ``signal`` and for ``tail`` seconds after it."""
    with pulse.recorder(sink) as rec:
        time.sleep(0.15)
        paced.start()
        paced.join()
        time.sleep(tail)
    return _result(rec, signal, fmt, paced.send_times, service.stats())


def _result(rec, signal, fmt, send_times, stats) -> Result:
    recorded = rec.audio()
    latency = None
    # Latency from the first datagram's departure to its first frame at the sink: find the noise
    # marker at the head of the signal in the recording.
    marker = signal[:int(MARKER_SECONDS * fmt.rate), 0]
    if len(recorded) > len(signal) // 2 and send_times and rec.rate == fmt.rate:
        lag = align(recorded[:, 0], marker)
        latency = (rec.time_of_frame(lag) - send_times[0]) * 1000
    return Result(recorded, signal, rec.rate, latency, stats, send_times=list(send_times))


def ivshmem_scenario(pulse, sink: str, fmt: PcmFormat, signal: np.ndarray, path, *, latency: int = SAFE_LATENCY,
                     before_start=None, during=None, tail: float = 0.4) -> Result:
    """Writes ``signal`` into a Scream IVSHMEM ring in real time (20 ms chunks) and records the sink."""
    writer = ScreamIvshmemWriter(str(path), fmt, size=256 * 1024)
    if before_start:
        before_start(writer)
    service = AudioService(service_config(pulse, sink, f"ivshmem:{path}", latency))
    service.start()
    paced = PacedSender(lambda chunk: writer.write_chunk(chunk), formats.encode(fmt, signal), writer.chunk_size, 0.02,
                        hook=during)
    try:
        return _record_paced(pulse, sink, service, paced, signal, fmt, tail + latency / 1000)
    finally:
        service.stop()
        writer.close()
