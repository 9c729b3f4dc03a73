"""Scream UDP -> jitter buffer -> player -> a real PulseAudio null sink, recorded from its monitor.

The correctness tests run at helpers.SAFE_LATENCY so that a busy test machine cannot turn them into
latency tests; test_default_latency_is_measured runs the default target and reports what it measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from kvmfr_client import config
from kvmfr_client.audio.formats import PcmFormat
from tests.audio.helpers import SAFE_LATENCY, udp_scenario
from tests.audio.signals import CHANNEL_TONES, dominant_freq, rms, tones

SNR_16BIT_DB = 40.0

# Sink channel index for each speaker position (the test sinks are FL FR FC LFE RL RR SL SR).
FL, FR, FC, LFE, RL, RR, SL, SR = range(8)


def _max_gap_ms(times) -> float:
    return float(np.max(np.diff(times)) * 1000) if times and len(times) > 1 else 0.0


def _assert_tones(res, expected_sink_channels, rate=None, min_snr=SNR_16BIT_DB):
    """Channel i of what was sent must come out on sink channel expected_sink_channels[i], intact."""
    rate = rate or res.rate
    for sent_ch, sink_ch in enumerate(expected_sink_channels):
        snr = res.channel_snr(sent_ch, sink_ch)
        assert snr >= min_snr, (f"sent channel {sent_ch} on sink channel {sink_ch}: SNR {snr:.1f} dB < {min_snr}; "
                                f"player {res.service_stats}, max send gap {_max_gap_ms(res.send_times):.1f} ms")
        freq = dominant_freq(res.recorded[:, sink_ch], res.rate)
        assert freq == pytest.approx(CHANNEL_TONES[sent_ch], abs=3), f"sink channel {sink_ch} carries {freq:.1f} Hz"
    silent = set(range(8)) - set(expected_sink_channels)
    for ch in silent:
        assert rms(res.recorded[:, ch]) < 1e-3, f"sink channel {ch} should be silent"


def test_stereo_16bit_48k_comes_out_intact(pulse, record_property):
    fmt = PcmFormat(48000, 16, 2, 0x3)
    res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 1.5, CHANNEL_TONES[:2]), latency=SAFE_LATENCY)
    _assert_tones(res, [FL, FR])
    record_property("latency_ms", round(res.latency_ms, 2))
    print(f"\nScream UDP 48k/16/2 at a {SAFE_LATENCY} ms target: send -> sink {res.latency_ms:.1f} ms")


def test_default_latency_is_measured(pulse, record_property):
    """The default target (audio:latency's default): report the measured send -> sink latency and the
    underruns."""
    default = config.load([], user_file=False)["audio:latency"]
    assert default <= 20  # the issue: 20 ms or less by default
    fmt = PcmFormat(48000, 16, 2, 0x3)
    res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 2.0, CHANNEL_TONES[:2]), latency=default)
    underruns = res.service_stats["underruns"]
    record_property("latency_ms", round(res.latency_ms, 2))
    record_property("underruns", underruns)
    print(f"\nScream UDP 48k/16/2 at the default {default} ms target: send -> sink {res.latency_ms:.1f} ms, "
          f"{underruns} underruns, queue {res.service_stats['queued_ms']:.1f} ms")
    # Repeated underruns on a busy machine raise the target by 5 ms each (up to 50 ms): report, bound loosely.
    assert 5 < res.latency_ms < 60
    assert dominant_freq(res.recorded[:, FL], res.rate) == pytest.approx(CHANNEL_TONES[0], abs=3)


def test_7_1_24bit_each_channel_reaches_its_speaker(pulse):
    fmt = PcmFormat(48000, 24, 8, 0x063F)
    res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 1.2, CHANNEL_TONES), latency=SAFE_LATENCY)
    _assert_tones(res, [FL, FR, FC, LFE, RL, RR, SL, SR], min_snr=60)


def test_5_1_32bit_uses_the_channel_mask(pulse):
    fmt = PcmFormat(48000, 32, 6, 0x003F)
    res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 1.2, CHANNEL_TONES[:6]), latency=SAFE_LATENCY)
    _assert_tones(res, [FL, FR, FC, LFE, RL, RR], min_snr=60)


def test_quad_mask_puts_channels_3_and_4_at_the_rear(pulse):
    fmt = PcmFormat(48000, 16, 4, 0x0033)  # FL FR BL BR
    res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 1.2, CHANNEL_TONES[:4]), latency=SAFE_LATENCY)
    _assert_tones(res, [FL, FR, RL, RR])


def test_44k1_family_plays_at_its_own_rate(pulse):
    fmt = PcmFormat(44100, 16, 2, 0x3)
    res = udp_scenario(pulse, pulse.sink44, fmt, tones(44100, 1.5, CHANNEL_TONES[:2]), latency=SAFE_LATENCY)
    _assert_tones(res, [FL, FR])


@pytest.mark.parametrize("rate,sink", [(88200, "kvmfr_test_44k"), (96000, "kvmfr_test_48k")])
def test_multiplied_rates_keep_their_pitch(pulse, rate, sink):
    """88.2 and 96 kHz streams: if the rate byte were misread the tones would come out shifted."""
    fmt = PcmFormat(rate, 16, 2, 0x3)
    res = udp_scenario(pulse, sink, fmt, tones(rate, 1.2, CHANNEL_TONES[:2]), latency=SAFE_LATENCY)
    for ch in range(2):
        assert dominant_freq(res.recorded[:, ch], res.rate) == pytest.approx(CHANNEL_TONES[ch], abs=3)
        assert rms(res.recorded[:, ch]) > 0.2


def test_multicast_group_on_loopback(pulse):
    fmt = PcmFormat(48000, 16, 2, 0x3)
    res = udp_scenario(pulse, pulse.sink48, fmt, tones(48000, 1.2, CHANNEL_TONES[:2]), host="239.255.77.77",
                       interface="127.0.0.1", latency=SAFE_LATENCY)
    _assert_tones(res, [FL, FR])
