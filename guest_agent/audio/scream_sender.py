"""Scream-compatible senders: PCM bytes -> UDP datagrams or the IVSHMEM ring, exactly as the Windows
driver sends them, so the stock ``scream`` receiver and ours both play a Linux guest's sound."""

from __future__ import annotations

import logging
import mmap
import os
import socket

from kvmfr_client.audio import scream_wire
from kvmfr_client.audio.formats import DEFAULT_MASKS, PcmFormat

log = logging.getLogger(__name__)


def _whole_pieces(data: bytes, size: int) -> tuple[list[bytes], bytes]:
    """``data`` cut into pieces of ``size`` bytes, and the rest (shorter than a piece) to keep for later."""
    whole = len(data) - len(data) % size
    return [data[k:k + size] for k in range(0, whole, size)], data[whole:]


class ScreamUdpSender:
    """Sends PCM as Scream datagrams (5-byte header + at most 1152 bytes of whole frames)."""

    def __init__(self, fmt: PcmFormat, host: str = scream_wire.DEFAULT_GROUP, port: int = scream_wire.DEFAULT_PORT,
                 interface: str | None = None, ttl: int = 1):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        if int(host.split(".")[0]) in range(224, 240):
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            if interface:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        self.packets = 0
        self.set_format(fmt)

    def set_format(self, fmt: PcmFormat) -> None:
        self.fmt = fmt.validate()
        self._header = scream_wire.udp_header(fmt)
        self._payload = scream_wire.payload_bytes(fmt)
        self._pending = b""

    def send(self, pcm: bytes) -> int:
        """Queue PCM and send every full datagram; returns how many were sent."""
        payloads, self._pending = _whole_pieces(self._pending + pcm, self._payload)
        for payload in payloads:
            self.send_raw(self._header + payload)
        return len(payloads)

    def flush(self) -> None:
        """Send what is queued, even if it does not fill a datagram (whole frames only)."""
        whole = len(self._pending) - len(self._pending) % self.fmt.frame_bytes
        if whole:
            self.send_raw(self._header + self._pending[:whole])
        self._pending = self._pending[whole:]

    def send_raw(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.addr)
        self.packets += 1

    def close(self) -> None:
        self.sock.close()


class ScreamIvshmemWriter:
    """Writes PCM into a Scream IVSHMEM ring file of ``size`` bytes (created if missing)."""

    def __init__(self, path: str, fmt: PcmFormat, size: int = 2 * 1024 * 1024):
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self.size = os.fstat(fd).st_size
            self.map = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.chunks = 0
        self.set_format(fmt)

    def set_format(self, fmt: PcmFormat) -> None:
        """(Re)initialise the ring as the driver does: zero the header, fields, then the magic last."""
        self.fmt = fmt.validate()
        self.chunk_size = scream_wire.ivshmem_chunk_size(fmt)
        offset = scream_wire.IVSHMEM_HEADER.size
        self.max_chunks = min(0xFFFF, (self.size - offset) // self.chunk_size)
        self.write_idx = 0
        self._pending = b""
        header = scream_wire.RingHeader(0, 0, offset, self.max_chunks, self.chunk_size,
                                        scream_wire.rate_marker(fmt.rate), fmt.bits, fmt.channels,
                                        fmt.channel_mask or DEFAULT_MASKS.get(fmt.channels, 0x3))
        self.map[0:offset] = header.pack()
        self.map[0:4] = scream_wire.IVSHMEM_MAGIC.to_bytes(4, "little")
        self._offset = offset

    def write(self, pcm: bytes) -> int:
        """Queue PCM and publish every full 20 ms chunk; returns how many were published."""
        chunks, self._pending = _whole_pieces(self._pending + pcm, self.chunk_size)
        for chunk in chunks:
            self.write_chunk(chunk)
        return len(chunks)

    def write_chunk(self, chunk: bytes) -> None:
        nxt = (self.write_idx + 1) % self.max_chunks
        pos = self._offset + nxt * self.chunk_size
        self.map[pos:pos + len(chunk)] = chunk
        # Publish only after the copy: a reader never sees a half-written slot at write_idx.
        scream_wire.write_write_idx(self.map, nxt)
        self.write_idx = nxt
        self.chunks += 1

    def close(self) -> None:
        self.map.close()
