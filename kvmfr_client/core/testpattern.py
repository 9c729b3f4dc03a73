"""The guest agent's test pattern: frame serial and capture time in a barcode, over a known image.

Layout of a frame (W x H):
* Rows ``0 .. code_rows``: a barcode of BLOCK x BLOCK squares, white = 1, black = 0, row-major.
  Bits: 12-bit magic, 4-bit pattern kind, 32-bit frame serial, 48-bit capture time (CLOCK_MONOTONIC,
  microseconds, low 48 bits), 16-bit CRC of the 96 bits before it. Black and white survive every frame
  format, scaling by 1/2 or more, and a screen grab, so the same decoder reads frames from shared
  memory and from the window on screen (the latency probe).
* Below: ``moving`` kind: a colour field that scrolls BODY_STEP pixels left per frame; ``damage`` kind:
  a still field with a SQUARE x SQUARE block that moves each frame, so frames carry damage rectangles.

Everything is numpy over whole arrays; verification compares a few sampled rows byte for byte in the
stored format, so it costs well under a millisecond a frame.
"""

from __future__ import annotations

import enum
import functools
import time
from dataclasses import dataclass

import numpy as np

from .formats import FrameType, bytes_per_pixel, encode, row_bytes

BLOCK = 8
MAGIC = 0xA5C
BITS = 12 + 4 + 32 + 48 + 16
BODY_PERIOD = 256
BODY_STEP = 4
SQUARE = 64
SQUARE_STEP = 8
SAMPLE_ROWS = 9


class PatternKind(enum.IntEnum):
    MOVING = 1
    DAMAGE = 2


def _crc16_byte(top: int) -> int:
    crc = top << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
    return crc & 0xFFFF


_CRC16_TABLE = tuple(_crc16_byte(b) for b in range(256))


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (a byte at a time from a table: the viewer checks one code per frame)."""
    crc = 0xFFFF
    table = _CRC16_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def now_us() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def code_layout(width: int) -> tuple[int, int]:
    """(blocks per row, rows of blocks) for a frame ``width`` pixels wide."""
    per_row = width // BLOCK
    if per_row < 8:
        raise ValueError(f"frame width {width} is too small for the test pattern")
    return per_row, -(-BITS // per_row)


def code_rows(width: int) -> int:
    return code_layout(width)[1] * BLOCK


def encode_bits(kind: PatternKind, serial: int, t_us: int) -> np.ndarray:
    head = (MAGIC << 4 | int(kind)).to_bytes(2, "big") + (serial & 0xFFFFFFFF).to_bytes(4, "big") \
        + (t_us & 0xFFFFFFFFFFFF).to_bytes(6, "big")
    payload = head + crc16(head).to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(payload, np.uint8))


def decode_bits(bits: np.ndarray) -> tuple[PatternKind, int, int] | None:
    payload = np.packbits(bits[:BITS].astype(np.uint8)).tobytes()
    if crc16(payload[:12]) != int.from_bytes(payload[12:14], "big"):
        return None
    magic_kind = int.from_bytes(payload[0:2], "big")
    if magic_kind >> 4 != MAGIC or (magic_kind & 0xF) not in (1, 2):
        return None
    return PatternKind(magic_kind & 0xF), int.from_bytes(payload[2:6], "big"), int.from_bytes(payload[6:12], "big")


def render_code(width: int, kind: PatternKind, serial: int, t_us: int) -> np.ndarray:
    """The barcode rows as RGBA (code_rows(width), width, 4)."""
    per_row, nrows = code_layout(width)
    bits = np.zeros(per_row * nrows, np.uint8)
    bits[:BITS] = encode_bits(kind, serial, t_us)
    blocks = bits.reshape(nrows, per_row) * 255
    img = np.zeros((nrows * BLOCK, width, 4), np.uint8)
    img[:, : per_row * BLOCK, :3] = np.repeat(np.repeat(blocks, BLOCK, 0), BLOCK, 1)[..., None]
    img[..., 3] = 255
    return img


def read_code(rgba: np.ndarray, x0: int = 0, y0: int = 0, scale: float = 1.0) -> tuple[PatternKind, int, int] | None:
    """Decode the barcode from an RGBA (or RGB) image whose frame starts at (x0, y0), scaled by ``scale``.

    Returns (kind, serial, t_capture_us) or None when no valid code is there.
    """
    height, width = rgba.shape[:2]
    where = _block_centres(width, height, x0, y0, scale)
    if where is None:
        return None
    ys, xs = where
    samples = rgba[ys, xs, :3].sum(axis=-1, dtype=np.int32) > 3 * 127
    return decode_bits(samples.reshape(-1))


@functools.lru_cache(maxsize=16)
def _block_centres(width: int, height: int, x0: int, y0: int, scale: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows, columns) index arrays of the code's block centres in an image of that size, None when the code
    does not fit (kept per size: the viewer reads a code from every frame)."""
    frame_w = int(round((width - x0) / scale))
    try:
        per_row, nrows = code_layout(frame_w)
    except ValueError:
        return None
    centres = (np.arange(per_row) * BLOCK + BLOCK / 2) * scale + x0
    rows = (np.arange(nrows) * BLOCK + BLOCK / 2) * scale + y0
    xs = np.minimum(centres.astype(int), width - 1)
    ys = rows.astype(int)
    if ys[-1] >= height:
        return None
    return ys[:, None], xs[None, :]


