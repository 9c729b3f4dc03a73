"""Write kvmfr-view's icon files from kvmfr_client/viewer/icon.py (the one drawing):

    data/icons/hicolor/NxN/apps/kvmfr-view.png    for N in icon.SIZES
    data/icons/hicolor/scalable/apps/kvmfr-view.svg

    python -m tools.icon [--check]     (--check: exit 1 if a committed file differs from what this writes)

The PNGs are written by this module's own encoder (zlib, fixed settings), so the same drawing always gives
the same bytes and tests/viewer/test_identity.py can compare them with the committed files.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from kvmfr_client.viewer import icon
from kvmfr_client.viewer.identity import APP_ID
from tools import generated

REPO = Path(__file__).resolve().parents[1]
ICONS = REPO / "data" / "icons" / "hicolor"


def png_bytes(rgba: np.ndarray) -> bytes:
    """An 8-bit RGBA PNG of ``rgba`` (rows top first), no filter, zlib level 9."""
    h, w = rgba.shape[:2]
    raw = b"".join(b"\x00" + rgba[row].tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def files() -> dict[Path, bytes]:
    """Every icon file, by path under the repository, with its content."""
    out = {ICONS / f"{n}x{n}" / "apps" / f"{APP_ID}.png": png_bytes(icon.render(n)) for n in icon.SIZES}
    out[ICONS / "scalable" / "apps" / f"{APP_ID}.svg"] = icon.svg().encode()
    return out


def main(argv: list[str] | None = None) -> int:
    return generated.main("icon", __doc__.split("\n\n")[0], files(), argv)


if __name__ == "__main__":
    sys.exit(main())
