"""Scream over UDP: multicast (default 239.255.77.77:4010) or unicast datagrams -> jitter buffer.

One thread, ``audio-scream-udp``, calls the native receive path (``native/scream_rx.c``) with the GIL
released: it waits in ``poll`` and drains the socket with ``recvmmsg``, up to ``DRAIN_MAX`` datagrams
a call, applying the rules below to each and copying the owning sender's PCM into one block. Python
wakes once per call, decodes the block with numpy in one go and pushes one chunk per datagram (the
player sees what it saw before: packets with their own arrival times), so a flood costs a few
microseconds of C per datagram instead of a Python wake each. Every datagram carries its format in a
5-byte header, so a format change takes effect on the first packet that has it.

With a player (the service's case) this thread also plays, and the steady state never enters Python:
``native/scream_pump.c`` receives, decodes 16-bit PCM, resamples at the ratio Python last set and writes
to the Pulse stream (libpulse's functions taken from pulse.py's ctypes handles), GIL released, recording
each packet's timings. It returns when a query of the stream's queue is due (every ``QUERY_EVERY``) or
anything needs policy (an underflow, a packet over ``max_latency``, a new header or sender, an error);
Python then runs the player's bookkeeping on those packets (drift controller, catch-up, stats) and
handles the event, through the ordinary path (the jitter buffer, then ``Player._play``) where needed.

Anyone on the network can send to the port, so nothing in a datagram is trusted:

* each datagram is read into ``MAX_PACKET`` + 1 bytes: a larger one arrives truncated and is refused
  by its length, so no sender decides how much we hold;
* the header is copied, then compared with the one in force; a header not seen before comes back
  here and is checked by ``scream_wire.parse_udp_header`` (the one place the format rules live); C
  remembers the last few refused headers so a flood of one bad header costs no Python at all;
* a partial frame at a datagram's end stays in the block and is completed by the next datagram (under
  one frame, at most 31 bytes, is carried); a new format or a new sender drops it;
* one sender at a time: the first address whose datagram is valid owns the stream; datagrams from any
  other address are dropped and counted in ``foreign_packets`` until the owner has been silent for
  ``SENDER_TIMEOUT`` (a restarted guest, a new VM), so two senders cannot interleave into noise;
* every drop is counted (``bad_packets``, ``foreign_packets``), never logged per datagram: a warning of
  each kind at most every 5 s, with the number suppressed.
"""

from __future__ import annotations

import ipaddress
import os
import logging
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

import numpy as np

from kvmfr_client.audio import formats, pulse, scream_wire
from kvmfr_client.audio.formats import FormatError, PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.priority import raise_thread_priority
from kvmfr_client.audio.warnings import RateLimitedWarning
from kvmfr_client.audio.worker import Worker
from kvmfr_client.core.native import ffi, lib

log = logging.getLogger(__name__)

