"""The microphone's recording state without a sound server or a SPICE server: the reader is replaced by a
fake, the SPICE loop by direct calls. What "Microphone on" and recording say after the recording ends
any way, one stop signal per reader, a new format while recording, and a refused START."""

from __future__ import annotations

import asyncio
import struct
import threading
import time
import types

import pytest

from kvmfr_client.audio.mic import Microphone
from kvmfr_client.spice import protocol as P
from kvmfr_client.spice.errors import SpiceProtocolError
from kvmfr_client.spice.link import Address
from kvmfr_client.spice.record import RecordChannel


def _mic(record):
    loop = asyncio.new_event_loop()
    loop.close()   # stop() takes the closed-loop path: no loop needed
    spice = types.SimpleNamespace(client=types.SimpleNamespace(on_state=None, main=None), loop=loop,
                                  call=lambda fn, *args: fn(*args))
    mic = Microphone(spice, "allow")
    alerts: list[str] = []
    mic.on_alert = lambda kind, text: alerts.append(text)
    mic.channel = types.SimpleNamespace(recording=True, channels=2, rate=48000)
    mic._record = record
    return mic, alerts


def _until(cond, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


def test_a_failing_reader_ends_the_recording_and_its_indicator():
    def record(channel, channels, rate, stop):
        return   # the real one returns when its stream fails (PulseError, logged)

    mic, alerts = _mic(record)
    mic._start_recording()
    assert _until(lambda: not mic.recording)
    assert alerts == ["Microphone on (ScrollLock+E stops)", "Microphone unavailable (see the log)"]
    mic.stop()


def _waiting_reader(formats, events):
    def record(channel, channels, rate, stop):
        formats.append((channels, rate))
        events.append(stop)
        stop.wait(5)
    return record


@pytest.mark.parametrize("how", ["lost", "stop"])
def test_the_indicator_goes_when_recording_ends_with_the_session(how):
    formats, events = [], []
    mic, alerts = _mic(_waiting_reader(formats, events))
    mic._start_recording()
    assert _until(lambda: events)
    if how == "lost":
        mic._session_state("lost")
    else:
        mic.stop()
    assert not mic.recording and events[0].is_set()
    assert alerts == ["Microphone on (ScrollLock+E stops)", "Microphone off"]
    mic.stop()
    assert alerts[-1] == "Microphone off" and len(alerts) == 2


def test_stopping_on_the_loop_does_not_wait_for_the_reader():
    entered = threading.Event()

    def stubborn(channel, channels, rate, stop):   # a read that takes its time to return
        entered.set()
        time.sleep(0.5)

    mic, _ = _mic(stubborn)
    mic._start_recording()
    assert entered.wait(2)
    t0 = time.monotonic()
    mic._stop_recording()
    assert time.monotonic() - t0 < 0.1
    mic.stop()   # the window's thread waits for it
    assert mic._reader is None


def test_a_new_format_while_recording_restarts_the_reader_with_its_own_stop():
    formats, events = [], []
    mic, alerts = _mic(_waiting_reader(formats, events))
    mic._start_recording()
    assert _until(lambda: len(events) == 1)
    mic._start_recording()                              # the same START again: nothing changes
    mic.channel.channels, mic.channel.rate = 1, 44100   # a START in another format
    mic._start_recording()
    assert _until(lambda: len(events) == 2)
    assert formats == [(2, 48000), (1, 44100)]
    assert events[0] is not events[1] and events[0].is_set() and not events[1].is_set()
    assert mic.recording and alerts == ["Microphone on (ScrollLock+E stops)"]
    mic.stop()
    assert events[1].is_set() and not mic.recording


def test_a_refused_start_leaves_the_channel_not_recording():
    link = types.SimpleNamespace(writer=None, reader=None)
    channel = RecordChannel(link, Address("127.0.0.1", 5900))
    stops = []
    channel.on_stop = lambda: stops.append(1)
    channel.handle(P.RecordServerMsg.START, struct.pack("<IHI", 2, P.AUDIO_FMT_S16, 48000))
    assert channel.recording
    with pytest.raises(SpiceProtocolError):
        channel.handle(P.RecordServerMsg.START, struct.pack("<IHI", 2, P.AUDIO_FMT_S16, 1000))
    assert not channel.recording and stops == [1]
    with pytest.raises(SpiceProtocolError):   # refused while not recording: nothing to stop
        channel.handle(P.RecordServerMsg.START, struct.pack("<IHI", 9, P.AUDIO_FMT_S16, 48000))
    assert not channel.recording and stops == [1]
