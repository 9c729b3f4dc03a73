"""Viewer benchmark (not a test): the agent's test pattern at 60 fps into the real viewer under Xvfb.

    .venv/bin/python benchmarks/viewer.py [--sizes 1920x1080,2560x1440,3840x2160] [--seconds 30]
                                          [--format BGRA] [--json OUT.json] [--force-shader]
                                          [--displays N]

For each size: frames shown / frames produced, the viewer's CPU per shown frame, upload and present
(draw + swap) times, capture-to-swap latency (the pattern's timestamp), and beside them a memcpy of
one frame out of a /dev/shm mapping measured in the same run. The target on the 2-core llvmpipe
machines: 1080p shows >= 99% of 60 frames/s. ``--displays N``: N agents at each size into N files and ONE
viewer with a window per display (``kvmfr-view --displays``), one row per display.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.agent import start_agent  # noqa: E402
from tests.support.process import stop_process  # noqa: E402
from tests.support.xvfb import XServer, start_xvfb  # noqa: E402


def memcpy_ms(nbytes: int, repeats: int = 50) -> float:
    """Median time to copy one frame out of a /dev/shm mapping into a private buffer (numpy memcpy)."""
    fd, path = tempfile.mkstemp(dir="/dev/shm", prefix="kvmfr-bench-")
    try:
        os.ftruncate(fd, nbytes)
        mm = mmap.mmap(fd, nbytes)
        src = np.frombuffer(mm, np.uint8)
        src[:] = 7
        dst = np.empty(nbytes, np.uint8)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            np.copyto(dst, src)
            times.append((time.perf_counter() - t) * 1000)
        del src
        mm.close()
        return float(np.median(times))
    finally:
        os.close(fd)
        os.unlink(path)


def run_one(xserver: XServer, width: int, height: int, seconds: float, fmt: str, force_shader: bool,
            extra: tuple[str, ...] = ()) -> dict:
    """The agent at WxH 60 fps and kvmfr-view 1:1 on it for ``seconds`` (``extra``: more viewer arguments);
    the viewer's --stats-json with what was produced, shown, and one frame's memcpy beside it."""
    shm = Path(f"/dev/shm/kvmfr-bench-{os.getpid()}-{width}x{height}")
    tmp = Path(tempfile.mkdtemp(prefix="kvmfr-bench-"))
    env = xserver.env(XDG_CONFIG_HOME=str(tmp))
    agent = start_agent(shm, (width, height), fps=60, fmt=fmt, env=env, log=tmp / "agent.log")
    stats_file = tmp / "stats.json"
    cmd = [sys.executable, "-m", "kvmfr_client.cli.view", "--shm", str(shm), "--exit-after", str(seconds),
           "--stats-json", str(stats_file), f"win:size={width}x{height}", "win:position=0,0",
           "win:borderless=yes"]
    if force_shader:
        cmd.append("--force-shader")
    cmd += extra
    try:
        viewer = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 60)
        if viewer.returncode != 0:
            raise RuntimeError(f"viewer failed: {viewer.stderr[-2000:]}")
        stats = json.loads(stats_file.read_text())
    finally:
        stop_process(agent, timeout=10)
        shm.unlink(missing_ok=True)
    return _derived(stats, width, height)


def _derived(stats: dict, width: int, height: int) -> dict:
    """What one window's --stats-json implies: frames produced, the share shown, a memcpy beside it."""
    produced = (stats["last_serial"] - stats["first_serial"] + 1) if stats.get("first_serial") else 0
    span = (produced - 1) / stats["ups"] if stats["ups"] else 0.0
    stats["frames_produced"] = produced
    stats["produced_fps"] = round(produced / span, 2) if span else 0.0
    stats["shown_ratio"] = round(stats["frames_shown"] / produced, 4) if produced else 0.0
    stats["memcpy_ms"] = round(memcpy_ms(width * height * 4), 3)
    stats["size"] = f"{width}x{height}"
    return stats


