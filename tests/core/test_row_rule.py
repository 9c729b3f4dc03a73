"""The packed-24 row rule, written once in the native helper and read through ``formats``."""

from __future__ import annotations

import numpy as np
import pytest

from kvmfr_client.core.formats import PACKED_24, FrameType, data_width, encode, row_bytes
from kvmfr_client.core.native import lib


@pytest.mark.parametrize("width, texels, row", [(1, 1, 4), (3, 3, 12), (4, 3, 12), (5, 4, 16), (1920, 1440, 5760)])
def test_packed_rows_count_32_bit_texels(width, texels, row):
    for ftype in PACKED_24:
        assert data_width(ftype, width) == texels
        assert row_bytes(ftype, width) == row == lib.kv_row_bytes(ftype, texels)


@pytest.mark.parametrize("ftype, bpp", [(FrameType.BGRA, 4), (FrameType.RGBA, 4), (FrameType.RGBA10, 4),
                                        (FrameType.RGBA16F, 8)])
def test_other_kinds_store_one_pixel_a_texel(ftype, bpp):
    for width in (1, 5, 1920):
        assert data_width(ftype, width) == width and row_bytes(ftype, width) == width * bpp


def test_invalid_type_has_no_rows():
    assert lib.kv_data_width(lib.FRAME_TYPE_INVALID, 100) == 0 and lib.kv_row_bytes(lib.FRAME_TYPE_INVALID, 100) == 0
    assert lib.kv_data_width(lib.FRAME_TYPE_MAX, 100) == 0


@pytest.mark.parametrize("ftype", list(FrameType), ids=lambda t: t.name)
def test_encoded_rows_are_as_wide_as_the_rule_says(ftype):
    image = np.zeros((2, 7, 4), np.uint8)
    assert encode(image, ftype).shape == (2, row_bytes(ftype, 7))