def _body(width: int, height: int) -> np.ndarray:
    """RGBA colour field, ``width`` wide; lopsided channels so swapped channels show."""
    x = np.arange(width, dtype=np.uint32)[None, :]
    y = np.arange(height, dtype=np.uint32)[:, None]
    img = np.empty((height, width, 4), np.uint8)
    img[..., 0] = (x * 1) & 0xFF
    img[..., 1] = (y + (x >> 8) * 64) & 0xFF
    img[..., 2] = ((x ^ y) * 3) & 0xFF
    img[..., 3] = 255
    return img


def square_color(serial: int) -> tuple[int, int, int]:
    return (serial * 37) & 0xFF, (serial * 91 + 80) & 0xFF, 0xFF - ((serial * 53) & 0xFF)


@dataclass
class Pattern:
    """A test pattern of one size, kind and stored format, with its stored rows precomputed."""

    width: int
    height: int
    ftype: FrameType
    kind: PatternKind = PatternKind.MOVING

    def __post_init__(self) -> None:
        self.code_rows = code_rows(self.width)
        if self.height < self.code_rows + SQUARE + 8:
            raise ValueError(f"frame height {self.height} is too small for the test pattern")
        self.bpp = bytes_per_pixel(self.ftype)
        self.pitch = row_bytes(self.ftype, self.width)
        # Wide enough for every scroll offset, plus slack so a full pitch can be read past the last pixel.
        self.base_width = self.width + BODY_PERIOD + 8
        self.base = encode(_body(self.base_width, self.height), self.ftype)
        self.sample_rows = np.unique(np.concatenate([
            np.linspace(self.code_rows, self.height - 1, SAMPLE_ROWS).astype(int),
            [self.square_y + SQUARE // 2]]))

    # ---- geometry ----------------------------------------------------------------------------

    @property
    def square_y(self) -> int:
        return (self.height + self.code_rows) // 2 - SQUARE // 2

    def square_x(self, serial: int) -> int:
        return (serial * SQUARE_STEP) % (self.width - SQUARE)

    def body_offset(self, serial: int) -> int:
        return 0 if self.kind == PatternKind.DAMAGE else (serial * BODY_STEP) % BODY_PERIOD

    def damage(self, serial: int) -> list[tuple[int, int, int, int]]:
        """Damage rectangles of frame ``serial`` relative to ``serial - 1`` (empty = whole frame)."""
        if self.kind != PatternKind.DAMAGE or serial <= 1:
            return []
        rects = [(0, 0, self.width, self.code_rows)]
        for s in (serial - 1, serial):
            rects.append((self.square_x(s), self.square_y, SQUARE, SQUARE))
        return rects

    # ---- producing -----------------------------------------------------------------------------

    def code_stored(self, serial: int, t_us: int) -> np.ndarray:
        return encode(render_code(self.width, self.kind, serial, t_us), self.ftype, self.pitch)

    def body_stored(self, serial: int) -> np.ndarray:
        """A view of the stored body rows (from row code_rows), ready for a strided write."""
        off = self.body_offset(serial) * self.bpp
        return self.base[self.code_rows:, off:]

    def square_stored(self, serial: int) -> np.ndarray:
        block = np.empty((1, SQUARE, 4), np.uint8)
        block[..., :3] = square_color(serial)
        block[..., 3] = 255
        return encode(block, self.ftype)[0, : SQUARE * self.bpp]

    def render_stored(self, serial: int, t_us: int) -> np.ndarray:
        """The whole stored frame (height, pitch): for tests and for the damage source's full writes."""
        out = np.empty((self.height, self.pitch), np.uint8)
        out[: self.code_rows] = self.code_stored(serial, t_us)
        body = self.body_stored(serial)
        out[self.code_rows:] = body[:, : self.pitch]
        if self.kind == PatternKind.DAMAGE:
            x = self.square_x(serial) * self.bpp
            out[self.square_y: self.square_y + SQUARE, x: x + SQUARE * self.bpp] = self.square_stored(serial)
        return out

    def render_rgba(self, serial: int, t_us: int) -> np.ndarray:
        from .formats import decode
        return decode(self.render_stored(serial, t_us), self.ftype, self.width)

    # ---- verifying -----------------------------------------------------------------------------

    def verify(self, rows: np.ndarray, serial: int) -> list[int]:
        """Rows (of the sampled ones) whose stored bytes differ from what frame ``serial`` must hold.

        ValueError when ``rows`` holds fewer rows or bytes than the frame (a truncated frame: the host's
        frame did not fit in the shared memory), so a caller can skip it instead of failing on an index."""
        if rows.ndim != 2 or rows.shape[0] < self.height or rows.shape[1] < self.width * self.bpp:
            raise ValueError(f"a {self.width}x{self.height} frame needs {self.height} rows of "
                             f"{self.width * self.bpp} bytes; only {rows.shape[0]} rows arrived")
        bad = []
        n = self.width * self.bpp
        off = self.body_offset(serial) * self.bpp
        sq_x = self.square_x(serial) * self.bpp
        square = self.square_stored(serial) if self.kind == PatternKind.DAMAGE else None
        for r in self.sample_rows:
            expect = self.base[r, off: off + n]
            got = rows[r, :n]
            if square is not None and self.square_y <= r < self.square_y + SQUARE:
                expect = expect.copy()
                expect[sq_x: sq_x + SQUARE * self.bpp] = square
            if not np.array_equal(got, expect):
                bad.append(int(r))
        return bad


def read_stored_code(rows: np.ndarray, ftype: FrameType, width: int):
    """Decode the barcode straight from stored rows of a frame (any format)."""
    from .formats import decode
    try:
        n = code_rows(width)
    except ValueError:
        return None
    if rows.shape[0] < n:
        return None
    if ftype in (FrameType.BGRA, FrameType.RGBA) and rows.ndim == 2 and rows.shape[1] >= width * 4:
        # The barcode is black and white: its blocks read the same in any channel order, so the stored bytes
        # of the BITS block centres are sampled as they are (no decoded copy of the code rows: the viewer
        # reads one code a frame, and this is a fifth of the decoded read's time).
        ys, cols = _stored_centres(width)
        return decode_bits(rows[ys, cols].sum(axis=-1, dtype=np.int32) > 3 * 127)
    return read_code(decode(rows[:n], ftype, width))


@functools.lru_cache(maxsize=16)
def _stored_centres(width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows (BITS, 1), byte columns (BITS, 3)) of the first three bytes of each code bit's block centre in
    stored 4-byte-a-pixel rows of a frame ``width`` pixels wide."""
    per_row, _ = code_layout(width)
    k = np.arange(BITS)
    ys = (k // per_row) * BLOCK + BLOCK // 2
    xs = (k % per_row) * BLOCK + BLOCK // 2
    return ys[:, None], xs[:, None] * 4 + np.arange(3)
