"""Scream's wire formats in one place: the 5-byte UDP header and the IVSHMEM ring header.

Both the host receivers (``scream_udp``, ``scream_ivshmem``) and the guest sender
(``guest_agent.audio``) use these functions, so the layouts are written down once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kvmfr_client.audio.formats import FormatError, PcmFormat

DEFAULT_GROUP = "239.255.77.77"
DEFAULT_PORT = 4010
HEADER_SIZE = 5
# 1152 divides by 4, 6 and 8, so the common frame sizes never straddle two datagrams; odd ones (16-bit
# 5 channels) can, and the receiver carries the partial frame over.
MAX_PAYLOAD = 1152
MAX_PACKET = HEADER_SIZE + MAX_PAYLOAD

BASE_48K = 48000
BASE_44K1 = 44100

_UDP_HEADER = struct.Struct("<BBBH")


def rate_marker(rate: int) -> int:
    """Sample rate -> header byte 0: bit 7 picks the 44.1 kHz base, bits 0-6 are the multiplier."""
    if rate > 0 and rate % BASE_44K1 == 0 and rate // BASE_44K1 < 128:
        return 0x80 | rate // BASE_44K1
    if rate > 0 and rate % BASE_48K == 0 and rate // BASE_48K < 128:
        return rate // BASE_48K
    raise FormatError(f"sample rate {rate} Hz is not a multiple of 44100 or 48000 that Scream can express")


def rate_from_marker(marker: int) -> int:
    multiplier = marker & 0x7F
    if multiplier == 0:
        raise FormatError(f"sample-rate byte 0x{marker:02x} has a zero multiplier")
    return (BASE_44K1 if marker & 0x80 else BASE_48K) * multiplier


def parse_udp_header(packet: bytes | memoryview) -> PcmFormat:
    """The format described by a datagram's first 5 bytes; raises :class:`FormatError` when impossible."""
    if len(packet) < HEADER_SIZE:
        raise FormatError(f"datagram of {len(packet)} bytes is shorter than the {HEADER_SIZE}-byte header")
    marker, bits, channels, mask = _UDP_HEADER.unpack_from(packet)
    return PcmFormat(rate_from_marker(marker), bits, channels, mask).validate()


def udp_header(fmt: PcmFormat) -> bytes:
    return _UDP_HEADER.pack(rate_marker(fmt.rate), fmt.bits, fmt.channels, fmt.channel_mask & 0xFFFF)


def payload_bytes(fmt: PcmFormat) -> int:
    """The largest payload of whole frames that fits one datagram (1152 for every common format)."""
    return MAX_PAYLOAD - MAX_PAYLOAD % fmt.frame_bytes


# --- IVSHMEM ring ---------------------------------------------------------------------------------

IVSHMEM_MAGIC = 0x11112014
# magic u32 @0, write_idx u16 @4, offset u8 @6, pad, max_chunks u16 @8, pad(2), chunk_size u32 @12,
# sample_rate u8 @16, sample_size u8 @17, channels u8 @18, pad, channel_map u16 @20, tail pad; 24 bytes.
IVSHMEM_HEADER = struct.Struct("<IHBxHxxIBBBxHxx")  # 2 bytes of tail padding (alignment 4)
assert IVSHMEM_HEADER.size == 24
WRITE_IDX_OFFSET = 4
# The largest chunk we copy per poll: the Windows driver writes 20 ms (240 KiB at the largest format,
# 384 kHz 32-bit 8 channels); a header that claims more is refused rather than copied.
MAX_CHUNK_SIZE = 1024 * 1024
_WRITE_IDX = struct.Struct("<H")


@dataclass(frozen=True)
class RingHeader:
    magic: int
    write_idx: int
    offset: int
    max_chunks: int
    chunk_size: int
    rate_marker: int
    bits: int
    channels: int
    channel_map: int

    @classmethod
    def unpack(cls, buf, offset: int = 0) -> "RingHeader":
        return cls(*IVSHMEM_HEADER.unpack_from(buf, offset))

    def pack(self) -> bytes:
        return IVSHMEM_HEADER.pack(self.magic, self.write_idx, self.offset, self.max_chunks, self.chunk_size,
                                   self.rate_marker, self.bits, self.channels, self.channel_map)

    def layout_key(self) -> tuple:
        """Everything but write_idx: when this changes the writer has reinitialised the ring."""
        return (self.magic, self.offset, self.max_chunks, self.chunk_size, self.rate_marker, self.bits,
                self.channels, self.channel_map)

    def check(self, region_size: int) -> PcmFormat:
        """The ring's format, or :class:`FormatError` naming the field that makes the ring unusable."""
        if self.magic != IVSHMEM_MAGIC:
            raise FormatError(f"magic 0x{self.magic:08x} is not 0x{IVSHMEM_MAGIC:08x} (writer not started yet?)")
        if self.channels == 0 or self.channel_map == 0:
            raise FormatError(f"channels {self.channels} / channel_map 0x{self.channel_map:04x} is zero")
        fmt = PcmFormat(rate_from_marker(self.rate_marker), self.bits, self.channels, self.channel_map).validate()
        if self.chunk_size == 0 or self.chunk_size % fmt.frame_bytes:
            raise FormatError(f"chunk_size {self.chunk_size} is not a whole number of {fmt.frame_bytes}-byte frames")
        if self.chunk_size > MAX_CHUNK_SIZE:
            raise FormatError(f"chunk_size {self.chunk_size} is over the {MAX_CHUNK_SIZE}-byte limit")
        if self.max_chunks == 0:
            raise FormatError("max_chunks is 0")
        if self.offset < IVSHMEM_HEADER.size:
            raise FormatError(f"chunk offset {self.offset} overlaps the {IVSHMEM_HEADER.size}-byte header")
        if self.offset + self.max_chunks * self.chunk_size > region_size:
            raise FormatError(f"{self.max_chunks} chunks of {self.chunk_size} B at offset {self.offset} "
                              f"do not fit the {region_size}-byte region")
        if self.write_idx >= self.max_chunks:
            raise FormatError(f"write_idx {self.write_idx} is not below max_chunks {self.max_chunks}")
        return fmt


def write_write_idx(buf, value: int) -> None:
    _WRITE_IDX.pack_into(buf, WRITE_IDX_OFFSET, value)


def ivshmem_chunk_size(fmt: PcmFormat) -> int:
    """20 ms of audio, as the Windows driver sizes its chunks."""
    return fmt.frame_bytes * fmt.rate // 50
