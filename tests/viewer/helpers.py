"""Drive real viewer windows in subprocesses (a GL crash fails the test, not the runner)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from kvmfr_client.core.cursor import CursorType
from kvmfr_client.core.formats import FrameType, encode

REPO = Path(__file__).resolve().parents[2]


class Script:
    """Builds a render_child script: frames, cursor changes and draws; :meth:`run` returns readbacks."""

    def __init__(self, tmp: Path, win: tuple[int, int], **options):
        self.tmp = tmp
        self.win = win
        self.options = options
        self.steps: list[dict] = []
        self.overlay: list[str] | None = None
        self._n = 0
        self._draws: list[str] = []

    def _name(self, stem: str, ext: str) -> str:
        self._n += 1
        return f"{stem}{self._n}.{ext}"

    def frame(self, rgba: np.ndarray, ftype: FrameType = FrameType.BGRA, damage=None, flags: int = 0,
              rotation: int = 0, rows: np.ndarray | None = None, pitch: int | None = None) -> "Script":
        h, w = rgba.shape[:2] if rgba is not None else rows.shape[:2]
        data = rows if rows is not None else encode(rgba, ftype, pitch)
        name = self._name("frame", "npy")
        np.save(self.tmp / name, data)
        self.steps.append({"frame": name, "type": int(ftype), "width": int(w), "height": int(h),
                           "flags": int(flags), "damage": damage, "rotation": rotation})
        return self

    def raw_frame(self, rows: np.ndarray, ftype: FrameType, width: int, height: int, flags: int = 0,
                  light: dict | None = None) -> "Script":
        """``light``: the frame's KVMFR 34 HDR facts (sdr_white_level, max_cll, max_luminance), see
        render_child."""
        name = self._name("frame", "npy")
        np.save(self.tmp / name, rows)
        self.steps.append({"frame": name, "type": int(ftype), "width": width, "height": height,
                           "flags": int(flags), "damage": None, "rotation": 0, "light": light})
        return self

    def cursor_shape(self, ctype: CursorType, width: int, height: int, pitch: int, data: bytes,
                     hx: int = 0, hy: int = 0) -> "Script":
        name = self._name("shape", "bin")
        (self.tmp / name).write_bytes(data)
        self.steps.append({"cursor_shape": {"type": int(ctype), "width": width, "height": height, "hx": hx,
                                            "hy": hy, "pitch": pitch, "data": name}})
        return self

    def cursor(self, x: int, y: int, visible: bool = True, sdr_white_level: int = 0) -> "Script":
        self.steps.append({"cursor": [x, y, visible, sdr_white_level]})
        return self

    def cursor_keep_size(self, on: bool) -> "Script":
        """egl:scalePointer: the cursor keeps its own size on a picture shown smaller."""
        self.steps.append({"cursor_keep_size": on})
        return self

    def screen(self, w: int, h: int) -> "Script":
        self.steps.append({"screen": [w, h]})
        return self

    def draw(self) -> "Script":
        name = self._name("draw", "npy")
        self._draws.append(name)
        self.steps.append({"draw": name})
        return self

    def run(self, xserver, timeout: float = 60) -> tuple[list[np.ndarray], dict]:
        script = self.tmp / "script.json"
        body = {"win": list(self.win), "options": self.options, "steps": self.steps}
        if self.overlay is not None:
            body["overlay"] = self.overlay
        script.write_text(json.dumps(body))
        proc = subprocess.run([sys.executable, "-m", "tests.viewer.render_child", str(script)], cwd=REPO,
                              env=xserver.env(), capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"render child failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        result = json.loads((self.tmp / "result.json").read_text())
        return [np.load(self.tmp / name) for name in self._draws], result


def pattern(w: int, h: int, seed: int = 1, alpha: bool = False) -> np.ndarray:
    """A random RGBA test image (opaque unless ``alpha``)."""
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    if not alpha:
        img[..., 3] = 255
    return img


def rgb_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Largest per-channel RGB difference."""
    assert a.shape[:2] == b.shape[:2], f"size {a.shape[:2]} != {b.shape[:2]}"
    return int(np.abs(a[..., :3].astype(int) - b[..., :3].astype(int)).max())
