"""The microphone over the SPICE record channel, against a local server playing spice-server's part: a
1 kHz tone played into a PulseAudio null sink is recorded from its monitor (audio:micSource) and
arrives as DATA once the user allows it (audio:micDefault=prompt, then ScrollLock+E through the viewer's
input controller); the
guest's capture volume and mute scale it; STOP ends it. Then with a real QEMU: the tone reaches the test
guest's sound card (AC'97 on QEMU's SPICE audio back end), whose capture device the guest records."""

from __future__ import annotations

import asyncio
import logging
import re
import struct
import threading
import time

import numpy as np
import pytest

from kvmfr_client import config
from kvmfr_client.audio import pulse
from kvmfr_client.audio.formats import SINK_7_1_POSITIONS
from kvmfr_client.audio.mic import Microphone
from kvmfr_client.cli.services import start_services, stop_services
from kvmfr_client.input.events import KeyEvent
from kvmfr_client.spice.client import SpiceClient, SpiceThread
from kvmfr_client.spice.link import Address
from kvmfr_client.spice.record import RecordClientMsg, RecordServerMsg
from tests.spice.fake_server import FakeSpiceServer
from tests.support.pulse import running_pulse

TONE_HZ = 1000.0
KEY_E = 18   # evdev
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
        self.started_at: float | None = None   # when its first sample was written (perf_counter)
        self._thread = threading.Thread(target=self._play, name="test-tone", daemon=True)

    def _play(self) -> None:
        n = 0
        block = RATE // 100
        while not self._stop.is_set():
            t = (np.arange(block) + n) / RATE
            frames = np.zeros((block, 8), dtype="<f4")
            frames[:, 0] = frames[:, 1] = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
            if self.started_at is None:
                self.started_at = time.perf_counter()   # the serial log's clock
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
        await asyncio.get_running_loop().run_in_executor(None, holder["mic"])   # ScrollLock+E
        got["full"] = await audio(0.6)
        # Blocks recorded before the client took a message in may still be on their way: up to 0.4 s on
        # a loaded machine (Pulse hands a late reader several blocks at once), so only what comes after counts.
        writer.write(struct.pack("<HIBHH", RecordServerMsg.VOLUME, 5, 2, 32768, 32768))  # guest volume: half
        await audio(0.4)
        got["half"] = await audio(0.3)
        writer.write(struct.pack("<HIB", RecordServerMsg.MUTE, 1, 1))
        await audio(0.4)
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
        # The viewer's own wiring: its services build the microphone from the options and register
        # ScrollLock+E; the key presses go to its input controller as the window would send them.
        cfg = config.load([f"spice:port={server.port}", "spice:clipboard=no", "audio:micDefault=prompt",
                           "audio:micSource=kvmfr_test_48k.monitor", f"audio:server={pulse_daemon.server}"],
                          user_file=False)
        viewer_input, audio = start_services(cfg)
        mic = viewer_input.microphone
        mic.on_alert = lambda kind, text: alerts.append((kind, text, mic.recording))
        escape = cfg["input:escapeKey"]
        holder["mic"] = lambda: [viewer_input.controller.handle(KeyEvent(code, down))
                                 for code, down in ((escape, True), (KEY_E, True), (KEY_E, False), (escape, False))]
        try:
            assert server.agent_done.wait(30), "the record channel script did not finish within 30 s"
        finally:
            stop_services(viewer_input, audio)
        assert server.agent_error is None, repr(server.agent_error)
    assert got["before allowed"] is None, "audio went to the guest before the user allowed the microphone"
    modes = [(t, b) for t, b in got.get("other", []) if t == RecordClientMsg.MODE]
    assert modes and struct.unpack_from("<IH", modes[0][1])[1] == 1, "no raw-PCM MODE before the data"
    full, half, muted = got["full"], got["half"], got["muted"]
    assert abs(peak_hz(full[:, 0]) - TONE_HZ) < 5 and abs(peak_hz(full[:, 1]) - TONE_HZ) < 5
    # Amplitudes, not RMS: a loaded machine may leave gaps in the tone's playback, but not scale it.
    amp_full = float(np.percentile(np.abs(full[RATE // 5:]), 99.5))
    amp_half = float(np.percentile(np.abs(half), 99.5))
    assert 0.45 < amp_full < 0.55, f"the tone (0.5 full scale) arrived at {amp_full:.3f}"
    assert abs(amp_half / amp_full - 0.5) < 0.05, f"guest volume 0.5 gave {amp_half / amp_full:.3f}"
    assert float(np.max(np.abs(muted))) == 0.0, "the guest muted its microphone but sound still arrived"
    # the question, then the indicator (up while recording), then its end when the guest closed the device
    assert [(text, on) for _, text, on in alerts] == [
        ("The VM wants the microphone: ScrollLock+E allows it", False),
        ("Microphone on (ScrollLock+E stops)", True), ("Microphone off", False)], alerts
    assert {kind for kind, _, _ in alerts} == {"mic"}
    assert not mic.recording and got["after stop"] <= 5, got["after stop"]


def test_recording_resumes_after_the_spice_session_reconnects(pulse_daemon):
    """The server goes away while the guest records; after the client reconnects, the guest's new START
    gets audio again (audio:micDefault=allow)."""
    sessions: list[int] = []

    async def record(reader, writer):
        sessions.append(len(sessions) + 1)
        writer.write(struct.pack("<HIIHI", RecordServerMsg.START, 10, 2, 1, RATE))
        frames = 0
        while frames < RATE // 10:   # 100 ms of DATA
            msg_type, size = struct.unpack("<HI", await asyncio.wait_for(reader.readexactly(6), 5))
            body = await reader.readexactly(size)
            if msg_type == RecordClientMsg.DATA:
                frames += (len(body) - 4) // 4
        if len(sessions) == 1:
            server.drop_main()
            await reader.read()   # until the client closes this record channel too
        else:
            done.set()

    done = threading.Event()
    with FakeSpiceServer(record=record) as server:
        client = SpiceClient(Address.parse(server.address), backoff=(0.05, 0.2))
        spice = SpiceThread(client)
        mic = Microphone(spice, "allow", source="kvmfr_test_48k.monitor", server=pulse_daemon.server).start()
        spice.start()
        try:
            assert done.wait(20), f"no audio after the reconnect (record sessions {sessions}, error {mic.error})"
        finally:
            mic.stop()
            spice.stop()
        assert server.agent_error is None, repr(server.agent_error)
    assert sessions[:2] == [1, 2] and client.connections >= 2


def _serial_line(serial, pattern: str, start: int, timeout: float) -> tuple[int, float, re.Match]:
    """The first serial line at or after index ``start`` matching ``pattern``: (index, arrival, match). The
    lines are not consumed (the clipboard tests read the same console)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    i = start
    while True:
        lines = serial.lines
        while i < len(lines):
            m = rx.search(lines[i][1])
            if m:
                return i, lines[i][0], m
            i += 1
        if time.monotonic() > deadline:
            pytest.fail(f"the guest printed no {pattern!r} within {timeout} s:\n{serial.text()[-2000:]}")
        time.sleep(0.005)


def test_a_tone_on_the_host_microphone_is_recorded_in_the_guest(guest_agent, pulse_daemon, record_property):
    serial = guest_agent.serial
    opened, _, m = _serial_line(serial, r"^MIC (open \d+|error.*)$", 0, 30)
    assert m.group(1).startswith("open"), m.group(0)
    client = SpiceClient(Address.parse(guest_agent.spice), backoff=(0.1, 0.5))
    spice = SpiceThread(client)
    mic = Microphone(spice, "allow", source="kvmfr_test_48k.monitor", server=pulse_daemon.server)
    mic.start()
    spice.start()
    try:
        deadline = time.monotonic() + 15   # QEMU sends START as soon as the record channel links
        while not (mic.recording and mic.blocks >= 20) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert mic.recording, f"the guest's open capture device never started the microphone: {mic.error}"
        with Tone(pulse_daemon.server, "kvmfr_test_48k") as tone:
            at, arrived, onset = _serial_line(serial, r"^MIC (onset \d+|timeout)$", opened, 15)
            assert onset.group(1) != "timeout", "the guest stopped recording (10 minutes after its boot)"
            _, _, freq = _serial_line(serial, r"^MIC freq (\d+) (\d+) (\d+)$", at, 15)
    finally:
        mic.stop()
        spice.stop()
    latency_ms = (arrived - tone.started_at) * 1000
    record_property("mic_latency_ms", round(latency_ms, 1))
    print(f"microphone: tone -> guest capture (onset seen on the serial line) {latency_ms:.1f} ms, "
          f"{freq.group(3)} quiet 10 ms blocks in the guest's recording")
    hz, rms = int(freq.group(1)), int(freq.group(2)) / 1000
    assert abs(hz - TONE_HZ) <= 20, f"the guest recorded {hz} Hz, not the {TONE_HZ:.0f} Hz tone"
    assert 0.2 < rms < 0.5, f"the guest recorded the tone at RMS {rms} (sent at 0.354)"
    assert 0 < latency_ms < 2000, latency_ms


def test_a_vm_without_a_spice_sound_card_costs_no_warning(qemu, caplog):
    """QEMU without -audiodev spice offers no record channel (its CHANNELS_LIST says so): the microphone
    stays off quietly instead of warning at every connection."""
    client = SpiceClient(Address.parse(qemu.spice), backoff=(0.1, 0.5))
    spice = SpiceThread(client)
    mic = Microphone(spice, "allow")
    mic.start()
    with caplog.at_level(logging.INFO, logger="kvmfr_client"):
        spice.start()
        try:
            deadline = time.monotonic() + 10
            while "offers no SPICE record channel" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            mic.stop()
            spice.stop()
    assert "offers no SPICE record channel" in caplog.text
    assert mic.channel is None and mic.error is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [w for w in warnings if "microphone" in w], warnings
