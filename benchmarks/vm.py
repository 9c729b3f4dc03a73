"""kvmfr-vm under TCG: time from ``kvmfr-vm start`` to QMP, to the guest agent's first frame in the display's
shared memory, and the frames per second the guest's agent delivers.

    .venv/bin/python benchmarks/vm.py [--runs 3] [--size 640x480] [--fps 30] [--frames 120]
    .venv/bin/python benchmarks/vm.py --demo [--runs 3] [--size 1280x720] [--fps 30]
    .venv/bin/python benchmarks/vm.py --x11 [--displays 2] [--runs 3] [--size 640x480] [--fps 30] [--frames 120]

``--demo`` times ``kvmfr-vm demo --no-viewer`` instead (its own guest image, build excluded: it is built
before the first run): from the command's start to the first frame of its guest's agent, then stops it with
Ctrl+C. ``--x11`` runs an Xvfb inside the guest (the host's, over the 9p share) with one X screen per
display, each painted its own colour, and one ``kvmfr-agent --source x11 --display n`` per screen started
without --shm (tests/vm/x11_guest.py); the host reads every display at once and prints, per display, the
time from ``kvmfr-vm start`` to its first frame, its frames per second and how many pixels of its first and
last frames are not its own screen's colour (results in benchmarks/out/vm-x11-N.json).

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


def demo_run(work: Path, size: str, fps: int, frames: int) -> dict:
    """``kvmfr-vm demo --no-viewer``: its start to the first frame of the guest's agent, frames per second."""
    import signal

    import kvmfr_client
    name = f"vmbdemo{os.getpid()}"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(work), XDG_CACHE_HOME=str(REPO / ".cache"))
    t0 = time.monotonic()
    demo = subprocess.Popen([sys.executable, "-m", "kvmfr_client.vm.cli", "demo", "--no-viewer", "--seconds", "300",
                             "--size", size, "--fps", str(fps), "--name", name], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        with kvmfr_client.open(f"/dev/shm/{name}-0", wait=180) as session:
            first = session.next_frame(timeout=180)
            t_first = time.monotonic() - t0
            assert first is not None
            t1, got = time.monotonic(), 0
            while got < frames and session.next_frame(timeout=10) is not None:
                got += 1
            rate = got / (time.monotonic() - t1)
    finally:
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
    if demo.returncode:
        raise SystemExit(f"kvmfr-vm demo ended with {demo.returncode}:\n{out}")
    return {"first_frame_s": round(t_first, 3), "fps": round(rate, 2), "frames": got}


def x11_run(image, work: Path, displays: int, size: str, fps: int, frames: int) -> dict:
    """One Xvfb in the guest with a screen per display, each painted its own colour, and one ``kvmfr-agent
    --source x11 --display n`` per screen (DISPLAY=:1.n) on the device it finds by its label. The host reads
    every display's file at once: time from ``kvmfr-vm start`` to its first frame, frames per second over
    ``frames`` more, and the pixels of the first and last frames checked against the screen's colour."""
    import threading

    import kvmfr_client
    from tests.vm.test_lifecycle import agent_command, vm_yaml
    from tests.vm.x11_guest import frame_colour_errors, missing_x_tools, read_frames, x11_agent, x_screens
    if missing_x_tools():
        raise SystemExit(missing_x_tools())
    name = f"vmbx11{os.getpid()}"
    w, h = (int(v) for v in size.split("x"))
    guest = agent_command(x_screens([(w, h)] * displays, [x11_agent(n, n, "--fps", str(fps)) for n in range(displays)]))
    yaml_path = vm_yaml(work, image, name, "[" + ", ".join(["{resolution: 1920x1080}"] * displays) + "]",
                        "shares: [{path: /, tag: hostroot}]\n", guest)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(work))
    cli = [sys.executable, "-m", "kvmfr_client.vm.cli"]
    results: dict[int, dict] = {}

    def read(n: int, t0: float) -> None:
        try:
            with kvmfr_client.open(f"/dev/shm/{name}-{n}", wait=180) as session:
                [first] = read_frames(session, 1, 180) or [None]
                t_first = time.monotonic() - t0
                if first is None:
                    results[n] = {"error": "no frame"}
                    return
                t1 = time.monotonic()
                more = read_frames(session, frames, 10 + frames / 2)
                last, got = (more or [first])[-1], len(more)
                results[n] = {"first_frame_s": round(t_first, 3), "fps": round(got / (time.monotonic() - t1), 2),
                              "frames": got, "size": f"{first.width}x{first.height}",
                              "capture": session.host.capture,
                              "colour_errors": frame_colour_errors(first, n) + frame_colour_errors(last, n)}
        except Exception as exc:   # a measurement: report what went wrong for this display, go on
            results[n] = {"error": f"{type(exc).__name__}: {exc}"}

    t0 = time.monotonic()
    subprocess.run([*cli, "start", str(yaml_path), "--no-viewer"], env=env, check=True, capture_output=True)
    try:
        readers = [threading.Thread(target=read, args=(n, t0), name=f"display-{n}") for n in range(displays)]
        for r in readers:
            r.start()
        for r in readers:
            r.join()
    finally:
        subprocess.run([*cli, "stop", name, "--grace", "0"], env=env, capture_output=True)
    return {f"display{n}": results[n] for n in range(displays)}


