"""Wire formats, PCM conversion, channel masks, the jitter buffer and the drift controller (no sound server)."""

from __future__ import annotations

import numpy as np
import pytest

from kvmfr_client.audio import formats, scream_wire
from kvmfr_client.audio.drift import DriftController, DriftResampler
from kvmfr_client.audio.formats import FormatError, PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer


@pytest.mark.parametrize("rate,marker", [(48000, 0x01), (96000, 0x02), (192000, 0x04), (44100, 0x81),
                                         (88200, 0x82), (176400, 0x84), (384000, 0x08), (352800, 0x88)])
def test_rate_marker_round_trip(rate, marker):
    assert scream_wire.rate_marker(rate) == marker
    assert scream_wire.rate_from_marker(marker) == rate


@pytest.mark.parametrize("rate", [22050 + 1, 32000, 0, 11025])
def test_rates_scream_cannot_express_are_refused(rate):
    with pytest.raises(FormatError):
        scream_wire.rate_marker(rate)


@pytest.mark.parametrize("packet,field", [
    (b"\x01\x10", "shorter"), (b"\x00\x10\x02\x03\x00", "multiplier"), (b"\x80\x10\x02\x03\x00", "multiplier"),
    (b"\x01\x14\x02\x03\x00", "bits"), (b"\x01\x10\x00\x03\x00", "channel"), (b"\x01\x10\x09\x03\x00", "channel"),
])
def test_impossible_headers_name_the_field(packet, field):
    with pytest.raises(FormatError, match=field):
        scream_wire.parse_udp_header(packet)


def test_header_round_trip_keeps_the_mask():
    fmt = PcmFormat(44100, 24, 8, 0x063F)
    assert scream_wire.parse_udp_header(scream_wire.udp_header(fmt) + b"\0" * 24) == fmt


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_decode_inverts_encode(bits):
    fmt = PcmFormat(48000, bits, 3, 0x7)
    x = np.random.default_rng(3).uniform(-0.9, 0.9, size=(100, 3)).astype(np.float32)
    y = formats.decode(fmt, formats.encode(fmt, x))
    assert y.shape == (100, 3)
    assert np.max(np.abs(y - x)) < 2.0 ** (1 - bits) * 1.01 + 1e-7


def test_24bit_sign_extension():
    fmt = PcmFormat(48000, 24, 1, 0)
    y = formats.decode(fmt, bytes([0x00, 0x00, 0x80, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF]))
    assert y[:, 0].tolist() == pytest.approx([-1.0, 1.0 - 2.0 ** -23, -(2.0 ** -23)])


def test_channel_masks_map_to_speaker_positions():
    P = formats
    assert formats.channel_positions(0x3, 2) == (P.POS_FRONT_LEFT, P.POS_FRONT_RIGHT)
    assert formats.channel_positions(0x3F, 6) == (P.POS_FRONT_LEFT, P.POS_FRONT_RIGHT, P.POS_FRONT_CENTER,
                                                  P.POS_LFE, P.POS_REAR_LEFT, P.POS_REAR_RIGHT)
    assert formats.channel_positions(0x63F, 8)[6:] == (P.POS_SIDE_LEFT, P.POS_SIDE_RIGHT)
    # A quad mask with back speakers puts channels 3 and 4 at the rear, not at centre/LFE.
    assert formats.channel_positions(0x33, 4) == (P.POS_FRONT_LEFT, P.POS_FRONT_RIGHT, P.POS_REAR_LEFT, P.POS_REAR_RIGHT)
    assert formats.channel_positions(0, 1) == (P.POS_MONO,)
    assert formats.channel_positions(0, 6) == formats.channel_positions(0x3F, 6)  # no mask: Windows default
    assert formats.channel_positions(0x3, 3)[2] == P.POS_FRONT_CENTER  # too few bits: default for 3
    assert len(set(formats.channel_positions(0x1, 8))) == 8


def test_jitter_buffer_keeps_format_boundaries_and_caps_size():
    a, b = PcmFormat(48000, 16, 2, 3), PcmFormat(44100, 16, 2, 3)
    jb = JitterBuffer(max_seconds=0.05)
    jb.push(a, np.zeros((480, 2), np.float32))
    jb.push(b, np.ones((441, 2), np.float32))
    assert jb.level() == pytest.approx(0.02)
    assert jb.pop(0).fmt == a and jb.pop(0).fmt == b and jb.pop(0.01) is None
    for _ in range(10):
        jb.push(a, np.zeros((480, 2), np.float32))
    assert jb.level() <= 0.05 + 1e-9 and jb.overflow_frames == 5 * 480


def test_resampler_is_bit_exact_at_ratio_one_and_clean_when_correcting():
    x = np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000).astype(np.float32)[:, None]
    r = DriftResampler(1)
    out = np.concatenate([r.process(x[i:i + 288], 1.0) for i in range(0, len(x), 288)])
    assert np.array_equal(out[2:, 0], x[:len(out) - 2, 0])
    r = DriftResampler(1)
    out = np.concatenate([r.process(x[i:i + 288], 1.001) for i in range(0, len(x), 288)])
    ideal = np.sin(2 * np.pi * 1000 * (1.001 * np.arange(len(out)) - 2) / 48000)
    err = out[10:, 0] - ideal[10:]
    assert 10 * np.log10(np.sum(ideal[10:] ** 2) / np.sum(err ** 2)) > 80


@pytest.mark.parametrize("drift_ppm", [-300, 0, 80, 500])
def test_drift_controller_holds_the_queue_for_an_hour(drift_ppm):
    """Simulated: the guest's clock runs drift_ppm fast; an hour of 6 ms packets must neither grow nor
    drain the queue, and the learned ratio must match the drift."""
    target, dt = 0.020, 0.006
    ctl = DriftController(target)
    queued = target
    levels = []
    for step in range(int(3600 / dt)):
        ratio = ctl.ratio
        queued += dt * (1 + drift_ppm * 1e-6) - dt * ratio  # input arrives faster than we play it
        ctl.update(queued + 0.0005 * np.sin(step), dt)  # with measurement noise
        if step % 1000 == 0:
            levels.append(queued)
    late = np.array(levels[len(levels) // 2:])
    assert np.all(np.abs(late - target) < 0.001), (late.min(), late.max())  # on target, not near it
    assert np.all(np.abs(np.array(levels) - target) < 0.010)
    if drift_ppm:
        assert ctl.ratio - 1 == pytest.approx(drift_ppm * 1e-6, rel=0.3, abs=20e-6)
