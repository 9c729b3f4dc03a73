"""Fuzz every SPICE message parser the guest (or a hostile server) influences.

Records, ``kind % 5``:

* 0 main channel (with the clipboard agent attached): the bytes are a u16 message type and its payload,
  handed to ``Channel.dispatch`` as the reader task would: INIT, MOUSE_MODE, AGENT_CONNECTED(_TOKENS),
  AGENT_DATA (VDAgent messages, clipboard chunking, capability and type counts), AGENT_TOKEN, NOTIFY,
  SET_ACK, PING, and everything unknown (monitors config and the rest have no parser: ignored);
* 1 inputs channel, the same way (INIT, KEY_MODIFIERS, MOUSE_MOTION_ACK);
* 2 playback channel, the same way (START, DATA, VOLUME, MUTE, MODE, LATENCY);
* 3 a byte stream read by a main channel's reader task, with the mini header when ``arg`` is odd and the
  full header otherwise (framing, the 1 MiB message cap);
* 4 the link handshake: the bytes are what the server answers.

``dispatch`` documents that it raises nothing (a refused message is counted): any exception is a finding.
The reader task ends with ``SpiceServerGone`` at the end of the stream and the handshake refuses with a
``SpiceError`` subclass; those are the documented outcomes, every other exception is a finding. Checked:
the agent's assembly buffer never holds more than one message under the cap plus one AGENT_DATA piece.
"""

from __future__ import annotations

import asyncio
import struct

import atheris

from _harness import main, records

with atheris.instrument_imports(include=["kvmfr_client.spice", "kvmfr_client.audio.spice_playback"]):
    from kvmfr_client.audio.jitter_buffer import JitterBuffer
    from kvmfr_client.audio.spice_playback import PlaybackChannel
    from kvmfr_client.spice import protocol as P
    from kvmfr_client.spice.agent import MAX_CLIPBOARD, MESSAGE_HEADER, ClipboardAgent
    from kvmfr_client.spice.errors import SpiceError
    from kvmfr_client.spice.inputs import InputsChannel
    from kvmfr_client.spice.link import Address, Link, _handshake
    from kvmfr_client.spice.main import MainChannel

ADDRESS = Address("fuzz", 5900)
LOOP = asyncio.new_event_loop()
asyncio.set_event_loop(LOOP)
_TYPE = struct.Struct("<H")


class Writer:
    """Stands in for the socket: counts what the client sends (replies, acks, agent data)."""

    def __init__(self):
        self.sent = 0

    def write(self, data: bytes) -> None:
        self.sent += len(data)

    def is_closing(self) -> bool:
        return False

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        pass

    async def drain(self) -> None:
        pass


class Player:
    def __init__(self):
        self.buffer = JitterBuffer(max_seconds=0.5)

    def set_volume(self, volume: float) -> None:
        assert 0.0 <= volume <= 1.0, volume

    def set_mute(self, mute: bool) -> None:
        pass


def _link(channel_type: int, mini: bool = True, reader=None) -> Link:
    return Link(reader, Writer(), channel_type, 0, mini, [], [1])


def _main(reader=None, mini: bool = True):
    channel = MainChannel(_link(P.ChannelType.MAIN, mini, reader), ADDRESS)
    agent = ClipboardAgent(channel)
    agent.on_guest_text = lambda text: None
    agent.on_guest_image = lambda kind, data: None
    return channel, agent


def _message(channel, payload: bytes) -> None:
    if len(payload) < 2:
        return
    channel.dispatch(_TYPE.unpack_from(payload)[0], payload[2:])


async def _stream(payload: bytes, mini: bool) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(payload)
    reader.feed_eof()
    channel, _ = _main(reader, mini)
    try:
        await channel._run()
    except SpiceError:
        pass  # the end of the stream: SpiceServerGone


async def _handshake_with(reply: bytes) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(reply)
    reader.feed_eof()
    try:
        await _handshake(reader, Writer(), ADDRESS, P.ChannelType.MAIN, 0, 0, None, (), (2, 2))
    except SpiceError:
        pass  # refused: the documented outcome of a bad reply


def TestOneInput(data: bytes) -> None:
    main_channel, agent = _main()
    inputs = InputsChannel(_link(P.ChannelType.INPUTS), ADDRESS)
    playback = PlaybackChannel(_link(P.ChannelType.PLAYBACK), ADDRESS, Player())
    for kind, arg, payload in records(data):
        op = kind % 5
        if op == 0:
            _message(main_channel, payload)
            assert len(agent._inbox) <= MESSAGE_HEADER.size + MAX_CLIPBOARD + P.MAX_MESSAGE_SIZE
        elif op == 1:
            _message(inputs, payload)
        elif op == 2:
            _message(playback, payload)
            assert playback.player.buffer.level() <= 0.5 + P.MAX_MESSAGE_SIZE / 4 / 8000
        elif op == 3:
            LOOP.run_until_complete(_stream(payload, bool(arg & 1)))
        else:
            LOOP.run_until_complete(_handshake_with(payload))


if __name__ == "__main__":
    main(TestOneInput)
