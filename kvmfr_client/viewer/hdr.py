"""The HDR -> SDR mapping the conversion shaders apply (shaders/hdr.glsl), in numpy, and the choice of its
two numbers for a frame (:func:`light_for`).

Tests compare the window against this; it also documents the curve: linear scRGB is first scaled so the
guest's SDR white becomes 1.0 (scRGB's own 1.0 is 80 nits; a KVMFR 34 host says how many nits its SDR
white is), kept as is below ``KNEE`` and rolled off above it so that the content's peak reaches SDR's top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kvmfr_client.core.formats import linear_to_srgb, srgb_to_linear

KNEE = 0.75
SCRGB_WHITE_NITS = 80.0
MAX_NITS = 10000.0      # PQ's ceiling: a luminance the host gives above it (or below 1) is not used

_PQ_M1, _PQ_M2 = 0.1593017578125, 78.84375
_PQ_C1, _PQ_C2, _PQ_C3 = 0.8359375, 18.8515625, 18.6875
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]])


@dataclass(frozen=True)
class Light:
    """The two facts one frame's mapping uses, in nits, and where the peak came from."""

    peak_nits: float                         # content luminance that becomes SDR's top
    sdr_white_nits: float = SCRGB_WHITE_NITS  # luminance of the guest's SDR white
    source: str = "egl:peakLuminance"        # "egl:peakLuminance", "MaxCLL" or "mastering max luminance"

    @property
    def gain(self) -> float:
        """Linear scRGB multiplier that puts the guest's SDR white at 1.0 (shader uniform hdr_gain)."""
        return SCRGB_WHITE_NITS / self.sdr_white_nits

    @property
    def white(self) -> float:
        """The scaled linear value that becomes SDR's top (shader uniform hdr_white)."""
        return self.peak_nits / self.sdr_white_nits


def _nits(value) -> float | None:
    """A luminance the host gave, if it is one we can use (1..MAX_NITS nits)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if 1.0 <= v <= MAX_NITS else None


def light_for(peak_option: float, sdr_white_level: int = 0, metadata=None) -> Light:
    """The mapping's facts for one frame: the host's SDR white level (KVMFR 34; 0 from B7) and, when the
    frame carries HDR static metadata (:class:`kvmfr_client.core.session.HdrMetadata`), its MaxCLL, else its
    mastering display's max luminance, instead of ``egl:peakLuminance``. A value outside 1..10000 nits
    counts as not given."""
    sdr = _nits(sdr_white_level) or SCRGB_WHITE_NITS
    if metadata is not None:
        cll = _nits(metadata.max_cll)
        if cll is not None:
            return Light(cll, sdr, "MaxCLL")
        mastering = _nits(metadata.max_luminance)
        if mastering is not None:
            return Light(mastering, sdr, "mastering max luminance")
    return Light(float(peak_option), sdr)


def tone_map(x: np.ndarray, peak_nits: float, enabled: bool = True,
             sdr_white_nits: float = SCRGB_WHITE_NITS) -> np.ndarray:
    light = Light(peak_nits, sdr_white_nits)
    x = x * light.gain
    white = light.white
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


def scrgb_to_srgb8(lin: np.ndarray, peak_nits: float, hdr: bool,
                   sdr_white_nits: float = SCRGB_WHITE_NITS) -> np.ndarray:
    """Linear scRGB (..., 3) -> 8-bit sRGB as the viewer shows it."""
    return np.round(linear_to_srgb(tone_map(lin, peak_nits, hdr, sdr_white_nits)) * 255.0).astype(np.uint8)


def cursor_white(cursor_sdr_white_level: int, frame_mapped: bool) -> float:
    """The cursor shader's ``cursor_white``: on a tone-mapped HDR frame, a cursor whose message gives its SDR
    white level (KVMFR 34) is SDR content at that level (level / 80 in scRGB) and goes through the frame's
    mapping; 0.0 (colours as they are) otherwise: SDR frames, B7 cursors, levels outside 1..10000 nits."""
    nits = _nits(cursor_sdr_white_level)
    return nits / SCRGB_WHITE_NITS if frame_mapped and nits is not None else 0.0


def cursor_srgb8(rgb8: np.ndarray, light: Light, white: float) -> np.ndarray:
    """An opaque cursor pixel's colour (..., 3 uint8 sRGB) as the window shows it (shaders/cursor.frag)."""
    if not white:
        return rgb8
    lin = srgb_to_linear(rgb8 / 255.0) * white
    return scrgb_to_srgb8(lin, light.peak_nits, True, light.sdr_white_nits)
