"""The receive thread of the Scream UDP source drains a bounded number of datagrams per native call, keeps
a batch it could not finish for the next call, and notices stop() while datagrams keep coming (no sound
server needed: the jitter buffer is read directly)."""

from __future__ import annotations

import socket
import threading
import time

from kvmfr_client.audio import scream_wire
from kvmfr_client.audio.formats import PcmFormat
from kvmfr_client.audio.jitter_buffer import JitterBuffer
from kvmfr_client.audio.scream_udp import DRAIN_MAX, ScreamUdpSource
from kvmfr_client.core.native import lib

FMT = PcmFormat(48000, 16, 2, 0x3)
PACKET = scream_wire.udp_header(FMT) + bytes(scream_wire.MAX_PAYLOAD)


def _send(port: int, packets) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        for packet in packets:
            out.sendto(packet, ("127.0.0.1", port))


def test_one_call_takes_at_most_drain_max_datagrams_and_loses_none():
    jb = JitterBuffer(max_seconds=10.0)
    src = ScreamUdpSource(jb, host="127.0.0.1", port=0)
    total = DRAIN_MAX + 40   # fits the 1 MiB socket buffer
    try:
        _send(src.port, [PACKET] * total)
        per_call = []
        fd = src._sock.fileno()
        while src._block.datagrams < total:
            before = src._block.datagrams
            assert src.receive_once(fd, 1000) != lib.SCREAM_RX_IDLE, f"{before} of {total} arrived"
            per_call.append(src._block.datagrams - before)
        assert max(per_call) <= DRAIN_MAX, per_call
        assert src.packets == total and src.bad_packets == 0
        # One chunk per datagram, 288 frames each, in order of arrival.
        chunks = [jb.pop(0) for _ in range(total)]
        assert all(c is not None and len(c.frames) == 288 for c in chunks)
        assert all(a.arrived <= b.arrived for a, b in zip(chunks, chunks[1:]))
    finally:
        src.stop()


def test_stop_is_noticed_while_datagrams_keep_coming():
    src = ScreamUdpSource(JitterBuffer(), host="127.0.0.1", port=0)
    done = threading.Event()

    def flood():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            while not done.is_set():
                for _ in range(64):
                    out.sendto(PACKET, ("127.0.0.1", src.port))

    sender = threading.Thread(target=flood, daemon=True)
    src.start()
    sender.start()
    try:
        time.sleep(0.3)
        thread = src._thread
        t0 = time.monotonic()
        src.stop()
        assert not thread.is_alive() and time.monotonic() - t0 < 1.0
        assert src.packets > 0
    finally:
        done.set()
        sender.join(2.0)
