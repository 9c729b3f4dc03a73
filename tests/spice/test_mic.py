"""The microphone over the SPICE record channel, against a local server playing spice-server's part: a
1 kHz tone played into a PulseAudio null sink is recorded from its monitor (audio:micSource) and
arrives as DATA once the user allows it (audio:micDefault=prompt, then ScrollLock+E's toggle); the
guest's capture volume and mute scale it; STOP ends it. (tests/spice/test_mic_qemu.py: a real QEMU.)"""

from __future__ import annotations

import asyncio
import struct
import threading
import time

import numpy as np
import pytest

from kvmfr_client.audio import pulse
from kvmfr_client.audio.formats import SINK_7_1_POSITIONS
from kvmfr_client.audio.mic import Microphone
from kvmfr_client.spice.client import SpiceClient, SpiceThread
from kvmfr_client.spice.link import Address
from kvmfr_client.spice.record import RecordClientMsg, RecordServerMsg
from tests.spice.fake_server import FakeSpiceServer
from tests.support.pulse import running_pulse

TONE_HZ = 1000.0
RATE = 48000


@pytest.fixture(scope="module")
def pulse_daemon():
    with running_pulse() as daemon:
        yield daemon


class Tone:
    """A stereo sine at 0.5 full scale played into a null sink (8-channel float32) until stopped."""

    def __init__(self, server: str, sink: str):
        self._stream = pulse.SimpleStream(pulse.StreamSpec(pulse.SAMPLE_FLOAT32LE, RATE, SINK_7_1_POSITIONS),
                                          server=server, device=sink, stream_name="test tone",
                                          tlength=RATE // 50 * 32)
        self._stop = threading.Event()
        self.started_at: float | None = None   # monotonic time its first sample was written
        self._thread = threading.Thread(target=self._play, name="test-tone", daemon=True)

    def _play(self) -> None:
        n = 0
        block = RATE // 100
        while not self._stop.is_set():
            t = (np.arange(block) + n) / RATE
            frames = np.zeros((block, 8), dtype="<f4")
            frames[:, 0] = frames[:, 1] = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
            if self.started_at is None:
                self.started_at = time.monotonic()
            self._stream.write(frames.tobytes())
            n += block

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)
        self._stream.close()


def peak_hz(pcm: np.ndarray) -> float:
    """The strongest frequency of a mono signal (Hz)."""
    window = pcm * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(window))
    return float(np.argmax(spectrum[1:]) + 1) * RATE / len(pcm)


def test_the_host_microphone_reaches_the_record_channel_when_allowed(pulse_daemon):
    alerts: list[str] = []
    got: dict = {}
    holder: dict = {}

    async def record(reader, writer):
        async def message():
            msg_type, size = struct.unpack("<HI", await reader.readexactly(6))
            return msg_type, await reader.readexactly(size)

        async def audio(seconds: float) -> np.ndarray:
            """The next ``seconds`` of DATA (stereo S16), as a float array."""
            chunks, frames = [], 0
            while frames < seconds * RATE:
                msg_type, body = await asyncio.wait_for(message(), 5)
                if msg_type == RecordClientMsg.DATA:
                    pcm = np.frombuffer(body[4:], dtype="<i2").reshape(-1, 2)
                    chunks.append(pcm)
                    frames += len(pcm)
                else:
                    got.setdefault("other", []).append((msg_type, body))
            return np.concatenate(chunks).astype(np.float64) / 32768

        writer.write(struct.pack("<HIIHI", RecordServerMsg.START, 10, 2, 1, RATE))
        # audio:micDefault=prompt: nothing is sent until the user allows it
        try:
            early = await asyncio.wait_for(message(), 0.5)
        except asyncio.TimeoutError:
            early = None
        got["before allowed"] = early
        await asyncio.get_running_loop().run_in_executor(None, holder["mic"].toggle)   # ScrollLock+E
        got["full"] = await audio(0.6)
        writer.write(struct.pack("<HIBHH", RecordServerMsg.VOLUME, 5, 2, 32768, 32768))  # guest volume: half
        await audio(0.1)   # blocks already in flight
        got["half"] = await audio(0.3)
        writer.write(struct.pack("<HIB", RecordServerMsg.MUTE, 1, 1))
        await audio(0.1)
        got["muted"] = await audio(0.2)
        writer.write(struct.pack("<HI", RecordServerMsg.STOP, 0))
        late = 0   # what was in flight when the guest stopped, then nothing for 0.3 s
        while True:
            try:
                await asyncio.wait_for(message(), 0.3)
                late += 1
            except asyncio.TimeoutError:
                break
        got["after stop"] = late

    with FakeSpiceServer(record=record) as server, Tone(pulse_daemon.server, "kvmfr_test_48k"):
        client = SpiceClient(Address.parse(server.address), backoff=(0.1, 0.5))
        spice = SpiceThread(client)
        mic = holder["mic"] = Microphone(spice, "prompt", source="kvmfr_test_48k.monitor",
                                         server=pulse_daemon.server)
        mic.on_alert = lambda text, seconds: alerts.append(text)
        mic.start()
        spice.start()
        try:
            assert server.agent_done.wait(30), "the record channel script did not finish within 30 s"
        finally:
            mic.stop()
            spice.stop()
        assert server.agent_error is None, repr(server.agent_error)
    assert got["before allowed"] is None, "audio went to the guest before the user allowed the microphone"
    modes = [(t, b) for t, b in got.get("other", []) if t == RecordClientMsg.MODE]
    assert modes and struct.unpack_from("<IH", modes[0][1])[1] == 1, "no raw-PCM MODE before the data"
    full, half, muted = got["full"], got["half"], got["muted"]
    assert abs(peak_hz(full[:, 0]) - TONE_HZ) < 5 and abs(peak_hz(full[:, 1]) - TONE_HZ) < 5
    rms_full = float(np.sqrt(np.mean(full[-RATE // 5:] ** 2)))
    rms_half = float(np.sqrt(np.mean(half ** 2)))
    assert 0.3 < rms_full < 0.4, f"the tone (0.5 full scale, RMS 0.354) arrived at RMS {rms_full:.3f}"
    assert abs(rms_half / rms_full - 0.5) < 0.05, f"guest volume 0.5 gave {rms_half / rms_full:.3f}"
    assert float(np.max(np.abs(muted))) == 0.0, "the guest muted its microphone but sound still arrived"
    assert alerts[0].startswith("The VM wants the microphone"), alerts
    assert "Microphone on (ScrollLock+E stops)" in alerts and alerts[-1] == "Microphone off", alerts
    assert not mic.recording and got["after stop"] <= 5, got["after stop"]
