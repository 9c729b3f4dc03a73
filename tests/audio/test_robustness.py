"""Bad input never stops the audio: malformed, short and oversized datagrams, impossible formats, lost
and reordered packets, and format changes mid-stream, all while a real sink is being recorded."""

from __future__ import annotations

import numpy as np
import pytest

from kvmfr_client.audio import AudioService, formats, scream_wire
from kvmfr_client.audio.formats import PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.scream_udp import ScreamUdpSource
from tests.audio.helpers import service_config, udp_scenario
from tests.audio.signals import CHANNEL_TONES, dominant_freq, rms, tones
from tests.audio.test_scream_udp import FL, FR, SAFE_LATENCY, _assert_tones

BAD_DATAGRAMS = [
    b"",  # empty
    b"\x01\x10",  # shorter than the header
    b"\x01\x10\x02\x03\x00",  # a header and no audio
    b"\x01\x10\x02\x03\x00" + b"\x11" * 2000,  # oversized
    b"\x00\x10\x02\x03\x00" + b"\0" * 1152,  # rate multiplier 0
    b"\x01\x11\x02\x03\x00" + b"\0" * 1152,  # 17 bits per sample
    b"\x01\x10\x00\x03\x00" + b"\0" * 1152,  # no channels
    b"\x01\x10\x40\x03\x00" + b"\0" * 1152,  # 64 channels
    b"\xff\xff\xff\xff\xff" + b"\xff" * 1152,  # all ones
]


def test_bad_datagrams_are_counted_not_raised():
    jb = JitterBuffer()
    src = ScreamUdpSource(jb, "127.0.0.1", 0)
    try:
        for packet in BAD_DATAGRAMS:
            src.handle_datagram(packet, 0.0)
        assert src.bad_packets == len(BAD_DATAGRAMS)
        assert jb.level() == 0
        # A frame split across datagrams (16-bit 5 channels: 10-byte frames, 1152 is not a multiple)
        fmt = PcmFormat(48000, 16, 5, 0x37)
        pcm = formats.encode(fmt, np.full((1000, 5), 0.25, np.float32))
        header = scream_wire.udp_header(fmt)
        for k in range(0, len(pcm), 1152):
            src.handle_datagram(header + pcm[k:k + 1152], 0.0)
        got = np.concatenate([jb.pop(0).frames for _ in range(int(np.ceil(len(pcm) / 1152)))])
        assert got.shape == (1000, 5) and np.allclose(got, 0.25, atol=1e-4)
    finally:
        src.stop()


def test_stream_plays_on_through_bad_lost_and_reordered_packets(pulse):
    """Every good datagram is joined by a bad one; a few are lost (each takes 6 ms out of the cushion for
    good, as Scream has no sequence numbers) and some arrive out of order. The tones keep playing."""
    fmt = PcmFormat(48000, 16, 2, 0x3)
    signal = tones(48000, 2.0, CHANNEL_TONES[:2])
    held = {}

    def chaos(i, chunk):
        if i < 30:
            return None  # a clean start
        extra = [BAD_DATAGRAMS[i % len(BAD_DATAGRAMS)]]
        if i % 60 == 0:
            return False  # lost
        if i % 13 == 0:
            held["pkt"] = chunk
            return False  # held back, sent after the next one (reordered)
        if "pkt" in held:
            extra.append(scream_wire.udp_header(fmt) + held.pop("pkt"))
        return extra

    res = udp_scenario(pulse, pulse.sink48, fmt, signal, hook=chaos, latency=SAFE_LATENCY)
    stats = res.service_stats
    assert stats["bad_packets"] >= 250
    assert stats["packets"] >= 330  # every good datagram, the reordered ones too
    window = int(0.2 * res.rate)
    for ch, sink_ch in enumerate([FL, FR]):
        x = res.recorded[:, sink_ch]
        loud = [x[k:k + window] for k in range(0, len(x) - window, window) if rms(x[k:k + window]) > 0.2]
        assert len(loud) >= 8, f"channel {sink_ch}: only {len(loud)} loud 200 ms windows"
        freqs = [dominant_freq(w, res.rate) for w in loud]
        assert np.median(freqs) == pytest.approx(CHANNEL_TONES[ch], abs=3)


