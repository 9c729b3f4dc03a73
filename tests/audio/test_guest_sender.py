"""The Linux guest sender (``kvmfr-agent audio``): a guest application plays into the guest's sink, the
agent records its monitor and sends Scream; our receiver plays it on the host sink, which is recorded."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from kvmfr_client.audio import AudioService
from kvmfr_client.audio import pulse as pulse_api
from kvmfr_client.audio.formats import SINK_7_1_POSITIONS
from tests.audio.helpers import Result, service_config
from tests.audio.signals import CHANNEL_TONES, tones
from tests.support.vm import free_port
from tests.audio.test_scream_udp import FL, FR, SAFE_LATENCY, _assert_tones
from tests.support.process import stop_process


def _play_as_guest_app(pulse, signal: np.ndarray) -> None:
    """A guest application playing ``signal`` (48 kHz stereo float32) on the guest's sink, in real time."""
    spec = pulse_api.StreamSpec(pulse_api.SAMPLE_FLOAT32LE, 48000, SINK_7_1_POSITIONS[:2])
    stream = pulse_api.PlaybackStream(spec, server=pulse.server, device=pulse.guest_sink, stream_name="guest app",
                                   tlength=48000 // 10 * 8, prebuf=48000 // 20 * 8)
    try:
        block = 480
        t0 = time.monotonic()
        for i in range(0, len(signal), block):
            delay = t0 + i / 48000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stream.write(np.ascontiguousarray(signal[i:i + block]).tobytes())
        time.sleep(0.2)
    finally:
        stream.close()


def _start_sender(pulse, *args: str) -> subprocess.Popen:
    """``kvmfr-agent audio`` recording the guest sink's monitor; ``args`` say where it sends."""
    return subprocess.Popen([sys.executable, "-m", "guest_agent.audio", *args, "--source",
                             pulse.guest_sink + ".monitor", "--server", pulse.server],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _guest_to_host(pulse, agent_args: list[str], source: str, latency: int, signal: np.ndarray,
                   lead: float = 0.0) -> tuple[str, dict, np.ndarray]:
    """The agent (``agent_args``) sends what a guest application plays (``signal``, after ``lead`` seconds)
    to our player on ``source``; (the agent's output, the player's stats, the host sink's recording)."""
    agent = _start_sender(pulse, *agent_args)
    service = AudioService(service_config(pulse, pulse.sink48, source, latency))
    try:
        time.sleep(1.0)  # the agent's interpreter start-up, and it creating the ring
        assert agent.poll() is None, agent.stdout.read()
        service.start()
        with pulse.recorder(pulse.sink48) as rec:
            time.sleep(lead)
            _play_as_guest_app(pulse, signal)
            time.sleep(0.3)
        stats = service.stats()
    finally:
        service.stop()
        out = stop_process(agent)
    assert agent.returncode == 0, out
    return out, stats, rec.audio()


@pytest.mark.parametrize("transport", ["udp", "ivshmem"])
def test_agent_sends_what_the_guest_plays(pulse, shm_path, transport):
    if transport == "udp":
        port = free_port(udp=True)
        source = f"udp://127.0.0.1:{port}"
        agent_args = ["--udp", f"127.0.0.1:{port}"]
        latency = SAFE_LATENCY
    else:
        source = f"ivshmem:{shm_path}"
        agent_args = ["--ivshmem", str(shm_path), "--ivshmem-size", "1"]
        latency = SAFE_LATENCY + 20
    signal = tones(48000, 1.5, CHANNEL_TONES[:2])
    out, stats, recorded = _guest_to_host(pulse, agent_args, source, latency, signal, lead=0.2)
    assert "sending 48000 Hz 16-bit 2 ch" in out
    res = Result(recorded, signal, 48000, None, stats)
    _assert_tones(res, [FL, FR])


def test_agent_stops_sending_on_silence_and_the_player_calls_it_a_pause(pulse):
    """--silence-threshold (Scream's SilenceThreshold): nothing is sent while the guest is silent; the
    host player sees a pause, not an underrun, and plays the sound after it."""
    port = free_port(udp=True)
    tone = tones(48000, 0.6, CHANNEL_TONES[:2], marker=False)
    gap = np.zeros((int(0.8 * 48000), 2), np.float32)
    _, stats, recorded = _guest_to_host(pulse, ["--udp", f"127.0.0.1:{port}", "--silence-threshold", "4800"],
                                        f"udp://127.0.0.1:{port}", SAFE_LATENCY, np.concatenate([tone, gap, tone]))
    # 2 x 0.6 s of tone is ~200 datagrams; 0.8 s of silence would have added ~133 more.
    assert 150 < stats["packets"] < 300, stats
    assert stats["idle_gaps"] >= 1 and stats["underruns"] == 0, stats
    x = recorded[:, FL]
    loud = np.abs(x) > 0.05
    assert loud.sum() > 0.8 * 2 * len(tone), "both tone parts must be played"
