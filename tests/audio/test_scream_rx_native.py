"""The native Scream UDP receive path (native/scream_rx.c) against hostile datagrams, sent through a real
socket so that they arrive in one recvmmsg batch: truncated, short, empty, bad headers, a foreign sender,
a format change mid-batch and frames split across datagrams. What reaches the jitter buffer must be
exactly the owner's audio, in order, in the format it was sent in; every drop is counted by kind."""

from __future__ import annotations

import socket
import time

import numpy as np

from kvmfr_client.audio import formats, scream_wire
from kvmfr_client.audio.formats import PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.scream_udp import SENDER_TIMEOUT, ScreamUdpSource
from kvmfr_client.core.native import lib

STEREO = PcmFormat(48000, 16, 2, 0x3)
FIVE = PcmFormat(48000, 16, 5, 0x37)      # 10-byte frames: 1152-byte payloads split frames


def _ramp(fmt: PcmFormat, frames: int, offset: float = 0.0) -> np.ndarray:
    """Distinct, exactly representable 16-bit values per frame and channel, so order is checked."""
    k = np.arange(frames, dtype=np.float64)[:, None] * fmt.channels + np.arange(fmt.channels)
    return ((k % 30000) / 32768.0 + offset).astype(np.float32) * 0.5


def _sockets():
    owner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    owner.bind(("127.0.0.1", 0))
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind(("127.0.0.1", 0))
    return owner, intruder


def _drain(src: ScreamUdpSource, total: int) -> None:
    fd = src._sock.fileno()
    deadline = time.monotonic() + 5
    while src._block.datagrams < total and time.monotonic() < deadline:
        src.receive_once(fd, 200)
    assert src._block.datagrams == total, (int(src._block.datagrams), total)


def _chunks(jb: JitterBuffer):
    out = []
    while (c := jb.pop(0)) is not None:
        out.append(c)
    return out


def test_hostile_batch_keeps_only_the_owners_audio_in_order():
    jb = JitterBuffer(max_seconds=10.0)
    src = ScreamUdpSource(jb, host="127.0.0.1", port=0)
    owner, intruder = _sockets()
    dest = ("127.0.0.1", src.port)
    stereo_pcm = formats.encode(STEREO, _ramp(STEREO, 3 * 288))
    five_pcm = formats.encode(FIVE, _ramp(FIVE, 345))          # 3450 bytes: 1152 + 1152 + 1146
    h_stereo, h_five = scream_wire.udp_header(STEREO), scream_wire.udp_header(FIVE)
    sent = [
        (owner, h_stereo + stereo_pcm[0:1152]),
        (intruder, h_stereo + bytes(1152)),                    # foreign
        (owner, h_stereo + stereo_pcm[1152:2304]),
        (owner, h_stereo + b"\x11" * (scream_wire.MAX_PAYLOAD + 100)),   # over MAX_PACKET: truncated
        (owner, h_stereo[:3]),                                 # shorter than the header
        (owner, h_stereo),                                     # a header and no audio
        (owner, b"\x01\x11\x02\x03\x00" + bytes(1152)),        # 17 bits: refused in Python ...
        (owner, b"\x01\x11\x02\x03\x00" + bytes(1152)),        # ... then in C, twice
        (owner, b"\x01\x11\x02\x03\x00" + bytes(1152)),
        (owner, b"\x00\x10\x02\x03\x00" + bytes(1152)),        # rate multiplier 0
        (owner, h_stereo + stereo_pcm[2304:3456]),
        (owner, h_five + five_pcm[0:1152]),                    # format change mid-batch; 115.2 frames
        (intruder, h_five + bytes(1152)),                      # foreign, between two halves of a frame
        (owner, h_five + five_pcm[1152:2304]),
        (owner, h_five + five_pcm[2304:] + b"\x7f" * 4),       # ends in a partial frame ...
        (owner, h_stereo + stereo_pcm[0:1152]),                # ... that a format change drops
    ]
    try:
        for sock, packet in sent:
            sock.sendto(packet, dest)
        _drain(src, len(sent))
        b = src._block
        assert (int(b.foreign), int(b.bad_size), int(b.bad_short), int(b.bad_empty), int(b.bad_header)) == \
            (2, 1, 1, 1, 4)
        assert src.packets == 7 and src.bad_packets == 7 and src.foreign_packets == 2
        assert src.sender == owner.getsockname()

        chunks = _chunks(jb)
        assert [c.fmt for c in chunks] == [STEREO] * 3 + [FIVE] * 3 + [STEREO]
        assert [len(c.frames) for c in chunks] == [288, 288, 288, 115, 115, 115, 288]
        got_stereo = np.concatenate([c.frames for c in chunks[:3]])
        assert np.array_equal(got_stereo, formats.decode(STEREO, stereo_pcm))
        got_five = np.concatenate([c.frames for c in chunks[3:6]])
        assert np.array_equal(got_five, formats.decode(FIVE, five_pcm))
        assert np.array_equal(chunks[6].frames, formats.decode(STEREO, stereo_pcm[:1152]))
        assert all(a.arrived <= b.arrived for a, b in zip(chunks, chunks[1:]))
    finally:
        owner.close()
        intruder.close()
        src.stop()