def run_displays(xserver: XServer, n: int, width: int, height: int, seconds: float, fmt: str,
                 force_shader: bool) -> list[dict]:
    """``n`` agents at WxH 60 fps into ``n`` files and one kvmfr-view with a window per display (1:1) for
    ``seconds``; each window's stats, as :func:`run_one`'s, with ``display`` (from 1)."""
    tmp = Path(tempfile.mkdtemp(prefix="kvmfr-bench-"))
    env = xserver.env(XDG_CONFIG_HOME=str(tmp))
    shms = [Path(f"/dev/shm/kvmfr-bench-{os.getpid()}-{width}x{height}-{k}") for k in range(n)]
    agents = [start_agent(shm, (width, height), fps=60, fmt=fmt, env=env, log=tmp / f"agent-{k}.log")
              for k, shm in enumerate(shms)]
    cmd = [sys.executable, "-m", "kvmfr_client.cli.view", "--displays", ",".join(map(str, shms)),
           "--exit-after", str(seconds), "--stats-json", str(tmp / "stats.json"), f"win:size={width}x{height}",
           "win:position=0,0", "win:borderless=yes"] + (["--force-shader"] if force_shader else [])
    try:
        viewer = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 60)
        if viewer.returncode != 0:
            raise RuntimeError(f"viewer failed: {viewer.stderr[-2000:]}")
        # with several displays each window writes its own file: stats-1.json, stats-2.json, ...
        results = [json.loads((tmp / f"stats-{k + 1}.json").read_text()) for k in range(n)]
    finally:
        for agent in agents:
            stop_process(agent, timeout=10)
        for shm in shms:
            shm.unlink(missing_ok=True)
    return [_derived(stats, width, height) | {"display": k + 1} for k, stats in enumerate(results)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1920x1080", help="comma-separated WxH list (e.g. 1920x1080,2560x1440,3840x2160)")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--format", default="BGRA")
    p.add_argument("--force-shader", action="store_true", help="present with the shader quad instead of the blit")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--displays", type=int, default=1, choices=range(1, 9), metavar="N",
                   help="N displays (agents) shown by one viewer process, a window each (1..8; default 1)")
    args = p.parse_args()
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    xw, xh = max(w for w, _ in sizes), max(h for _, h in sizes)
    xserver = start_xvfb(xw, xh)
    results = []
    try:
        for w, h in sizes:
            print(f"# {w}x{h} {args.format}, {args.seconds:.0f} s ...", flush=True)
            if args.displays > 1:
                results += run_displays(xserver, args.displays, w, h, args.seconds, args.format, args.force_shader)
            else:
                results.append(run_one(xserver, w, h, args.seconds, args.format, args.force_shader))
    finally:
        xserver.stop()
    print()
    print(f"{'size':>10} {'produced':>8} {'shown':>7} {'shown%':>7} {'prod fps':>8} {'view fps':>8} "
          f"{'CPU ms/fr':>9} {'copy ms':>7} {'upload':>7} {'present':>7} {'lat p50':>7} {'memcpy':>7} path")
    for r in results:
        size = r["size"] + (f" #{r['display']}" if "display" in r else "")
        print(f"{size:>10} {r['frames_produced']:>8} {r['frames_shown']:>7} {100 * r['shown_ratio']:>6.1f}% "
              f"{r['produced_fps']:>8.2f} {r['fps']:>8.2f} {r['cpu_ms_per_shown_frame'] or 0:>9.2f} "
              f"{r['copy_ms_p50'] or 0:>7.3f} {r['upload_ms_p50'] or 0:>7.3f} {r['present_ms_p50'] or 0:>7.3f} "
              f"{r['latency_ms_p50'] or 0:>7.1f} {r['memcpy_ms']:>7.3f} {max(r['paths'], key=r['paths'].get)}")
    print(f"\nrenderer: {results[0]['renderer'] if results else '?'}; times in ms (p50); CPU = viewer process "
          "(all threads) per shown frame; memcpy = one frame out of a /dev/shm mapping, same run")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
