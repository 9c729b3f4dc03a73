"""Filter benchmark (not a test): CPU-ms per frame of each picture filter at 1080p and 2160p, beside the
plain 1:1 path (and the plain scaled path) measured in the same run, in real windows under Xvfb.

    nice -n 10 .venv/bin/python benchmarks/filters.py [--sizes 1920x1080,3840x2160] [--frames 6] [--json OUT]

Each case runs in its own process (a window of the output size): a warm-up frame, then ``--frames`` frames,
each a full upload of a new frame (so the chain runs: it is kept while the picture does not change), the
draw, glFinish and the swap. CPU is the whole process's (llvmpipe's threads included) per frame; the
figure printed is the median of the frames. What each case shows at output size WxH:

- plain 1:1      no filter, frame WxH, window WxH: the blit path (the default)
- plain scaled   no filter, frame 2/3 size, linear quad up to WxH (the shader path without filters)
- nightvision, colorblind, cas   1:1 at WxH (one full-screen pass, then the blit)
- downscale      frame 3/2 size down to WxH (Lanczos-3, two passes); "downscale linear": the linear kernel
                 (eglFilter:downscaleFilter=1)
- easu           frame 2/3 size up to WxH (edge-adaptive upscaler)
- fsr            easu + cas, as eglFilter:ffxFSR
- glsl           tests/viewer/data/mini_anime4k.glsl (3 passes, 2x) from a frame of half size
- anime4k-like   tests/viewer/data/anime4k_like.glsl (two 3x3x4 convolutions, depth-to-space 2x, sharpen;
                 the shape of Anime4K's smallest CNN upscaler) from a frame of half size
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIXTURE = REPO / "tests" / "viewer" / "data" / "mini_anime4k.glsl"
ANIME4K_LIKE = REPO / "tests" / "viewer" / "data" / "anime4k_like.glsl"


def cases(w: int, h: int) -> list[tuple[str, tuple[int, int], list]]:
    """(name, frame size, chain) for output size w x h."""
    small = (w * 2 // 3, h * 2 // 3)
    return [
        ("plain 1:1", (w, h), []),
        ("plain scaled", small, []),
        ("nightvision", (w, h), [{"filter": "nightvision", "gain": 2}]),
        ("colorblind", (w, h), [{"filter": "colorblind", "mode": 2}]),
        ("cas", (w, h), [{"filter": "cas", "sharpness": 0.5}]),
        ("downscale", (w * 3 // 2, h * 3 // 2), [{"filter": "downscale"}]),
        ("downscale linear", (w * 3 // 2, h * 3 // 2), [{"filter": "downscale", "kernel": "linear"}]),
        ("easu", small, [{"filter": "easu"}]),
        ("fsr", small, [{"filter": "easu"}, {"filter": "cas", "sharpness": 1.0}]),
        ("glsl", (w // 2, h // 2), [{"filter": "glsl", "path": str(FIXTURE)}]),
        ("anime4k-like", (w // 2, h // 2), [{"filter": "glsl", "path": str(ANIME4K_LIKE)}]),
    ]


def child(spec_path: str) -> int:
    import numpy as np
    from OpenGL import GL

    from kvmfr_client.core.formats import FrameType
    from kvmfr_client.viewer.renderer import Renderer, RenderOptions
    from kvmfr_client.viewer.window import Window, init_glfw
    spec = json.loads(Path(spec_path).read_text())
    init_glfw()
    w, h = spec["win"]
    fw, fh = spec["frame"]
    win = Window("filters-bench", (w, h), position=(0, 0), borderless=True, resizable=False)
    r = Renderer(RenderOptions(filters=spec["filters"]))
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (fh, fw * 4), dtype=np.uint8) for _ in range(2)]
    cpu, wall = [], []
    path = ""
    for i in range(spec["frames"] + 1):
        c0, t0 = time.process_time(), time.perf_counter()
        r.upload(FrameType.BGRA, fw, fh, frames[i % 2])
        sw, sh = win.size()
        path = r.draw(sw, sh)
        GL.glFinish()
        win.swap()
        if i:   # the first frame warms up (shader compiles, targets made)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - t0) * 1000)
    Path(spec["out"]).write_text(json.dumps({"cpu_ms": cpu, "wall_ms": wall, "path": path,
                                             "errors": r.filter_errors, "window": list(win.size()),
                                             **Renderer.info()}))
    r.close()
    win.destroy()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1920x1080,3840x2160")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--only", help="comma-separated case names")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child)
    from tests.support.xvfb import start_xvfb
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    xserver = start_xvfb(max(w for w, _ in sizes), max(h for _, h in sizes))
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="kvmfr-filters-") as tmp:
            for w, h in sizes:
                for name, frame, chain in cases(w, h):
                    if args.only and name not in args.only.split(","):
                        continue
                    spec = Path(tmp) / "spec.json"
                    out = Path(tmp) / "out.json"
                    spec.write_text(json.dumps({"win": [w, h], "frame": list(frame), "filters": chain,
                                                "frames": args.frames, "out": str(out)}))
                    proc = subprocess.run([sys.executable, __file__, "--child", str(spec)], env=xserver.env(),
                                          capture_output=True, text=True, timeout=600)
                    if proc.returncode != 0:
                        print(f"{name} at {w}x{h} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                        continue
                    r = json.loads(out.read_text())
                    row = {"size": f"{w}x{h}", "case": name, "frame": f"{frame[0]}x{frame[1]}",
                           "cpu_ms_p50": statistics.median(r["cpu_ms"]), "wall_ms_p50": statistics.median(r["wall_ms"]),
                           "path": r["path"], "errors": r["errors"], "renderer": r["renderer"]}
                    results.append(row)
                    print(f"{row['size']:>10} {name:<13} frame {row['frame']:>10}  CPU {row['cpu_ms_p50']:8.1f} ms"
                          f"  wall {row['wall_ms_p50']:8.1f} ms  {row['path']}", flush=True)
    finally:
        xserver.stop()
    print(f"\nrenderer: {results[0]['renderer'] if results else '?'}; medians of {args.frames} frames; each "
          "frame = full upload + filters + present + glFinish + swap; CPU = the whole process (llvmpipe threads "
          "included)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