def test_a_new_sender_takes_over_after_the_timeout_and_no_half_frame_crosses_over():
    jb = JitterBuffer(max_seconds=10.0)
    src = ScreamUdpSource(jb, host="127.0.0.1", port=0)
    owner, intruder = _sockets()
    dest = ("127.0.0.1", src.port)
    h_five = scream_wire.udp_header(FIVE)
    try:
        owner.sendto(h_five + b"\x01" * 1152, dest)           # 115 frames and 2 bytes of the 116th
        _drain(src, 1)
        intruder.sendto(h_five + b"\x02" * 1152, dest)        # foreign: the owner is active
        _drain(src, 2)
        time.sleep(SENDER_TIMEOUT + 0.1)
        intruder.sendto(h_five + b"\x03" * 1152, dest)        # the owner went quiet: it takes over
        _drain(src, 3)
        assert src.foreign_packets == 1 and src.packets == 2
        assert src.sender == intruder.getsockname()
        chunks = _chunks(jb)
        assert [len(c.frames) for c in chunks] == [115, 115]
        # The owner's 2 carried bytes were dropped: the new sender's audio starts on its own frame.
        assert np.array_equal(chunks[1].frames, formats.decode(FIVE, b"\x03" * 1150))
    finally:
        owner.close()
        intruder.close()
        src.stop()


def test_a_flood_of_ever_new_bad_headers_is_counted_and_the_owner_still_plays():
    """More distinct bad headers than the native side remembers: each goes to Python once, all are counted."""
    jb = JitterBuffer(max_seconds=10.0)
    src = ScreamUdpSource(jb, host="127.0.0.1", port=0)
    owner, _intruder = _sockets()
    _intruder.close()
    dest = ("127.0.0.1", src.port)
    good = scream_wire.udp_header(STEREO) + formats.encode(STEREO, _ramp(STEREO, 288))
    bad = [bytes([0x01, bits, 2, 3, 0]) + bytes(1152) for bits in range(40, 80)]
    try:
        for packet in bad[:20] + [good] + bad[20:] + [good]:
            owner.sendto(packet, dest)
        _drain(src, 42)
        assert src.packets == 2 and int(src._block.bad_header) == 40
        assert [len(c.frames) for c in _chunks(jb)] == [288, 288]
    finally:
        owner.close()
        src.stop()


def test_a_sender_cycling_bad_headers_costs_python_at_most_a_budget_a_second(monkeypatch):
    """Hundreds of distinct bad headers while nobody owns the stream: Python checks at most
    SCREAM_RX_ASK_PER_S of them a second, the rest are counted unasked, and a good header sent after the
    second is over is asked about and played."""
    jb = JitterBuffer(max_seconds=10.0)
    src = ScreamUdpSource(jb, host="127.0.0.1", port=0)
    asked = []
    check = src._check_header
    monkeypatch.setattr(src, "_check_header", lambda: (asked.append(1), check())[1])
    sender, _other = _sockets()
    _other.close()
    dest = ("127.0.0.1", src.port)
    budget = int(lib.SCREAM_RX_ASK_PER_S)
    # small datagrams, sent 32 at a time and read in between: the socket's buffer (rmem_max may be the kernel's
    # default 208 KiB) never holds them all, so none is lost before the receiver reads it
    bad = [bytes([0x01, bits & 0xFF, 2 + (bits >> 8), 3, 0]) + bytes(4) for bits in range(40, 40 + 4 * budget)]
    good = scream_wire.udp_header(STEREO) + formats.encode(STEREO, _ramp(STEREO, 288))
    try:
        t0 = time.monotonic()
        for i in range(0, len(bad), 32):
            for packet in bad[i:i + 32]:
                sender.sendto(packet, dest)
            _drain(src, min(i + 32, len(bad)))
        within_a_second = time.monotonic() - t0 < 1.0
        time.sleep(1.05)
        sender.sendto(good, dest)
        _drain(src, len(bad) + 1)
        assert int(src._block.bad_header) == len(bad)
        if within_a_second:   # all arrived in one window: exactly the budget was asked about
            assert len(asked) == budget + 1 and int(src._block.bad_header_unasked) == len(bad) - budget
        else:                 # a very slow machine spread them over two windows: still bounded
            assert len(asked) <= 2 * budget + 1 and int(src._block.bad_header_unasked) >= len(bad) - 2 * budget
        assert src.packets == 1 and [len(c.frames) for c in _chunks(jb)] == [288]
    finally:
        sender.close()
        src.stop()


def test_handle_datagram_and_the_socket_share_the_rules():
    """Fed by hand (tests, fuzzing) the same native rules apply, the sender check included."""
    src = ScreamUdpSource(JitterBuffer(), host="127.0.0.1", port=0)
    try:
        packet = scream_wire.udp_header(STEREO) + bytes(1152)
        src.handle_datagram(packet + b"\0" * 200, 0.0, ("192.0.2.1", 4010))
        src.handle_datagram(packet, 0.0, ("192.0.2.1", 4010))
        src.handle_datagram(packet, 0.5, ("192.0.2.2", 4010))
        assert (src.packets, src.bad_packets, src.foreign_packets) == (1, 1, 1)
        assert int(src._block.status) == lib.SCREAM_RX_DATA
    finally:
        src.stop()
