"""SPICE playback channel (raw S16, volume, mute) -> player -> recorded sink, against a SPICE server
that speaks the real link handshake (tests/audio/spice_server.py)."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from kvmfr_client.audio import AudioService, formats
from kvmfr_client.audio.formats import PcmFormat
from tests.audio.helpers import Result, service_config
from tests.audio.signals import CHANNEL_TONES, rms, tones
from tests.audio.spice_server import SESSION_ID, FakeSpiceServer, playback_script
from tests.audio.test_scream_udp import FL, FR, SAFE_LATENCY, _assert_tones

FMT = PcmFormat(48000, 16, 2, 0x3)


def _run(pulse, script, seconds):
    with FakeSpiceServer(script) as server:
        cfg = service_config(pulse, pulse.sink48, "", SAFE_LATENCY, **{"audio:spice": True, "spice:host": "127.0.0.1",
                                                                        "spice:port": server.port})
        service = AudioService(cfg)
        with pulse.recorder(pulse.sink48) as rec:
            service.start()
            try:
                assert server.done.wait(seconds + 10), "the SPICE playback script did not finish"
                time.sleep(0.4)
                stats = service.stats()
                source = service.sources[0]
            finally:
                service.stop()
        assert server.linked == [1, 5], f"linked channels {server.linked}: main then playback expected"
    return rec.audio(), stats, source


def test_raw_s16_comes_out_intact(pulse):
    signal = tones(48000, 1.5, CHANNEL_TONES[:2])
    recorded, stats, source = _run(pulse, playback_script([(formats.encode(FMT, signal), [])]), 1.5)
    assert source.channel.fmt == FMT
    _assert_tones(Result(recorded, signal, 48000, None, stats), [FL, FR])


def test_volume_and_mute_messages(pulse):
    part = tones(48000, 0.6, CHANNEL_TONES[:2], marker=False)
    pcm = formats.encode(FMT, part)
    volume = lambda v: (105, struct.pack("<B2H", 2, v, v))  # noqa: E731
    mute = lambda m: (106, struct.pack("<B", m))  # noqa: E731
    garbage = [(105, b""), (103, b"\x02\x00"), (106, b""), (101, b"\x00\x00")]  # malformed, all skipped
    script = playback_script([(pcm, []), (pcm, [volume(32768)] + garbage), (pcm, [mute(1)]),
                              (pcm, [mute(0), volume(65535)])])
    recorded, stats, source = _run(pulse, script, 2.4)
    x = recorded[:, FL]
    loud = np.nonzero(np.abs(x) > 0.02)[0]
    start = loud[0]
    n = len(part)
    levels = [rms(x[start + k * n + n // 5:start + (k + 1) * n - n // 5]) for k in range(4)]
    full = rms(part[:, 0])
    assert levels[0] > 0.9 * full, levels
    assert 0.4 * full < levels[1] < 0.6 * full, f"volume 50%: {levels}"
    assert levels[2] < 0.01 * full, f"muted: {levels}"
    assert levels[3] > 0.9 * full, f"unmuted at full volume: {levels}"
    assert source.bad_packets >= 3


def test_scream_and_spice_together_are_mixed_by_the_sound_server(pulse):
    """Both sources at once: each gets its own player and stream; the sink carries both tones."""
    from guest_agent.audio.scream_sender import ScreamUdpSender
    from tests.audio.signals import PacedSender, dominant_freq
    from tests.support.vm import free_port

    spice_tone = tones(48000, 1.5, (CHANNEL_TONES[0],) * 2, amplitude=0.3, marker=False)
    scream_tone = tones(48000, 1.5, (CHANNEL_TONES[3],) * 2, amplitude=0.3, marker=False)
    port = free_port(udp=True)
    with FakeSpiceServer(playback_script([(formats.encode(FMT, spice_tone), [])])) as server:
        cfg = service_config(pulse, pulse.sink48, f"udp://127.0.0.1:{port}", SAFE_LATENCY,
                             **{"audio:spice": True, "spice:host": "127.0.0.1", "spice:port": server.port})
        service = AudioService(cfg)
        sender = ScreamUdpSender(FMT, "127.0.0.1", port)
        with pulse.recorder(pulse.sink48) as rec:
            service.start()
            try:
                assert len(service.players) == 2
                pcm = formats.encode(FMT, scream_tone)
                PacedSender(lambda c: sender.send_raw(sender._header + c), pcm, 1152, 0.006).start().join()
                assert server.done.wait(10)
                time.sleep(0.3)
            finally:
                service.stop()
                sender.close()
    x = rec.audio()[:, FL].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 48000)
    for tone in (CHANNEL_TONES[0], CHANNEL_TONES[3]):
        band = (freqs > tone - 5) & (freqs < tone + 5)
        assert spectrum[band].max() > 0.2 * spectrum.max(), f"{tone} Hz missing from the mix"
    assert dominant_freq(x, 48000) in (pytest.approx(CHANNEL_TONES[0], abs=3), pytest.approx(CHANNEL_TONES[3], abs=3))


def test_links_the_playback_channel_of_qemus_spice_server(tmp_path):
    """Against the real spice-server in QEMU (-audiodev spice + an HDA codec): our session links main
    and playback and stays up. (No guest OS plays sound here, so no START/DATA arrive; the data path
    is covered above.)"""
    from kvmfr_client.audio.player import Player
    from tests.support.vm import start_qemu

    vm = start_qemu(tmp_path, name="audio", extra=["-audiodev", "spice,id=snd0", "-device", "intel-hda",
                                                    "-device", "hda-duplex,audiodev=snd0"])
    player = Player(latency_ms=40)
    from kvmfr_client.audio.spice_playback import SpicePlaybackSource

    source = SpicePlaybackSource(player, "127.0.0.1", vm.port)
    source.start()
    try:
        deadline = time.monotonic() + 10
        while source.connections == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.connections == 1, f"no playback channel: {source.error}"
        time.sleep(0.5)
        assert source.channel is not None and not source.channel.closed, source.error
    finally:
        source.stop()
        vm.stop()
    assert source.connections == 1  # it never had to reconnect


def test_joins_the_viewers_spice_session_instead_of_opening_a_second_one(pulse):
    """With the viewer's SPICE input client running, the playback channel is linked into its session
    (same connection id), so the two never disconnect each other."""
    from kvmfr_client.spice.client import SpiceClient, SpiceThread
    from kvmfr_client.spice.link import Address

    signal = tones(48000, 1.2, CHANNEL_TONES[:2])
    with FakeSpiceServer(playback_script([(formats.encode(FMT, signal), [])])) as server:
        states = []
        viewer_spice = SpiceThread(SpiceClient(Address("127.0.0.1", server.port),
                                               on_state=lambda state, detail: states.append(state)))
        viewer_spice.start()
        cfg = service_config(pulse, pulse.sink48, "", SAFE_LATENCY, **{"audio:spice": True})
        service = AudioService(cfg, spice=viewer_spice)
        try:
            with pulse.recorder(pulse.sink48) as rec:
                service.start()
                assert server.done.wait(15), f"no playback channel was linked; server saw {server.linked}"
                time.sleep(0.4)
                stats = service.stats()
            source = service.sources[0]
        finally:
            service.stop()
            viewer_spice.stop()
    assert server.linked == [1, 3, 5], "one session: the viewer's main and inputs, then our playback"
    assert server.connection_ids == [0, SESSION_ID, SESSION_ID]
    assert source.connections == 1 and "connected" in states  # the viewer's callback still ran
    _assert_tones(Result(rec.audio(), signal, 48000, None, stats), [FL, FR])
