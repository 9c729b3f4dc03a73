"""Fuzz the Scream UDP receiver: any sequence of datagrams, from up to three senders, at any pace.

Record kinds: ``kind % 4`` picks the sender (3: none, as a test feeding datagrams directly), ``arg`` is the
time since the previous datagram in 10 ms steps, the bytes are the datagram (through the native rules of
native/scream_rx.c, as off the socket). ``handle_datagram`` documents
that it never raises: any exception is a finding. Checked after every datagram: the carried partial frame
is shorter than a frame, the jitter buffer stays within its cap, and no sender other than the current
one got audio in.
"""

from __future__ import annotations

import atheris

from _harness import main, records

with atheris.instrument_imports(include=["kvmfr_client.audio"]):
    from kvmfr_client.audio import scream_udp
    from kvmfr_client.audio.jitter_buffer import JitterBuffer

SENDERS = (("10.0.0.1", 4010), ("10.0.0.2", 4010), ("10.0.0.1", 5000), None)
BUFFER = JitterBuffer(max_seconds=0.5)
SOURCE = scream_udp.ScreamUdpSource(BUFFER, "127.0.0.1", 0)  # one socket for the whole run; never started


def reset() -> None:
    BUFFER.clear()
    SOURCE.reset()


def TestOneInput(data: bytes) -> None:
    reset()
    now = 0.0
    for kind, arg, payload in records(data):
        now += arg * 0.01
        sender = SENDERS[kind % 4]
        packets, foreign = SOURCE.packets, SOURCE.foreign_packets
        SOURCE.handle_datagram(payload, now, sender)
        if SOURCE._fmt is not None:  # what stays in the native block is the carried partial frame
            assert SOURCE._block.len < SOURCE._fmt.frame_bytes, (SOURCE._block.len, SOURCE._fmt)
        # The cap holds to within the one chunk it always keeps (at most one datagram of audio).
        assert BUFFER.level() <= 0.5 + 0.01, BUFFER.level()
        if SOURCE.foreign_packets != foreign:
            assert SOURCE.packets == packets and sender != SOURCE.sender


if __name__ == "__main__":
    main(TestOneInput)
