"""Writes the small seed corpora under fuzz/python/corpus/<target>/ (committed; rerun after changing a
target's input framing): valid streams, one per format or message, plus a few classic bad ones.

    .venv/bin/python fuzz/python/make_seeds.py
"""

from __future__ import annotations

import hashlib
import pathlib
import struct
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from _harness import record  # noqa: E402
from kvmfr_client.audio import scream_wire  # noqa: E402
from kvmfr_client.audio.formats import PcmFormat  # noqa: E402

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
FORMATS = [PcmFormat(48000, 16, 2, 0x3), PcmFormat(44100, 24, 6, 0x3F), PcmFormat(96000, 32, 8, 0x63F),
           PcmFormat(48000, 16, 5, 0x37), PcmFormat(48000, 16, 1, 0x4)]


def write(target: str, seeds: list[bytes]) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for seed in seeds:
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


def udp_seeds() -> list[bytes]:
    seeds = []
    for fmt in FORMATS:
        header = scream_wire.udp_header(fmt)
        n = scream_wire.payload_bytes(fmt)
        seeds.append(b"".join(record(0, 1, header + bytes(range(256)) * (n // 256) + bytes(n % 256))
                              for _ in range(3)))
    good = scream_wire.udp_header(FORMATS[0]) + bytes(1152)
    seeds.append(record(0, 0, good) + record(1, 0, good) + record(1, 200, good) + record(0, 0, good))
    seeds.append(record(3, 0, b"\x01\x10\x02\x03") + record(3, 0, b"\x00\x10\x02\x03\x00" + bytes(8))
                 + record(3, 0, b"\xff" * 1160) + record(3, 0, good[:5]))
    return seeds


def ivshmem_image(fmt: PcmFormat, size: int = 16 * 1024, write_idx: int = 0) -> bytes:
    chunk = scream_wire.ivshmem_chunk_size(fmt)
    offset = scream_wire.IVSHMEM_HEADER.size
    max_chunks = max(1, (size - offset) // chunk)
    header = scream_wire.RingHeader(scream_wire.IVSHMEM_MAGIC, write_idx, offset, max_chunks, chunk,
                                    scream_wire.rate_marker(fmt.rate), fmt.bits, fmt.channels, fmt.channel_mask)
    return header.pack()


def ivshmem_seeds() -> list[bytes]:
    seeds = []
    for fmt in FORMATS[:3]:
        chunk = scream_wire.ivshmem_chunk_size(fmt)
        pad = (4 * chunk) // 4096 + 1
        ops = record(0, 0, b"") + record(3, 1, b"") + record(0, 0, b"") + record(3, 2, b"") + record(0, 0, b"")
        ops += record(0, 0, b"") + record(3, 4, b"") + record(0, 0, b"") + record(2, 0, b"") + record(0, 0, b"")
        seeds.append(record(0, pad, ivshmem_image(fmt)) + ops)
    image = ivshmem_image(FORMATS[0])
    # A header change mid-stream, a write_idx past max_chunks, a torn field.
    seeds.append(record(0, 2, image) + record(0, 0, b"") + record(3, 1, b"") + record(1, 0, b"\x11\x00\x18")
                 + record(0, 0, b"") + record(2, 250, b"") + record(0, 0, b""))
    return seeds


def _mini(msg_type: int, payload: bytes) -> bytes:
    return struct.pack("<HI", msg_type, len(payload)) + payload


def _vd(msg_type: int, body: bytes, size: int | None = None) -> bytes:
    return struct.pack("<IIQI", 1, msg_type, 0, len(body) if size is None else size) + body


def spice_seeds() -> list[bytes]:
    main_init = struct.pack("<8I", 0x5EED, 1, 3, 1, 1, 10, 0, 0)
    seeds = [
        # main: INIT, mouse mode, agent connected, then a clipboard grab and text from the guest
        record(0, 0, struct.pack("<H", 103) + main_init) + record(0, 0, struct.pack("<H", 105) + struct.pack("<HH", 3, 2))
        + record(0, 0, struct.pack("<H", 115) + struct.pack("<I", 10))
        + record(0, 0, struct.pack("<H", 109) + _vd(6, struct.pack("<II", 1, 0x68)))
        + record(0, 0, struct.pack("<H", 109) + _vd(7, struct.pack("<II", 0, 1)))
        + record(0, 0, struct.pack("<H", 109) + _vd(4, struct.pack("<I", 1) + "grüße".encode()))
        + record(0, 0, struct.pack("<H", 110) + struct.pack("<I", 5)),
        # a clipboard split over two AGENT_DATA pieces, and one over the cap
        record(0, 0, struct.pack("<H", 109) + _vd(4, struct.pack("<I", 1) + b"x" * 20, size=4 + 40))
        + record(0, 0, struct.pack("<H", 109) + b"y" * 20)
        + record(0, 0, struct.pack("<H", 109) + _vd(4, b"\x01\0\0\0", size=100_000_000)),
        # inputs: INIT, modifiers, motion ack
        record(1, 0, struct.pack("<H", 101) + b"\x02\x00") + record(1, 0, struct.pack("<H", 102) + b"\x04\x00")
        + record(1, 0, struct.pack("<H", 111)),
        # base messages on any channel: SET_ACK, PING, NOTIFY
        record(1, 0, struct.pack("<H", 3) + struct.pack("<II", 1, 2)) + record(1, 0, struct.pack("<H", 4) + struct.pack("<IQ", 7, 9))
        + record(0, 0, struct.pack("<H", 7) + struct.pack("<QIII", 0, 1, 1, 0) + struct.pack("<I", 5) + b"hello\0"),
        # playback: START, DATA, VOLUME, MUTE, MODE, LATENCY, STOP
        record(2, 0, struct.pack("<H", 103) + struct.pack("<IHII", 2, 1, 48000, 0))
        + record(2, 0, struct.pack("<H", 101) + struct.pack("<I", 0) + bytes(1920))
        + record(2, 0, struct.pack("<H", 105) + struct.pack("<B2H", 2, 30000, 40000))
        + record(2, 0, struct.pack("<H", 106) + b"\x01") + record(2, 0, struct.pack("<H", 102) + struct.pack("<IH", 0, 1))
        + record(2, 0, struct.pack("<H", 107) + struct.pack("<I", 20)) + record(2, 0, struct.pack("<H", 104)),
        # a framed stream on the main channel (mini header), one message over the size cap
        record(3, 1, _mini(103, main_init) + _mini(109, _vd(4, b"\x01\0\0\0hi")) + struct.pack("<HI", 109, 2**21)),
        record(3, 0, struct.pack("<QHII", 1, 103, len(main_init), 0) + main_init),
    ]
    # link: a real server's reply (1024-bit RSA key, mini header caps) and a lying one
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    reply = struct.pack("<I", 0) + der + struct.pack("<III", 1, 1, 4 + 162 + 12) + struct.pack("<II", 0xB, 1)
    good = struct.pack("<IIII", 0x51444552, 2, 2, len(reply)) + reply + struct.pack("<I", 0)
    seeds.append(record(4, 0, good))
    seeds.append(record(4, 0, struct.pack("<IIII", 0x51444552, 2, 2, 2**31) + reply))
    seeds.append(record(4, 0, struct.pack("<IIII", 0x51444552, 2, 2, len(reply)) + struct.pack("<I", 7)
                        + reply[4:]))
    return seeds


if __name__ == "__main__":
    write("scream_udp", udp_seeds())
    write("scream_ivshmem", ivshmem_seeds())
    write("spice_messages", spice_seeds())
    for folder in sorted(CORPUS.iterdir()):
        print(folder.name, len(list(folder.iterdir())), "seeds")