def test_format_changes_mid_stream_without_a_restart(pulse):
    """One running service gets 48 kHz 16-bit stereo, then 44.1 kHz 24-bit stereo, then 48 kHz 32-bit
    5.1, each as one continuous stream; each part must come out with its own tones and channels."""
    service = AudioService(service_config(pulse, pulse.sink48, "udp://127.0.0.1:0", SAFE_LATENCY))
    service.start()
    try:
        player = service.player
        parts = [
            (PcmFormat(48000, 16, 2, 0x3), CHANNEL_TONES[:2], [FL, FR]),
            (PcmFormat(44100, 24, 2, 0x3), CHANNEL_TONES[2:4], [FL, FR]),
            (PcmFormat(48000, 32, 6, 0x3F), CHANNEL_TONES[:6], [0, 1, 2, 3, 4, 5]),
        ]
        for fmt, freqs, sink_channels in parts:
            res = udp_scenario(pulse, pulse.sink48, fmt, tones(fmt.rate, 0.8, freqs), service=service,
                               latency=SAFE_LATENCY, tail=0.2)
            assert player.running
            for k, sink_ch in enumerate(sink_channels):
                got = dominant_freq(res.recorded[:, sink_ch], res.rate)
                assert got == pytest.approx(freqs[k], abs=4), f"{fmt.describe()}: channel {sink_ch} has {got:.0f} Hz"
        assert player.stats.format_changes == 2
        assert service.stats()["bad_packets"] == 0
    finally:
        service.stop()


def test_a_clean_stream_after_garbage_is_intact(pulse):
    """Garbage first, then a normal stream on the same service: the stream is bit-accurate."""
    service = AudioService(service_config(pulse, pulse.sink48, "udp://127.0.0.1:0", SAFE_LATENCY))
    service.start()
    try:
        src = service.sources[0]
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for packet in BAD_DATAGRAMS * 20:
                s.sendto(packet, ("127.0.0.1", src.port))
        fmt = PcmFormat(48000, 16, 2, 0x3)
        res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 1.2, CHANNEL_TONES[:2]), service=service,
                           latency=SAFE_LATENCY)
        assert src.bad_packets >= len(BAD_DATAGRAMS) * 20 - 20  # empty datagrams may be merged away
        _assert_tones(res, [FL, FR])
    finally:
        service.stop()


def test_a_second_sender_is_dropped_and_counted_until_the_first_goes_quiet(caplog):
    """Two senders on one port would interleave into noise: the first one's stream plays, the other's
    datagrams are counted (one warning, not one per datagram) until the first has been silent for a
    second, and then the second one takes over."""
    from kvmfr_client.audio.scream_udp import SENDER_TIMEOUT

    jb = JitterBuffer()
    src = ScreamUdpSource(jb, "127.0.0.1", 0)
    fmt = PcmFormat(48000, 16, 2, 0x3)
    packet = scream_wire.udp_header(fmt) + bytes(1152)
    first, second = ("192.0.2.1", 4010), ("192.0.2.2", 4010)
    try:
        for k in range(100):
            src.handle_datagram(packet, k * 0.006, first)
            src.handle_datagram(packet, k * 0.006, second)
        assert (src.packets, src.foreign_packets, src.sender) == (100, 100, first)
        assert sum("while 192.0.2.1:4010 is sending" in r.getMessage() for r in caplog.records) == 1
        later = 99 * 0.006 + SENDER_TIMEOUT + 0.01
        src.handle_datagram(packet, later, second)
        assert (src.packets, src.sender) == (101, second)
        src.handle_datagram(packet, later + 0.006, first)
        assert src.foreign_packets == 101
    finally:
        src.stop()
