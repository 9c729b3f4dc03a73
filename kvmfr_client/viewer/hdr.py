"""The HDR -> SDR mapping the conversion shaders apply (shaders/hdr.glsl), in numpy.

Tests compare the window against this; it also documents the curve: linear scRGB (1.0 = SDR white =
80 nits) is kept as is below ``KNEE`` and rolled off above it so that ``peak_nits`` reaches SDR's top.
"""

from __future__ import annotations

import numpy as np

from kvmfr_client.core.formats import linear_to_srgb

KNEE = 0.75
SCRGB_WHITE_NITS = 80.0

_PQ_M1, _PQ_M2 = 0.1593017578125, 78.84375
_PQ_C1, _PQ_C2, _PQ_C3 = 0.8359375, 18.8515625, 18.6875
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]])


def tone_map(x: np.ndarray, peak_nits: float, enabled: bool = True) -> np.ndarray:
    white = peak_nits / SCRGB_WHITE_NITS
    if not enabled or white <= 1.0:
        return np.clip(x, 0.0, 1.0)
    m = (white - KNEE) / (1.0 - KNEE)
    t = np.maximum(x - KNEE, 0.0) / (1.0 - KNEE)
    hi = KNEE + (1.0 - KNEE) * t * (1.0 + t / (m * m)) / (1.0 + t)
    return np.clip(np.where(x >= KNEE, hi, x), 0.0, 1.0)


def pq_to_scrgb(e: np.ndarray) -> np.ndarray:
    """PQ (ST 2084) signal in BT.2020 -> linear scRGB in BT.709, shape (..., 3)."""
    n = np.power(np.clip(e, 0.0, 1.0), 1.0 / _PQ_M2)
    nits = np.power(np.maximum(n - _PQ_C1, 0.0) / (_PQ_C2 - _PQ_C3 * n), 1.0 / _PQ_M1) * 10000.0
    return np.maximum(nits @ BT2020_TO_BT709.T, 0.0) / SCRGB_WHITE_NITS


def scrgb_to_srgb8(lin: np.ndarray, peak_nits: float, hdr: bool) -> np.ndarray:
    """Linear scRGB (..., 3) -> 8-bit sRGB as the viewer shows it."""
    return np.round(linear_to_srgb(tone_map(lin, peak_nits, hdr)) * 255.0).astype(np.uint8)
