"""Runs in a subprocess: opens a real window, plays a script of frames/cursor moves, saves readbacks.

Usage: python -m tests.viewer.render_child SCRIPT.json
The script: {"win": [w, h], "options": {RenderOptions fields}, "steps": [...]} where a step is one of
  {"frame": "rows.npy", "type": 1, "width": W, "height": H, "flags": 0, "damage": [[x,y,w,h],...]|null,
   "rotation": 0..3 (the KVMFR Rotation value),
   "light": {"sdr_white_level": nits, "max_cll": nits, "max_luminance": nits} (optional: the frame's KVMFR 34
   HDR facts, through kvmfr_client.viewer.hdr.light_for)}
  {"cursor_shape": {"type": 0, "width": .., "height": .., "hx": 0, "hy": 0, "pitch": .., "data": "shape.bin"}}
  {"cursor": [x, y, visible(, sdr_white_level)]}   top-left of the image, guest screen pixels; the
                                       cursor's SDR white level in nits (KVMFR 34), 0 when left out
  {"screen": [w, h]}                   guest desktop size (cursor space)
  {"cursor_keep_size": true}           egl:scalePointer: the cursor stays 1:1 on a smaller picture
  {"draw": "out.npy"}                  draw, read the back buffer back into out.npy, swap
A file "result.json" beside the script records the render path of each draw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def main(script_path: str) -> int:
    script_file = Path(script_path)
    base = script_file.parent
    script = json.loads(script_file.read_text())
    from kvmfr_client.viewer.window import Window, init_glfw
    init_glfw()
    from kvmfr_client.core.cursor import CursorShape, CursorType
    from kvmfr_client.core.formats import FrameFlags, FrameType
    from kvmfr_client.viewer import hdr
    from kvmfr_client.viewer.gui import Gui, Panel
    from kvmfr_client.viewer.renderer import Renderer, RenderOptions

    w, h = script["win"]
    win = Window("render-test", (w, h), position=(0, 0), borderless=True, resizable=False)
    renderer = Renderer(RenderOptions(**script.get("options", {})))
    overlay = None
    if script.get("overlay"):   # text lines shown top-left by the overlay UI
        gui, panel = Gui(), Panel("text", "", script["overlay"], anchor="topleft")
        overlay = type("_Text", (), {"draw": lambda self, _r, ww, wh: gui.draw([panel], ww, wh)})()
    paths = []
    for step in script["steps"]:
        if "frame" in step:
            rows = np.load(base / step["frame"])
            damage = [tuple(r) for r in step["damage"]] if step.get("damage") else None
            light = None
            if step.get("light") is not None:
                facts = step["light"]
                meta = None
                if "max_cll" in facts or "max_luminance" in facts:
                    meta = SimpleNamespace(max_cll=facts.get("max_cll", 0), max_luminance=facts.get("max_luminance", 0))
                light = hdr.light_for(renderer.options.peak_nits, facts.get("sdr_white_level", 0), meta)
            renderer.upload(FrameType(step["type"]), step["width"], step["height"], rows,
                            FrameFlags(step.get("flags", 0)), damage, 90 * step.get("rotation", 0), light)
        elif "cursor_shape" in step:
            c = step["cursor_shape"]
            shape = CursorShape(CursorType(c["type"]), c["width"], c["height"], c["hx"], c["hy"], c["pitch"],
                                (base / c["data"]).read_bytes())
            renderer.cursor.set_shape(shape)
        elif "cursor" in step:
            x, y, visible, *level = step["cursor"]
            renderer.cursor.move(x, y)
            renderer.cursor.visible = bool(visible)
            renderer.cursor.sdr_white_level = level[0] if level else 0
        elif "screen" in step:
            renderer.cursor.screen = tuple(step["screen"])
        elif "cursor_keep_size" in step:
            renderer.cursor.keep_size = bool(step["cursor_keep_size"])
        elif "draw" in step:
            fw, fh = win.size()
            paths.append(renderer.draw(fw, fh, overlay))
            np.save(base / step["draw"], renderer.readback(fw, fh))
            win.swap()
    (base / "result.json").write_text(json.dumps({"paths": paths, "filter_errors": renderer.filter_errors,
                                                  "chain_runs": renderer.chain.runs if renderer.chain else None,
                                                  **Renderer.info()}))
    renderer.close()
    win.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
