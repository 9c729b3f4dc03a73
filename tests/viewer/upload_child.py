"""Runs in a subprocess for test_upload.py: one window, the same frame sequence through each upload path.

Usage: python -m tests.viewer.upload_child FRAMES.npz OUT.npz
FRAMES.npz holds ``rows`` (n, H, W*4) BGRA rows and ``damage`` (n, 8, 4) rects (x, y, w, h; w == 0: unused;
a frame with none is whole). For each path (pbo-persistent, pbo-classic, direct) the frames go through the
renderer as the viewer sends them: on the pixel-buffer paths each frame is written into the destination
the renderer hands out, and a damage frame only inside its rects (garbage elsewhere, as a pixel buffer
holds whatever it held), then drawn and read back. OUT.npz gets each path's readbacks and result.json
beside it what the automatic choice was on this renderer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(frames_path: str, out_path: str) -> int:
    from kvmfr_client.viewer.window import Window, init_glfw
    init_glfw()
    from kvmfr_client.core.formats import FrameType
    from kvmfr_client.viewer import upload
    from kvmfr_client.viewer.renderer import Renderer, RenderOptions

    data = np.load(frames_path)
    frames, damages = data["rows"], data["damage"]
    n, h, pitch = frames.shape
    w = pitch // 4
    win = Window("upload-test", (w, h), position=(0, 0), borderless=True, resizable=False)
    auto = Renderer(RenderOptions())
    result = {"auto": auto.upload_path, "auto_reason": auto.upload_reason, "paths": {}}
    auto.close()
    shots = {}
    for path in ("pbo-persistent", "pbo-classic", "direct"):
        r = Renderer(RenderOptions(upload="direct" if path == "direct" else "pbo"))
        if path == "pbo-classic":
            r.pixel_buffers.close()
            r.pixel_buffers = upload.PixelBuffers(persistent=False)
        kinds, out = [], []
        dest = None
        for i in range(n):
            rects = [tuple(int(v) for v in d) for d in damages[i] if d[2] > 0] or None
            if dest is None:
                rows, slot = frames[i], None
            else:
                slot, rows = dest
                rows = rows[:h]
                if rects is None:
                    rows[:, :pitch] = frames[i]
                else:
                    rows[:] = 0x5A
                    for x, y, rw, rh in rects:
                        rows[y:y + rh, 4 * x:4 * (x + rw)] = frames[i][y:y + rh, 4 * x:4 * (x + rw)]
            kinds.append(r.upload(FrameType.BGRA, w, h, rows, damage=rects, slot=slot))
            dest = r.next_destination(h, pitch)
            fw, fh = win.size()
            r.draw(fw, fh)
            out.append(r.readback(fw, fh))
            win.swap()
        shots[path] = np.stack(out)
        result["paths"][path] = {"reported": r.upload_path, "kinds": kinds}
        r.close()
    np.savez(out_path, **{k.replace("-", "_"): v for k, v in shots.items()})
    (Path(out_path).parent / "result.json").write_text(json.dumps(result))
    win.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
