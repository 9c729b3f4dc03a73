"""The Scream UDP steady state runs in the native pump (native/scream_pump.c): most packets are played
without Python, and what comes out is the same tones, on the right speakers."""

from __future__ import annotations

from kvmfr_client.audio import AudioService
from kvmfr_client.audio.formats import PcmFormat
from tests.audio.helpers import SAFE_LATENCY, service_config, udp_scenario
from tests.audio.signals import CHANNEL_TONES, tones
from tests.audio.test_scream_udp import FL, FR, _assert_tones


def test_most_16bit_packets_are_pumped_and_play_intact(pulse):
    fmt = PcmFormat(48000, 16, 2, 0x3)
    service = AudioService(service_config(pulse, pulse.sink48, "udp://127.0.0.1:0", SAFE_LATENCY))
    service.start()
    try:
        source = service.sources[0]
        res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 1.5, CHANNEL_TONES[:2]), service=service,
                           latency=SAFE_LATENCY)
        pumped, packets = source.pumped, source.packets
        chunks = service.player.stats.chunks
    finally:
        service.stop()
    _assert_tones(res, [FL, FR])
    assert packets > 200 and chunks >= packets - 5
    assert pumped > 0.8 * packets, f"{pumped} of {packets} packets pumped"
