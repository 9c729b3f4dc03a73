"""Scream over UDP: multicast (default 239.255.77.77:4010) or unicast datagrams -> jitter buffer.

One thread, ``audio-scream-udp``, waits in ``poll`` (the GIL is released there) and then drains every
datagram waiting on the socket in one wake. Every datagram carries
its format in a 5-byte header, so a format change takes effect on the first packet that has it. Bad
datagrams are counted and logged (rate-limited) and the stream goes on.

Anyone on the network can send to the port, so nothing in a datagram is trusted:

* the receive buffer is ``MAX_PACKET`` + 1 bytes: a larger datagram is recognised as too large without
  ever being held whole (the kernel truncates it into the buffer);
* the header is copied, then checked (``parse_udp_header``); a partial frame carried to the next datagram
  is under one frame (at most 31 bytes);
* one sender at a time: the first address whose datagram is valid owns the stream; datagrams from any
  other address are dropped and counted in ``foreign_packets`` until the owner has been silent for
  ``SENDER_TIMEOUT`` (a restarted guest, a new VM), so two senders cannot interleave into noise;
* every drop is counted (``bad_packets``, ``foreign_packets``), never logged per datagram: a warning of
  each kind at most every 5 s, with the number suppressed.
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import struct
import time
from urllib.parse import urlsplit

from kvmfr_client.audio import formats, scream_wire
from kvmfr_client.audio.formats import FormatError, PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.priority import raise_thread_priority
from kvmfr_client.audio.warnings import RateLimitedWarning
from kvmfr_client.audio.worker import Worker

log = logging.getLogger(__name__)

SENDER_TIMEOUT = 1.0  # seconds of silence from the current sender before another may take over
DRAIN_MAX = 64      # datagrams handled per wake of the receive thread (then the stop flag and poll again)


def parse_udp_url(url: str) -> tuple[str, int]:
    """``udp://239.255.77.77:4010`` or ``udp://0.0.0.0:4011`` -> (address, port); defaults fill gaps."""
    parts = urlsplit(url if "//" in url else "udp://" + url)
    if parts.scheme != "udp":
        raise ValueError(f"expected udp://GROUP_OR_HOST:PORT, got {url!r}")
    host = parts.hostname or scream_wire.DEFAULT_GROUP
    port = parts.port if parts.port is not None else scream_wire.DEFAULT_PORT
    return host, port


def _interface_address(interface: str | None) -> str:
    """An interface name (``lo``) or IPv4 address -> the address to join the group on."""
    if not interface:
        return "0.0.0.0"
    try:
        ipaddress.IPv4Address(interface)
        return interface
    except ValueError:
        pass
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            ifreq = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", interface.encode()[:15]))  # SIOCGIFADDR
        except OSError as exc:
            raise ValueError(f"network interface {interface!r} has no IPv4 address ({exc})") from None
    return socket.inet_ntoa(ifreq[20:24])