def x11_main(image, args) -> None:
    args.size = args.size or "640x480"
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as work:
            runs.append(x11_run(image, Path(work), args.displays, args.size, args.fps, args.frames))
        print(json.dumps(runs[-1]), flush=True)
    load = open("/proc/loadavg").read().split()[0]
    summary = {}
    for n in range(args.displays):
        good = [r[f"display{n}"] for r in runs if "error" not in r[f"display{n}"]]
        failed = len(runs) - len(good)
        if not good:
            print(f"display {n}: no frames in any run ({runs[-1][f'display{n}']['error']})")
            continue
        summary[n] = {key: {"median": statistics.median(r[key] for r in good), "min": min(r[key] for r in good),
                            "max": max(r[key] for r in good)} for key in ("first_frame_s", "fps")}
        first, rate = summary[n]["first_frame_s"], summary[n]["fps"]
        errors = sum(r["colour_errors"] for r in good)
        print(f"display {n} (X screen {n}, {good[0]['size']}, capture {good[0]['capture']}): kvmfr-vm start -> "
              f"first frame median {first['median']:.2f} s ({first['min']:.2f}-{first['max']:.2f}); "
              f"{rate['median']:.1f} frames/s ({rate['min']:.1f}-{rate['max']:.1f}) at --fps {args.fps}; "
              f"{errors} pixels not the screen's colour; {failed} of {len(runs)} runs without frames")
    print(f"(TCG, 1 vCPU; load average {load} at the end)")
    _write_out(f"vm-x11-{args.displays}.json", {"args": vars(args), "runs": runs, "summary": summary, "load": load})


def _write_out(name: str, data: dict) -> None:
    """benchmarks/out/<name>: this run's figures as JSON."""
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / name).write_text(json.dumps(data, indent=1))


def _summary(runs: list[dict], keys) -> dict:
    """Median, min and max of each figure over the runs."""
    return {key: {"median": statistics.median(r[key] for r in runs), "min": min(r[key] for r in runs),
                  "max": max(r[key] for r in runs)} for key in keys}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default=None, help="default 640x480 (1280x720 with --demo)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--demo", action="store_true", help="time kvmfr-vm demo --no-viewer")
    ap.add_argument("--x11", action="store_true", help="the X11 source inside the guest, an X screen per display")
    ap.add_argument("--displays", type=int, default=1, choices=range(1, 9), metavar="1..8",
                    help="with --x11: displays (X screens, agents) in the VM")
    args = ap.parse_args()
    from tests.vm.agent_guest import build_agent_guest
    image = build_agent_guest()
    if args.x11:
        x11_main(image, args)
        return
    args.size = args.size or ("1280x720" if args.demo else "640x480")
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as work:
            if args.demo:
                runs.append(demo_run(Path(work), args.size, args.fps, args.frames))
            else:
                runs.append(one_run(image, Path(work), args.size, args.fps, args.frames))
            print(json.dumps(runs[-1]), flush=True)
    load = open("/proc/loadavg").read().split()[0]
    if args.demo:
        summary = _summary(runs, ("first_frame_s", "fps"))
        print(f"kvmfr-vm demo --no-viewer -> first frame from the guest's agent: median "
              f"{summary['first_frame_s']['median']:.2f} s ({summary['first_frame_s']['min']:.2f}-"
              f"{summary['first_frame_s']['max']:.2f}); {args.size} at --fps {args.fps}: median "
              f"{summary['fps']['median']:.1f} frames/s (TCG; load average {load} at the end)")
        _write_out("vm-demo.json", {"args": vars(args), "runs": runs, "summary": summary})
        return
    summary = _summary(runs, ("start_returned_s", "qmp_ready_s", "first_frame_s", "fps"))
    print(f"kvmfr-vm start -> QMP ready: median {summary['qmp_ready_s']['median']:.2f} s; -> first frame from the "
          f"guest's agent: median {summary['first_frame_s']['median']:.2f} s "
          f"({summary['first_frame_s']['min']:.2f}-{summary['first_frame_s']['max']:.2f}); guest agent "
          f"{args.size} at --fps {args.fps}: median {summary['fps']['median']:.1f} frames/s (TCG)")
    _write_out("vm.json", {"args": vars(args), "runs": runs, "summary": summary})


if __name__ == "__main__":
    main()
