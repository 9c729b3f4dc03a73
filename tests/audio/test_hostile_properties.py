"""Property-based tests (hypothesis): hostile Scream datagrams and IVSHMEM headers, generated as structures
rather than random bytes, never raise, and whatever is accepted is within the caps."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvmfr_client.audio import scream_wire
from kvmfr_client.audio.formats import FormatError
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.scream_ivshmem import ScreamIvshmemSource
from kvmfr_client.audio.scream_udp import SENDER_TIMEOUT, ScreamUdpSource

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

# A header whose fields are each either plausible or hostile.
rate_byte = st.one_of(st.sampled_from([0x01, 0x02, 0x81, 0x82, 0x04]), u8)
bits = st.one_of(st.sampled_from([16, 24, 32]), u8)
channels = st.one_of(st.integers(1, 8), u8)
datagram = st.builds(lambda r, b, c, m, body: struct.pack("<BBBH", r, b, c, m) + body,
                     rate_byte, bits, channels, u16, st.binary(max_size=1300)) | st.binary(max_size=1300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(datagram, st.sampled_from([("10.0.0.1", 1), ("10.0.0.2", 1)]),
                          st.floats(0, 2 * SENDER_TIMEOUT)), max_size=30))
def test_any_datagrams_from_any_senders_are_played_or_counted(packets):
    jb = JitterBuffer(max_seconds=0.5)
    src = ScreamUdpSource(jb, "127.0.0.1", 0)
    try:
        now = 0.0
        for packet, sender, dt in packets:
            now += dt
            before = (src.packets, src.bad_packets, src.foreign_packets)
            src.handle_datagram(packet, now, sender)
            after = (src.packets, src.bad_packets, src.foreign_packets)
            assert sum(after) == sum(before) + 1, "every datagram is played or counted as dropped, once"
            if src.packets > before[0]:
                assert sender == src.sender and len(packet) <= scream_wire.MAX_PACKET
            assert jb.level() <= 0.5 + 0.01
    finally:
        src.stop()


ring_header = st.builds(
    scream_wire.RingHeader,
    magic=st.just(scream_wire.IVSHMEM_MAGIC) | u32, write_idx=u16, offset=u8, max_chunks=u16,
    chunk_size=st.one_of(st.sampled_from([3840, 7056, 1 << 20, (1 << 20) + 4]), u32),
    rate_marker=rate_byte, bits=bits, channels=channels, channel_map=u16)


@settings(max_examples=500, deadline=None)
@given(ring_header, st.integers(0, 1 << 26))
def test_an_accepted_ring_header_fits_the_region_and_the_caps(header, region_size):
    try:
        fmt = header.check(region_size)
    except FormatError:
        return
    assert header.chunk_size <= scream_wire.MAX_CHUNK_SIZE and header.chunk_size % fmt.frame_bytes == 0
    assert header.offset >= scream_wire.IVSHMEM_HEADER.size
    assert header.offset + header.max_chunks * header.chunk_size <= region_size
    assert header.write_idx < header.max_chunks


@settings(max_examples=200, deadline=None)
@given(ring_header, st.lists(st.tuples(u16, ring_header | st.none()), max_size=12),
       st.integers(24, 256 * 1024))
def test_the_reader_never_raises_on_any_header_sequence(first, steps, size):
    region = bytearray(size)
    src = ScreamIvshmemSource(JitterBuffer(max_seconds=0.5), "/nonexistent")
    region[:24] = first.pack()
    src.poll(region, size)
    for write_idx, header in steps:
        if header is not None:
            region[:24] = header.pack()
        scream_wire.write_write_idx(region, write_idx)
        src.poll(region, size)
    assert src.buffer.level() <= 0.5 + scream_wire.MAX_CHUNK_SIZE / 8000
