"""What the conformance tests against real Looking Glass memory dumps share (shared/fixtures/lg-b7 and
lg-master): loading a dump into a file, and the checks of a frame and a cursor against a dump's JSON."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from kvmfr_client.core import formats
from kvmfr_client.core.cursor import CursorType
from kvmfr_client.core.formats import FrameType

SHARED_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def fixtures(name: str, what: str) -> tuple[Path, list[str]]:
    """(the folder, its dump names); skips the module where the folder is absent (fails on CI)."""
    folder = SHARED_FIXTURES / name
    if not folder.is_dir():
        # CI lays shared/ beside the clone, so there a missing folder is a failure; elsewhere it may be absent.
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} fixtures not found at {folder} (shared/ must sit beside the checkout)", pytrace=False)
        pytest.skip(f"{what} fixtures not found at {folder}", allow_module_level=True)
    return folder, sorted(p.name[: -len(".bin.gz")] for p in folder.glob("*.bin.gz"))


def snapshot_fixtures(folder: Path, names: list[str]):
    """The module fixtures a conformance test uses: ``pattern_rgb`` (the captured test image) and ``dump``
    (each dump decoded by read_snapshot, with its JSON). Assign both to those names in the module."""
    from kvmfr_client.core.snapshot import read_snapshot

    @pytest.fixture(scope="module")
    def pattern_rgb():
        return pattern(folder)

    @pytest.fixture(params=names)
    def dump(request, tmp_path):
        path, expected = load(folder, request.param, tmp_path)
        return read_snapshot(str(path)), expected
    return pattern_rgb, dump


def load(folder: Path, name: str, tmp_path: Path) -> tuple[Path, dict]:
    """The dump written to a file of its own (a reader writes its subscription into it), and its JSON."""
    raw = gzip.decompress((folder / f"{name}.bin.gz").read_bytes())
    expected = json.loads((folder / f"{name}.json").read_text())
    assert hashlib.sha256(raw).hexdigest() == expected["sha256_uncompressed"]
    path = tmp_path / "region"
    path.write_bytes(raw)
    return path, expected


def pattern(folder: Path) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(folder / "pattern_640x480.png").convert("RGB"))


def check_frame_header(frame, latest: dict, block: dict) -> None:
    assert frame.serial == latest["frameSerial"] == block["frameSerial"]
    assert frame.type == FrameType(block["type"]) == FrameType.BGRA
    assert (frame.width, frame.height) == (block["frameWidth"], block["frameHeight"])
    assert (frame.screen_width, frame.screen_height) == (block["screenWidth"], block["screenHeight"])
    assert (frame.data_width, frame.data_height) == (block["dataWidth"], block["dataHeight"])
    assert (frame.pitch, frame.stride, int(frame.rotation)) == (block["pitch"], block["stride"], block["rotation"])
    assert int(frame.flags) == block["flags"] and frame.damage == ()
    assert frame.format_ver == block["formatVer"]


def check_pixels(frame, block: dict, pattern_rgb: np.ndarray) -> None:
    digest = hashlib.sha256(frame.pixels.tobytes()).hexdigest()
    assert digest == block["pixels"]["sha256_of_dataHeight_x_pitch_bytes"]
    rgb = formats.decode(frame.pixels, frame.type, frame.width)[..., :3]
    assert np.array_equal(rgb, pattern_rgb), "decoded pixels differ from the captured test image"


def check_cursor(cur, latest: dict) -> None:
    assert int(cur.flags) == latest["flags"]
    assert (cur.x, cur.y) == (latest["x"], latest["y"])
    shape = cur.shape
    assert shape is not None and shape.type == CursorType(latest["type"])
    assert (shape.width, shape.height, shape.pitch) == (latest["width"], latest["height"], latest["pitch"])
    assert (shape.hx, shape.hy) == (latest["hx"], latest["hy"])
    assert (cur.x + shape.hx, cur.y + shape.hy) == tuple(latest["pointer_hotspot_position"]) == (300, 200)
    assert hashlib.sha256(shape.data).hexdigest() == latest["shape_sha256"]
    color, _ = shape.layers()
    assert int((color[..., 3] == 255).sum()) == latest["shape_opaque_pixels"]