SENDER_TIMEOUT = 1.0  # seconds of silence from the current sender before another may take over
DRAIN_MAX = 256     # datagrams handled per native call (then the stop flag is checked and poll runs again)
POLL_MS = 200       # the longest wait in poll, so stop() is noticed
# A flood: more datagrams a second than twice what the largest format needs (384 kHz 32-bit 8 channels
# is 10.7k datagrams/s; 48 kHz stereo 167/s), measured over FLOOD_WINDOW. While it lasts the thread
# pauses FLOOD_PAUSE after each call, so datagrams pile up in the socket buffer (where the kernel drops
# what does not fit) and are drained DRAIN_MAX at a time: the wakes are bounded whatever the senders'
# rate. When the owner itself sends at that rate, it is not playable audio: only the newest datagram
# of each call goes to the player (the rest are counted in flood_packets), so the player's work is
# bounded too. A backlog after a guest stall is a few hundred datagrams at most (the socket buffer
# holds ~450), far from this rate.
FLOOD_RATE = 20_000
FLOOD_WINDOW = 0.25
FLOOD_PAUSE = 0.002


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
                 port: int = scream_wire.DEFAULT_PORT, interface: str | None = None, player=None):
        self.buffer = buffer
        # With a player, this thread also plays (see _pump_loop) and the player runs no thread of its own.
        self.player = player
        if player is not None:
            player.driven = True
            player.driver_running = lambda: self._thread is not None and self._thread.is_alive()
        self.host = host
        self.port = port
        self.interface = interface
        self.sender: tuple[str, int] | None = None
        self._warn = RateLimitedWarning(log)
        self._fmt: PcmFormat | None = None
        rx = lib.scream_rx_new(scream_wire.HEADER_SIZE, scream_wire.MAX_PACKET, int(SENDER_TIMEOUT * 1e9))
        if rx == ffi.NULL:
            raise MemoryError("scream: no memory for the receive buffers")
        self._rx = ffi.gc(rx, lib.scream_rx_free)
        # The block: room for DRAIN_MAX datagrams' payloads after a carried partial frame; filled in C,
        # decoded here, then emptied (all but the partial frame) before the next call.
        self._out = bytearray(lib.SCREAM_RX_MAX_CHUNKS * scream_wire.MAX_PAYLOAD + scream_wire.MAX_PACKET)
        self._out_c = ffi.from_buffer(self._out)
        self._block = ffi.new("struct scream_rx_block *")
        self._block.out = self._out_c
        self._block.cap = len(self._out)
        self._dropped_seen = 0  # datagrams - packets when drops were last looked at
        self.flooding = False  # all senders together over FLOOD_RATE
        self.owner_flooding = False  # the owner alone over it
        self.floods = 0  # times a flood was detected
        self.flood_packets = 0  # the owner's datagrams not played because it flooded
        self._window = (time.monotonic(), 0, 0)  # (start, datagrams, packets) of the rate measurement
        self._counts_seen = {"foreign": 0, "size": 0, "short": 0, "header": 0, "unasked": 0, "empty": 0}
        self._pump = ffi.new("struct scream_pump *")
        self._pump_scratch = (np.empty(len(self._out) // 2, dtype=np.float32),
                              np.empty(len(self._out) + 64, dtype=np.float32))  # 2 bytes a sample in, ratio <= 2 out
        self._pump.scratch_in = ffi.from_buffer("float[]", self._pump_scratch[0])
        self._pump.scratch_out = ffi.from_buffer("float[]", self._pump_scratch[1])
        self.pumped = 0  # packets the pump played without Python
        self._sock = self._open()
        self.port = self._sock.getsockname()[1]  # port 0 asks the kernel for a free one
        super().__init__()

    # The counters live in the native block; these read them.
    @property
    def packets(self) -> int:
        return int(self._block.packets)

    @property
    def bad_packets(self) -> int:
        """Malformed, oversized or of an impossible format."""
        b = self._block
        return int(b.bad_size + b.bad_short + b.bad_header + b.bad_empty)

    @property
    def foreign_packets(self) -> int:
        """From another address while the current sender is active."""
        return int(self._block.foreign)

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
        # Non-blocking: the native receive path waits in poll() (POLL_MS at a time so stop() is
        # noticed), then drains what is waiting with non-blocking recvmmsg calls.
        sock.setblocking(False)
        return sock

    thread_name = "audio-scream-udp"

    def _close(self) -> None:
        self._sock.close()

    def _run(self) -> None:
        raise_thread_priority()
        fd = self._sock.fileno()
        if self.player is not None:
            self.player.on_stream_opened = lambda: self._drain_socket(fd)
            self._pump_loop(fd)
            return
        while not self._stop.is_set():
            self.receive_once(fd, POLL_MS)
            if self.flooding:
                self._stop.wait(FLOOD_PAUSE)

    def receive_once(self, fd: int, timeout_ms: int) -> int:
        """One native call: wait up to ``timeout_ms``, handle up to DRAIN_MAX datagrams, push their audio.
        Returns the native status (``lib.SCREAM_RX_*``)."""
        status = lib.scream_rx_receive(self._rx, fd, timeout_ms, DRAIN_MAX, self._block)
        if status == lib.SCREAM_RX_ERROR:
            if not self._stop.is_set():
                self._warn.warn("socket", "scream: receive failed: %s", os.strerror(self._block.error))
                time.sleep(0.05)
        self._after(status)
        self._measure_rate()
        return status

    def _measure_rate(self) -> None:
        now, count, packets = time.monotonic(), int(self._block.datagrams), int(self._block.packets)
        start, count_before, packets_before = self._window
        if now - start < FLOOD_WINDOW:
            return
        flooding = (count - count_before) / (now - start) > FLOOD_RATE
        if flooding and not self.flooding:
            self.floods += 1
            self._warn.warn("flood", "scream: over %d datagrams/s; reading them in batches", FLOOD_RATE)
        self.flooding = flooding
        self.owner_flooding = (packets - packets_before) / (now - start) > FLOOD_RATE
        self._window = (now, count, packets)

    def handle_datagram(self, packet: memoryview | bytes, arrived: float,
                        source: tuple[str, int] | None = None) -> None:
        """One datagram through the same native rules as those read off the socket; bad ones are
        counted and logged, never raised. ``arrived`` is in ``time.monotonic()`` seconds, ``source`` the
        sender's address; None (tests feeding datagrams directly) skips the sender check."""
        data = bytes(packet)
        if source is None:
            ip, port, check = 0, 0, 0
        else:
            ip, port, check = int.from_bytes(socket.inet_aton(source[0]), sys.byteorder), source[1] & 0xFFFF, 1
        status = lib.scream_rx_feed(self._rx, ffi.from_buffer("uint8_t[]", data), len(data), ip, port, check,
                                    max(0, int(arrived * 1e9)),
                                    self._block)
        self._after(status)

    def reset(self) -> None:
        """Forget the sender, the format and any partial frame (as a fresh receiver)."""
        lib.scream_rx_reset(self._rx)
        self.sender, self._fmt = None, None
        self._block.len = self._block.chunks = 0

    def _after(self, status: int) -> None:
        b = self._block
        if status == lib.SCREAM_RX_HEADER:
            self._check_header()
        if b.sender_changed:
            b.sender_changed = 0
            self.sender = (socket.inet_ntoa(int(b.sender_ip).to_bytes(4, sys.byteorder)), int(b.sender_port))
            log.info("scream: receiving from %s:%d", *self.sender)
        if b.chunks:
            self._push()
        if b.datagrams - b.packets != self._dropped_seen:
            self._dropped_seen = b.datagrams - b.packets
            self._warn_drops()

    def _check_header(self) -> None:
        """A header the native side has not seen: parse it here (the format rules live in scream_wire)."""
        b = self._block
        header = bytes(ffi.buffer(b.header, scream_wire.HEADER_SIZE))
        try:
            fmt = scream_wire.parse_udp_header(header)
        except FormatError as exc:
            lib.scream_rx_reject(self._rx, b)
            self._counts_seen["header"] = int(b.bad_header)
            self._warn.warn("format", "scream: bad datagram header (%s); dropped", exc)
            return
        if b.chunks:
            self._push()  # what came in the old format
        if self._fmt is not None and fmt != self._fmt:
            log.info("scream: format %s -> %s", self._fmt.describe(), fmt.describe())
        self._fmt = fmt
        lib.scream_rx_accept(self._rx, fmt.frame_bytes, b)  # empties the block: an old partial frame is dropped
        if b.sender_changed:
            b.sender_changed = 0
            self.sender = (socket.inet_ntoa(int(b.sender_ip).to_bytes(4, sys.byteorder)), int(b.sender_port))
            log.info("scream: receiving from %s:%d", *self.sender)

    # --- receive and play in one thread (with a player) ------------------------------------------

    def _pump_loop(self, fd: int) -> None:
        """The steady state runs in C (native/scream_pump.c): receive, decode, resample, write to Pulse,
        with the GIL released, returning every QUERY_EVERY or so (or at once when something needs
        policy). Python then runs the player's policy on the packets it played (drift controller,
        catch-up, stats) and handles what made it return. Anything the pump does not handle (no stream
        yet, a format or sender change, an underflow, a skip in progress, a flood) goes through the
        ordinary path: receive_once, then the player's _play for each chunk, in this same thread."""
        pl = self.player
        while not self._stop.is_set():
            try:
                if not self.owner_flooding and pl.pump_ready(self._fmt):
                    self._pump_once(fd)
                else:
                    self._play_block()
                    self.receive_once(fd, POLL_MS)
                    pl.play_buffered()
            except pulse.PulseError as exc:
                pl.server_failed(exc)
                self._stop.wait(1.0)
            if self.flooding:
                self._stop.wait(FLOOD_PAUSE)

    def _drain_socket(self, fd: int) -> None:
        """Push what waits in the socket to the jitter buffer without waiting: called while the player opens
        a stream, so that its cushion counts the packets that came meanwhile, as when a separate thread
        received them. Not during a flood: that is read DRAIN_MAX at a time every FLOOD_PAUSE (FLOOD_RATE),
        and draining it whole each time the ordinary path runs (which it does while the owner floods) read
        every datagram of a 230 000/s flood, half a core."""
        if self.flooding:
            return
        for _ in range(8):
            if self.receive_once(fd, 0) != lib.SCREAM_RX_DATA:
                break

    def _play_block(self) -> None:
        """Chunks the pump left unplayed: through the player's Python path."""
        p, b = self._pump, self._block
        if b.chunks and p.cursor < b.chunks:
            self._push(first=p.cursor)
        elif b.chunks:  # all played: keep the partial frame only
            lib.scream_pump_compact(b, p)
        p.cursor = p.start_frame = 0
        p.underflow_valid = 0
        # What waits in the socket (after a stall of this thread, say) is queued audio too: the player's
        # underrun cushion and catch-up count the jitter buffer, as when a separate thread received.
        self._drain_socket(self._sock.fileno())
        self.player.play_buffered()

    def _pump_once(self, fd: int) -> None:
        pl, p, fmt = self.player, self._pump, self._fmt
        pl.load_pump(p)
        p.scratch_in_frames = len(self._pump_scratch[0]) // fmt.channels
        p.scratch_out_frames = len(self._pump_scratch[1]) // fmt.channels
        p.wait_until_ns = time.monotonic_ns() + POLL_MS * 1_000_000
        reason = lib.scream_pump(self._rx, fd, self._block, p)
        self.pumped += pl.unload_pump(p)   # raises PulseError when the pump's write failed
        if reason == lib.SCREAM_PUMP_RX:
            status = p.rx_status
            if status == lib.SCREAM_RX_ERROR and not self._stop.is_set():
                self._warn.warn("socket", "scream: receive failed: %s", os.strerror(self._block.error))
                time.sleep(0.05)
            self._after(status)
            self._measure_rate()
            pl.play_buffered()
        elif reason in (lib.SCREAM_PUMP_UNDERFLOW, lib.SCREAM_PUMP_BAD):
            self._play_block()

    def _push(self, first: int = 0) -> None:
        """Decode the block's whole frames at once and push one chunk per datagram (from chunk ``first``);
        keep a partial frame."""
        b, fmt = self._block, self._fmt
        n, length = b.chunks, b.len
        fb = fmt.frame_bytes
        whole = length - length % fb
        frames = formats.decode(fmt, memoryview(self._out)[:whole])
        if n == 1 and first == 0:  # the common case: one datagram a wake
            chunks = [(frames, b.chunk_arrived_ns[0] * 1e-9)] if len(frames) else []
            ends, times = (), ()
        else:
            ends, times = ffi.unpack(b.chunk_end, n), ffi.unpack(b.chunk_arrived_ns, n)
            chunks = []
        start = 0
        for i, (end, arrived) in enumerate(zip(ends, times)):
            stop = min(end, whole) // fb
            if stop > start:
                if i >= first:
                    chunks.append((frames[start:stop], arrived * 1e-9))
                start = stop
        if self.owner_flooding and len(chunks) > 1:  # see FLOOD_RATE
            self.flood_packets += len(chunks) - 1
            chunks = chunks[-1:]
        if self.buffer is not None and chunks:
            self.buffer.push_many(fmt, chunks)
        if length > whole:
            self._out[:length - whole] = self._out[whole:length]
        b.len, b.chunks = length - whole, 0

    def _warn_drops(self) -> None:
        b, seen = self._block, self._counts_seen
        counts = {"foreign": int(b.foreign), "size": int(b.bad_size), "short": int(b.bad_short),
                  "header": int(b.bad_header), "unasked": int(b.bad_header_unasked), "empty": int(b.bad_empty)}
        if counts["foreign"] > seen["foreign"] and self.sender is not None:
            foreign = (socket.inet_ntoa(int(b.foreign_ip).to_bytes(4, sys.byteorder)), int(b.foreign_port))
            self._warn.warn("foreign", "scream: datagram from %s:%d while %s:%d is sending; dropped",
                            *foreign, *self.sender)
        if counts["size"] > seen["size"]:
            self._warn.warn("size", "scream: datagram over the %d-byte maximum; dropped", scream_wire.MAX_PACKET)
        if counts["short"] > seen["short"]:
            self._warn.warn("format", "scream: bad datagram header (datagram shorter than the %d-byte header); "
                            "dropped", scream_wire.HEADER_SIZE)
        if counts["header"] > seen["header"]:
            if counts["unasked"] > seen["unasked"]:
                self._warn.warn("unasked", "scream: over %d new datagram headers in a second (a sender cycling "
                                "through bad ones?); the rest of that second's dropped unchecked",
                                lib.SCREAM_RX_ASK_PER_S)
            else:
                self._warn.warn("format", "scream: bad datagram header (one refused before); dropped")
        if counts["empty"] > seen["empty"]:
            self._warn.warn("empty", "scream: datagram with a header and no audio; dropped")
        self._counts_seen = counts