class ScreamUdpSource(Worker):
    """Receives Scream datagrams on ``host:port``; a multicast ``host`` is joined on ``interface``."""

    def __init__(self, buffer: JitterBuffer, host: str = scream_wire.DEFAULT_GROUP,
                 port: int = scream_wire.DEFAULT_PORT, interface: str | None = None):
        self.buffer = buffer
        self.host = host
        self.port = port
        self.interface = interface
        self.packets = 0
        self.bad_packets = 0  # malformed, oversized or of an impossible format
        self.foreign_packets = 0  # from another address while the current sender is active
        self.sender: tuple[str, int] | None = None
        self._sender_seen = 0.0
        self._warn = RateLimitedWarning(log)
        self._fmt: PcmFormat | None = None
        self._header = b""
        self._carry = b""  # a partial frame left over from the previous datagram
        self._sock = self._open()
        self.port = self._sock.getsockname()[1]  # port 0 asks the kernel for a free one
        super().__init__()

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        addr = ipaddress.IPv4Address(socket.gethostbyname(self.host))
        if addr.is_multicast:
            sock.bind(("", self.port))
            local = _interface_address(self.interface)
            mreq = struct.pack("4s4s", addr.packed, socket.inet_aton(local))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            log.info("scream: joined %s:%d on %s", addr, self.port, self.interface or "the default interface")
        else:
            sock.bind((str(addr), self.port))
            log.info("scream: listening on %s:%d", addr, sock.getsockname()[1])
        # Non-blocking: the thread waits in poll() (without the GIL, 0.2 s at a time so stop() is
        # noticed), then drains every datagram that is waiting in one go.
        sock.setblocking(False)
        return sock

    thread_name = "audio-scream-udp"

    def _close(self) -> None:
        self._sock.close()

    def _run(self) -> None:
        raise_thread_priority()
        # One byte more than the largest valid datagram: a longer one arrives truncated to this and is
        # refused by its length, so no sender decides how much we hold.
        buf = bytearray(scream_wire.MAX_PACKET + 1)
        view = memoryview(buf)
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        recv = self._sock.recvfrom_into
        while not self._stop.is_set():
            if not poller.poll(200):
                continue
            arrived = time.monotonic()
            # Drain the socket: after a stall of this thread the datagrams that piled up are handled
            # in one wake, and the player takes them as one block; at most DRAIN_MAX of them, so a
            # flood neither keeps stop() waiting nor makes one unbounded block.
            for _ in range(DRAIN_MAX):
                if self._stop.is_set():
                    break
                try:
                    n, source = recv(buf)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if not self._stop.is_set():
                        self._warn.warn("socket", "scream: receive failed: %s", exc)
                        time.sleep(0.05)
                    break
                self.handle_datagram(view[:n], arrived, source)

    def handle_datagram(self, packet: memoryview | bytes, arrived: float,
                        source: tuple[str, int] | None = None) -> None:
        """Validate one datagram and push its frames; bad ones are counted and logged, never raised.

        ``source`` is the sender's address; None (tests feeding datagrams directly) skips the sender check.
        """
        if source is not None and source != self.sender:
            if self.sender is not None and arrived - self._sender_seen < SENDER_TIMEOUT:
                self.foreign_packets += 1
                self._warn.warn("foreign", "scream: datagram from %s:%d while %s:%d is sending; dropped",
                                *source, *self.sender)
                return
        if len(packet) > scream_wire.MAX_PACKET:
            self._bad("size", "scream: datagram over the %d-byte maximum; dropped", scream_wire.MAX_PACKET)
            return
        header = bytes(packet[:scream_wire.HEADER_SIZE])
        if header == self._header and self._fmt is not None:
            fmt = self._fmt  # the common case: same format as the previous datagram, already checked
        else:
            try:
                fmt = scream_wire.parse_udp_header(packet)
            except FormatError as exc:
                self._bad("format", "scream: bad datagram header (%s); dropped", exc)
                return
            if self._fmt is not None and fmt != self._fmt:
                log.info("scream: format %s -> %s", self._fmt.describe(), fmt.describe())
            self._fmt, self._header, self._carry = fmt, header, b""
        if len(packet) == scream_wire.HEADER_SIZE:
            self._bad("empty", "scream: datagram with a header and no audio; dropped")
            return
        if source is not None:
            if source != self.sender:
                log.info("scream: receiving from %s:%d", *source)
                self.sender, self._carry = source, b""
            self._sender_seen = arrived
        payload = packet[scream_wire.HEADER_SIZE:]
        if self._carry:
            payload = self._carry + bytes(payload)
        whole = len(payload) - len(payload) % fmt.frame_bytes
        self._carry = bytes(payload[whole:])
        if whole:
            self.buffer.push(fmt, formats.decode(fmt, payload[:whole]), arrived)
        self.packets += 1

    def _bad(self, kind: str, msg: str, *args) -> None:
        self.bad_packets += 1
        self._warn.warn(kind, msg, *args)
