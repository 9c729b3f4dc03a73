"""Property-based tests (hypothesis) of what the guest's agent and a hostile server can send: the agent
stream gives the same clipboard however it is cut into AGENT_DATA pieces, an over-limit message in the
middle costs nothing but itself, and no message of any type or length makes a channel (main with the
clipboard agent, inputs, record) raise."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmfr_client.spice import protocol as P
from kvmfr_client.spice.agent import (MAX_CLIPBOARD, MESSAGE_HEADER, XFER_STATUS, AgentMsg, ClipboardAgent,
                                      ClipboardType, XferStatus)
from kvmfr_client.spice.inputs import InputsChannel
from kvmfr_client.spice.link import Address, Link
from kvmfr_client.spice.main import MainChannel
from kvmfr_client.spice.record import RecordChannel

ADDRESS = Address("test", 5900)


class _Writer:
    def __init__(self):
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


def _main():
    main = MainChannel(Link(None, _Writer(), P.ChannelType.MAIN, 0, True, [], []), ADDRESS)
    agent = ClipboardAgent(main)
    texts: list[str] = []
    agent.on_guest_text = texts.append
    main.dispatch(P.MainServerMsg.AGENT_CONNECTED_TOKENS, struct.pack("<I", 10))
    return main, agent, texts


def _vd(msg_type: int, body: bytes, size: int | None = None) -> bytes:
    return MESSAGE_HEADER.pack(1, msg_type, 0, len(body) if size is None else size) + body


def _feed(main: MainChannel, stream: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for a, b in zip(points, points[1:]):
        main.dispatch(P.MainServerMsg.AGENT_DATA, stream[a:b])


def test_only_the_image_type_asked_for_reaches_on_guest_image():
    """A CLIPBOARD of an image type we never asked for (or none we support) is ignored; the one asked for
    after the guest's grab is handed over once."""
    main, agent, _texts = _main()
    images: list[tuple[int, bytes]] = []
    agent.on_guest_image = lambda kind, data: images.append((kind, data))

    def clip(kind: int) -> None:
        main.dispatch(P.MainServerMsg.AGENT_DATA, _vd(AgentMsg.CLIPBOARD, struct.pack("<I", kind) + b"img"))
    clip(ClipboardType.BMP)   # not asked for
    main.dispatch(P.MainServerMsg.AGENT_DATA, _vd(AgentMsg.CLIPBOARD_GRAB, struct.pack("<I", ClipboardType.BMP)))
    clip(ClipboardType.PNG)   # another type than the one asked for
    clip(99)                  # a type nobody supports
    assert images == []
    clip(ClipboardType.BMP)
    clip(ClipboardType.BMP)   # the one answer was had
    assert images == [(ClipboardType.BMP, b"img")]


def _recording(agent: ClipboardAgent) -> list[tuple[int, bytes]]:
    sent: list[tuple[int, bytes]] = []
    queue = agent._queue

    def record(msg_type: int, data: bytes) -> None:
        sent.append((msg_type, data))
        queue(msg_type, data)
    agent._queue = record
    return sent


def test_a_fifo_is_not_opened_into_a_blocked_loop_and_a_shrunk_file_is_reported_to_the_guest(tmp_path):
    import os
    import threading
    main, agent, _texts = _main()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(agent.send_files([str(fifo)])), daemon=True)
    worker.start()
    worker.join(5)
    assert result == [[]], "send_files blocked on a FIFO"

    done: list = []
    agent.on_file_done = done.append
    path = tmp_path / "shrinks"
    path.write_bytes(b"x" * 200_000)
    sent = _recording(agent)
    (xfer,) = agent.send_files([str(path)])
    path.write_bytes(b"x" * 10)   # shorter than offered
    main.dispatch(P.MainServerMsg.AGENT_DATA, _vd(AgentMsg.FILE_XFER_STATUS, XFER_STATUS.pack(xfer.id, 0)))
    assert [r.result for r in done] == ["error"] and xfer.file is None
    assert (AgentMsg.FILE_XFER_STATUS, XFER_STATUS.pack(xfer.id, XferStatus.ERROR)) in sent


def test_transfers_in_progress_end_when_the_main_channel_closes(tmp_path):
    main, agent, _texts = _main()
    done: list = []
    agent.on_file_done = done.append
    path = tmp_path / "f"
    path.write_bytes(b"y" * 1000)
    (xfer,) = agent.send_files([str(path)])
    handle = xfer.file
    agent.main_closed()
    assert [r.result for r in done] == ["connection closed"] and handle.closed and not agent._xfers


