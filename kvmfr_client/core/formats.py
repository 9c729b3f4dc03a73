"""KVMFR frame types and their byte layouts, with numpy codecs to and from 8-bit RGBA.

The producer (guest agent) encodes with these, the headless reader and the tests decode with them.
The viewer converts on the GPU (shaders/), and its tests compare against :func:`decode`.
All functions work on whole arrays; there is no per-pixel Python.
"""

from __future__ import annotations

import enum

import numpy as np

from .native import lib


class FrameType(enum.IntEnum):
    BGRA = lib.FRAME_TYPE_BGRA
    RGBA = lib.FRAME_TYPE_RGBA
    RGBA10 = lib.FRAME_TYPE_RGBA10
    RGBA16F = lib.FRAME_TYPE_RGBA16F
    BGR_32 = lib.FRAME_TYPE_BGR_32
    RGB_24 = lib.FRAME_TYPE_RGB_24


class Rotation(enum.IntEnum):
    ROT_0 = lib.FRAME_ROT_0
    ROT_90 = lib.FRAME_ROT_90
    ROT_180 = lib.FRAME_ROT_180
    ROT_270 = lib.FRAME_ROT_270


class FrameFlags(enum.IntFlag):
    BLOCK_SCREENSAVER = lib.FRAME_FLAG_BLOCK_SCREENSAVER
    REQUEST_ACTIVATION = lib.FRAME_FLAG_REQUEST_ACTIVATION
    TRUNCATED = lib.FRAME_FLAG_TRUNCATED
    HDR = lib.FRAME_FLAG_HDR
    HDR_PQ = lib.FRAME_FLAG_HDR_PQ
    HDR_METADATA = lib.FRAME_FLAG_HDR_METADATA     # KVMFR 34: the frame carries HDR static metadata


PACKED_24 = (FrameType.BGR_32, FrameType.RGB_24)


def bytes_per_pixel(ftype: FrameType) -> int:
    """Stored bytes per image pixel: 4, 8 (RGBA16F) or 3 (the packed 24-bit kinds)."""
    return int(lib.kv_frame_bpp(int(ftype)))


def data_width(ftype: FrameType, width: int) -> int:
    """Texels per stored row for ``width`` pixels: packed 24-bit rows are counted in 32-bit texels.

    The rule lives in the native helper (``kv_data_width``), which checks frames with it.
    """
    return int(lib.kv_data_width(int(ftype), width))


def row_bytes(ftype: FrameType, width: int) -> int:
    """Bytes of one stored row of ``width`` pixels without padding (the smallest valid pitch)."""
    return int(lib.kv_row_bytes(int(ftype), data_width(ftype, width)))


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def encode(rgba: np.ndarray, ftype: FrameType, pitch: int | None = None) -> np.ndarray:
    """8-bit RGBA image (H, W, 4) -> stored rows (H, pitch) uint8 in ``ftype``'s layout.

    RGBA16F holds linear scRGB (1.0 = SDR white), as a Windows HDR desktop does.
    """
    h, w, _ = rgba.shape
    need = row_bytes(ftype, w)
    pitch = need if pitch is None else pitch
    if pitch < need:
        raise ValueError(f"pitch {pitch} < {need} bytes needed for {w} pixels of {ftype.name}")
    out = np.zeros((h, pitch), np.uint8)
    if ftype == FrameType.BGRA:
        out[:, :need].reshape(h, w, 4)[:] = rgba[..., [2, 1, 0, 3]]
    elif ftype == FrameType.RGBA:
        out[:, :need].reshape(h, w, 4)[:] = rgba
    elif ftype == FrameType.RGBA10:
        c = rgba.astype(np.uint32)
        ten = (c[..., :3] << 2) | (c[..., :3] >> 6)
        word = ten[..., 0] | (ten[..., 1] << 10) | (ten[..., 2] << 20) | ((c[..., 3] >> 6) << 30)
        out[:, :need] = word.astype("<u4").view(np.uint8).reshape(h, need)
    elif ftype == FrameType.RGBA16F:
        lin = srgb_to_linear(rgba[..., :3].astype(np.float32) / 255.0)
        half = np.empty((h, w, 4), "<f2")
        half[..., :3] = lin
        half[..., 3] = rgba[..., 3] / 255.0
        out[:, :need] = half.view(np.uint8).reshape(h, need)
    elif ftype in PACKED_24:
        order = [2, 1, 0] if ftype == FrameType.BGR_32 else [0, 1, 2]
        out[:, : w * 3] = rgba[..., order].reshape(h, w * 3)
    else:
        raise ValueError(f"cannot encode {ftype}")
    return out


def decode(rows: np.ndarray, ftype: FrameType, width: int, height: int | None = None) -> np.ndarray:
    """Stored rows (H, pitch) uint8 -> 8-bit RGBA (H, W, 4). RGBA16F is mapped back to sRGB."""
    h = rows.shape[0] if height is None else height
    rows = rows[:h]
    w = width
    if ftype == FrameType.BGRA:
        return rows[:, : w * 4].reshape(h, w, 4)[..., [2, 1, 0, 3]].copy()
    if ftype == FrameType.RGBA:
        return rows[:, : w * 4].reshape(h, w, 4).copy()
    if ftype == FrameType.RGBA10:
        word = np.ascontiguousarray(rows[:, : w * 4]).view("<u4").reshape(h, w)
        out = np.empty((h, w, 4), np.uint8)
        for i in range(3):
            out[..., i] = ((word >> (10 * i)) & 0x3FF) >> 2
        out[..., 3] = ((word >> 30) & 3) * 85
        return out
    if ftype == FrameType.RGBA16F:
        half = np.ascontiguousarray(rows[:, : w * 8]).view("<f2").reshape(h, w, 4).astype(np.float32)
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = np.round(linear_to_srgb(half[..., :3]) * 255.0)
        out[..., 3] = np.round(np.clip(half[..., 3], 0, 1) * 255.0)
        return out
    if ftype in PACKED_24:
        px = rows[:, : w * 3].reshape(h, w, 3)
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = px[..., [2, 1, 0]] if ftype == FrameType.BGR_32 else px
        out[..., 3] = 255
        return out
    raise ValueError(f"cannot decode {ftype}")
