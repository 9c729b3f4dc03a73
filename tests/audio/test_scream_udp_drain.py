"""The receive thread of the Scream UDP source drains a bounded number of datagrams per wake and notices
stop() inside a drain (no sound server needed: handle_datagram is replaced)."""

from __future__ import annotations

import socket
import threading

from kvmfr_client.audio.scream_udp import DRAIN_MAX, ScreamUdpSource


def _source_with_queue(count: int):
    src = ScreamUdpSource(None, host="127.0.0.1", port=0)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        out.sendto(bytes([i & 0xFF]) * 8, ("127.0.0.1", src.port))
    out.close()
    return src


def _run(src) -> threading.Thread:
    thread = threading.Thread(target=src._run, daemon=True)
    thread.start()
    return thread


def test_one_wake_takes_at_most_drain_max_datagrams():
    total = DRAIN_MAX * 2 + 10
    src = _source_with_queue(total)
    wakes: list[float] = []
    done = threading.Event()

    def handle(packet, arrived, source=None):
        wakes.append(arrived)   # one `arrived` per wake
        if len(wakes) == total:
            src._stop.set()
            done.set()

    src.handle_datagram = handle
    thread = _run(src)
    try:
        assert done.wait(5.0), f"{len(wakes)} of {total} datagrams handled"
        thread.join(2.0)
        assert not thread.is_alive()
        per_wake = [wakes.count(t) for t in dict.fromkeys(wakes)]
        assert max(per_wake) <= DRAIN_MAX, per_wake
    finally:
        src._stop.set()
        src._close()


def test_stop_is_noticed_inside_a_drain():
    src = _source_with_queue(DRAIN_MAX)
    handled = []

    def handle(packet, arrived, source=None):
        handled.append(1)
        src._stop.set()     # stop() while datagrams are still waiting

    src.handle_datagram = handle
    thread = _run(src)
    try:
        thread.join(2.0)
        assert not thread.is_alive()
        assert len(handled) == 1
    finally:
        src._stop.set()
        src._close()

