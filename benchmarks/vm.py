"""kvmfr-vm under TCG: time from ``kvmfr-vm start`` to QMP, to the guest agent's first frame in the display's
shared memory, and the frames per second the guest's agent delivers.

    .venv/bin/python benchmarks/vm.py [--runs 3] [--size 640x480] [--fps 30] [--frames 120]

Each run starts the agent guest (tests/vm/agent_guest.py: the tiny test guest running our own agent on the
device at 00:10.0) with ``kvmfr-vm start --no-viewer``, opens /dev/shm/<vm>-0 with the Python API, times the
first frame, counts frames for ``--frames`` more, then ``kvmfr-vm stop``. Prints medians and ranges; results
also go to benchmarks/out/vm.json. A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def one_run(image, work: Path, size: str, fps: int, frames: int) -> dict:
    import kvmfr_client
    from tests.vm.test_lifecycle import agent_command, video_agent, vm_yaml
    name = f"vmbench{os.getpid()}"
    yaml_path = vm_yaml(work, image, name, "[{resolution: 1920x1080}]", "shares: [{path: /, tag: hostroot}]\n",
                        agent_command(video_agent(0, '--size', size, '--fps', str(fps))))
    env = dict(os.environ, XDG_RUNTIME_DIR=str(work))
    cli = [sys.executable, "-m", "kvmfr_client.vm.cli"]
    t0 = time.monotonic()
    started = subprocess.run([*cli, "start", str(yaml_path), "--no-viewer"], env=env, capture_output=True, text=True)
    t_start = time.monotonic() - t0
    if started.returncode:
        raise SystemExit(f"kvmfr-vm start failed: {started.stderr}")
    qmp = float(re.search(r"QMP ready in ([\d.]+) s", started.stdout).group(1))
    try:
        with kvmfr_client.open(f"/dev/shm/{name}-0", wait=120) as session:
            first = session.next_frame(timeout=120)
            t_first = time.monotonic() - t0
            assert first is not None
            t1 = time.monotonic()
            got = 0
            while got < frames:
                if session.next_frame(timeout=10) is None:
                    break
                got += 1
            rate = got / (time.monotonic() - t1)
    finally:
        subprocess.run([*cli, "stop", name, "--grace", "0.5"], env=env, capture_output=True)
    return {"start_returned_s": round(t_start, 3), "qmp_ready_s": qmp, "first_frame_s": round(t_first, 3),
            "fps": round(rate, 2), "frames": got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--frames", type=int, default=120)
    args = ap.parse_args()
    from tests.vm.agent_guest import build_agent_guest
    image = build_agent_guest()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as work:
            runs.append(one_run(image, Path(work), args.size, args.fps, args.frames))
            print(json.dumps(runs[-1]), flush=True)
    summary = {key: {"median": statistics.median(r[key] for r in runs), "min": min(r[key] for r in runs),
                     "max": max(r[key] for r in runs)} for key in ("start_returned_s", "qmp_ready_s",
                                                                   "first_frame_s", "fps")}
    print(f"kvmfr-vm start -> QMP ready: median {summary['qmp_ready_s']['median']:.2f} s; -> first frame from the "
          f"guest's agent: median {summary['first_frame_s']['median']:.2f} s "
          f"({summary['first_frame_s']['min']:.2f}-{summary['first_frame_s']['max']:.2f}); guest agent "
          f"{args.size} at --fps {args.fps}: median {summary['fps']['median']:.1f} frames/s (TCG)")
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "vm.json").write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