texts = st.lists(st.text(max_size=300), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(texts, st.lists(st.integers(0, 1 << 16), max_size=40))
def test_clipboard_text_is_the_same_however_the_stream_is_cut(copied, cuts):
    stream = b"".join(_vd(AgentMsg.CLIPBOARD, struct.pack("<I", ClipboardType.UTF8_TEXT) + t.encode())
                      for t in copied)
    main, agent, got = _main()
    _feed(main, stream, cuts)
    assert got == copied
    assert agent.bad_messages == 0 and not agent._inbox


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5000), st.text(min_size=1, max_size=50), st.lists(st.integers(0, 1 << 16), max_size=20),
       st.integers(0, 4096))
def test_an_over_limit_message_is_skipped_and_the_next_one_arrives(over, text, cuts, tail_cut):
    claimed = MAX_CLIPBOARD + over
    stream = _vd(AgentMsg.CLIPBOARD, b"\xAA" * claimed) + _vd(AgentMsg.CLIPBOARD, b"\1\0\0\0" + text.encode())
    main, agent, got = _main()
    # Cut anywhere in the first 64 KiB and once near the end, where the refused message meets the next.
    _feed(main, stream, cuts + [len(stream) - tail_cut])
    assert got == [text]
    assert agent.refused_messages == 1 and agent.bad_messages == 0 and not agent._inbox


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 0xFFFF), st.binary(max_size=300))
def test_no_message_of_any_type_or_length_makes_a_channel_raise(msg_type, payload):
    main, agent, _ = _main()
    inputs = InputsChannel(Link(None, _Writer(), P.ChannelType.INPUTS, 0, True, [], []), ADDRESS)
    record = RecordChannel(Link(None, _Writer(), P.ChannelType.RECORD, 0, True, [], []), ADDRESS)
    for channel in (main, inputs, record):
        channel.dispatch(msg_type, payload)
        channel.dispatch(msg_type % 8 + 101, payload)   # the channels' own messages more often
    main.dispatch(P.MainServerMsg.AGENT_DATA, payload)
    # an agent message of a type we handle (file-transfer status, the guest's clipboard limit, ...)
    main.dispatch(P.MainServerMsg.AGENT_DATA, _vd(msg_type % 17, payload))
    record.send_pcm(payload, msg_type)   # whatever START (or none) came before


def test_a_guest_asking_for_the_clipboard_in_a_loop_cannot_grow_what_we_queue():
    """Each CLIPBOARD_REQUEST queues a copy of the host clipboard until the server's tokens let it through;
    a guest asking faster than it takes would make that queue grow without end."""
    from kvmfr_client.spice.agent import MAX_OUTBOX

    main, agent, _ = _main()
    agent.host_text = "h" * (4 * 2**20)  # 4 MiB on the host clipboard
    request = _vd(AgentMsg.CLIPBOARD_REQUEST, struct.pack("<I", ClipboardType.UTF8_TEXT))
    for _ in range(50):  # 200 MiB asked for; the server grants no tokens meanwhile
        main.dispatch(P.MainServerMsg.AGENT_DATA, request)
    assert agent._outbox_bytes <= MAX_OUTBOX
    assert agent.refused_requests >= 50 - MAX_OUTBOX // (4 * 2**20)


def test_host_clipboard_over_the_guest_agents_own_limit_is_not_offered(caplog):
    """The guest's agent says how much clipboard it takes (MAX_CLIPBOARD): larger host text is not offered,
    with one warning; text within it is."""
    main, agent, _ = _main()
    main.dispatch(P.MainServerMsg.AGENT_DATA, _vd(AgentMsg.MAX_CLIPBOARD, struct.pack("<i", 1000)))
    sent = len(main._writer.data)
    agent.set_host_text("ü" * 600)   # 1200 bytes of UTF-8
    assert len(main._writer.data) == sent, "a clipboard over the guest's limit was offered"
    assert "holds 1.2 KiB, over the 1000 bytes the guest takes; not offered" in caplog.text
    agent.set_host_text("ü" * 400)
    assert len(main._writer.data) > sent and agent.host_text == "ü" * 400


def test_a_server_that_stops_taking_the_microphone_gets_bounded_audio(caplog):
    """The record channel's socket backlog (what the server has not read) stops growing at MAX_BACKLOG:
    later microphone blocks are dropped with one warning."""
    from kvmfr_client.spice.record import MAX_BACKLOG

    class Stalled(_Writer):
        class transport:   # noqa: N801 (asyncio's attribute name)
            @staticmethod
            def get_write_buffer_size() -> int:
                return len(writer.data)

    writer = Stalled()
    record = RecordChannel(Link(None, writer, P.ChannelType.RECORD, 0, True, [], []), ADDRESS)
    record.dispatch(101, struct.pack("<IHI", 2, 1, 48000))   # START: stereo S16 48 kHz
    block = bytes(1920)   # 10 ms
    for i in range(500):   # 5 s of audio into a server that reads nothing
        record.send_pcm(block, i)
    assert MAX_BACKLOG < len(writer.data) <= MAX_BACKLOG + 2 * len(block)
    assert record.dropped_blocks > 300
    assert caplog.text.count("not taking the microphone's audio") == 1
