"""Overlay benchmark (not a test): frames shown at 1080p60 with the overlay hidden, with the stats panel,
and with the stats panel and the timing graphs, in the same run, on the real viewer under Xvfb.

    nice -n 10 .venv/bin/python benchmarks/overlay.py [--size 1920x1080] [--seconds 15] [--json OUT.json]

Each case: frames shown / frames produced, the viewer's CPU per shown frame, draw (the renderer's calls,
the overlay included) and swap p50, and how many ImGui frames the overlay made. The load average is
printed before and after. Target (issue 14): >= 99 % of frames shown with the overlay visible.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.viewer import run_one  # noqa: E402
from tests.support.xvfb import XServer, start_xvfb  # noqa: E402

CASES = {"hidden": [], "stats": ["win:showFPS=yes"], "stats+graphs": ["win:showFPS=yes", "--show-graphs"]}

def run_case(xserver: XServer, width: int, height: int, seconds: float, extra: list[str]) -> dict:
    return run_one(xserver, width, height, seconds, "BGRA", False, tuple(extra))[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--json", help="also write the results as JSON here")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    load_before = os.getloadavg()
    xserver = start_xvfb(w, h)
    results = {}
    try:
        for name, extra in CASES.items():
            print(f"# {w}x{h} overlay {name}, {args.seconds:.0f} s ...", flush=True)
            results[name] = run_case(xserver, w, h, args.seconds, extra)
    finally:
        xserver.stop()
    load_after = os.getloadavg()
    print(f"\n{'overlay':>13} {'produced':>8} {'shown':>7} {'shown%':>7} {'CPU ms/fr':>9} {'present':>7} "
          f"{'imgui frames':>12}")
    for name, r in results.items():
        print(f"{name:>13} {r['frames_produced']:>8} {r['frames_shown']:>7} {100 * r['shown_ratio']:>6.1f}% "
              f"{r['cpu_ms_per_shown_frame'] or 0:>9.2f} {r['present_ms_p50'] or 0:>7.3f} {r['overlay_frames']:>12}")
    print(f"\nload average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs; "
          f"renderer: {next(iter(results.values()))['renderer']}; present = draw + swap p50 (ms)")
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": load_before, "load_after": load_after,
                                               "results": results}, indent=2, default=str) + "\n")
    return 0

if __name__ == "__main__":
    sys.exit(main())
