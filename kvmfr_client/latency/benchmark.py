"""``kvmfr-view --benchmark``: capture-to-screen latency of the whole chain, stage by stage.

    kvmfr-view --benchmark [--duration S] [--size WxH] [--fps N] [--json FILE] [--plot FILE.png]
                           [--shm PATH] [--probe-window NAME_OR_ID ...] [section:option=value ...]

Processes (each its own, so none steals another's GIL):
  agent   the guest agent's test pattern on a private shared-memory file (not with ``--shm``), with
          a log of every frame's capture and post time (:mod:`guest_agent.timed`, started as a child process);
  viewer  ``kvmfr-view`` itself, 1:1 in a borderless window at 0,0, writing ``--timings-json``;
  probes  one per window (ours, then each ``--probe-window``), polling the barcode strip (:mod:`.probe`);
  this    sleeps, takes /proc CPU readings at both ends of the measured interval, and times memcpy
          of one frame's bytes now and then during it (the baseline, under the same load).

Frames count when their capture time falls inside the measured interval (after a warm-up).
See docs/latency.md for the method and what each figure includes.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kvmfr_client.config import exits, flags, registry
from kvmfr_client.config.flags import checked
from kvmfr_client.config.registry import number

from . import stages
from .probe import ProbeError, WindowProbe

log = logging.getLogger(__name__)

TAIL_S = 0.5           # the probes go on this long after the interval, for frames captured at its end


def build_parser() -> argparse.ArgumentParser:
    """One-line errors (exit status 2) like every program's; each number is range-checked where it is read.
    The frame size and rate are the agent's own options (agent:size, agent:fps), so their ranges are the
    agent's: the benchmark's agent (:mod:`guest_agent.timed`) reads them through the same parsers."""
    from guest_agent import options as agent_options   # declares agent:*
    p = flags.Parser(prog="kvmfr-view --benchmark", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", action="store_true", help="(the mode itself)")
    p.add_argument("--duration", type=checked(number(float, 1, 86400, "seconds")), default=10.0,
                   help="seconds measured, after the warm-up (1..86400)")
    p.add_argument("--warmup", type=checked(number(float, 0, 600, "seconds")), default=1.5,
                   help="seconds of frames before measuring (0..600)")
    p.add_argument("--size", type=checked(agent_options.parse_frame_size), default=(1920, 1080),
                   help="frame size WxH (as agent:size)")
    p.add_argument("--fps", type=checked(registry.option("agent:fps").parse), default=60.0,
                   help="frames per second the agent produces (as agent:fps)")
    p.add_argument("--protocol", choices=registry.option("agent:protocol").choices, default="b7",
                   help="the wire format the private agent writes: b7 or master (as agent:protocol)")
    p.add_argument("--json", metavar="FILE", help="write the report with every sample as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG: histograms and a timeline of the stages")
    p.add_argument("--shm", "-f", help="use this shared memory and the producer already writing it "
                   "(our agent's test pattern, e.g. in a real guest) instead of a private agent")
    p.add_argument("--probe-window", action="append", default=[], metavar="NAME_OR_ID",
                   help="also probe this window (title substring or X id), e.g. a Looking Glass client on "
                   "the same shared memory; repeatable")
    p.add_argument("--poll-ms", type=checked(number(float, 0.1, 1000, "milliseconds")), default=1.0,
                   help="probe poll interval in milliseconds (0.1..1000)")
    p.add_argument("--no-viewer", action="store_true", help="probe only the --probe-window windows")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("options", nargs="*", metavar="section:option=value", help="passed to the viewer")
    return p


# ---- /proc CPU ---------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


# ---- the probe process -------------------------------------------------------------------------

def _probe_worker(window: str, frame_size, interval_s: float, ctl, results) -> None:
    """Find and lock on to the window, report ready, then poll from the start to the end it is sent."""
    # Ctrl+C in a terminal reaches the whole process group: the benchmark itself decides when probes end
    # (it stops them with SIGTERM, which ends a process silently), so no traceback from each probe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = WindowProbe(window, frame_size)
                break
            except ProbeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        probe.locate(timeout=max(1.0, deadline - time.monotonic()))
        results.put(("ready", window, probe.name))
        start_ns, end_ns = ctl.get(timeout=300)
        res = probe.run(start_ns, interval_s)          # warm-up: same work, not counted for CPU
        seen_before = dict(res.seen)
        cpu0 = time.process_time()
        res2 = probe.run(end_ns, interval_s)
        cpu1 = time.process_time()
        for k, v in seen_before.items():
            res2.seen.setdefault(k, v)
        out = res2.to_json()
        out["window"] = probe.current_name()      # the title may have changed since (host connected)
        out["cpu_s"] = round(cpu1 - cpu0, 4)
        results.put(("done", window, out))
    except Exception as exc:  # reported by the parent, which owns the terminal
        results.put(("error", window, f"{type(exc).__name__}: {exc}"))


# ---- orchestration -----------------------------------------------------------------------------

class BenchmarkError(RuntimeError):
    pass


# `python -m` children run with -P (Python 3.11+): the working directory stays off sys.path, so a child
# started inside a source checkout imports the installed package, as this process did, and not the
# checkout's unbuilt copy.
PYTHON_CHILD = (sys.executable, "-P", "-m")


def _memcpy_ms(src: np.ndarray, dst: np.ndarray) -> float:
    t0 = time.perf_counter_ns()
    np.copyto(dst, src)
    return (time.perf_counter_ns() - t0) / 1e6


def _tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def run_benchmark(args) -> dict:
    """Run the whole benchmark and return the report (see :mod:`.report`)."""
    display = os.environ.get("DISPLAY")
    if not display:
        raise BenchmarkError("no DISPLAY: the probe reads the window back from an X server (run under Xorg, "
                             "XWayland or Xvfb, e.g. `xvfb-run -s '-screen 0 1920x1080x24' kvmfr-view --benchmark`)")
    w, h = args.size
    work = Path(tempfile.mkdtemp(prefix="kvmfr-bench-"))
    procs: list[subprocess.Popen] = []
    private = not args.shm
    shm = args.shm or f"/dev/shm/kvmfr-bench-{os.getpid()}"
    title = f"kvmfr-bench-{os.getpid()}"
    agent = viewer = None
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    workers = []
    load_start = os.getloadavg()
    try:
        if private:
            Path(shm).unlink(missing_ok=True)
            agent = subprocess.Popen(
                [*PYTHON_CHILD, "guest_agent.timed", "--shm", shm, "--size", f"{w}x{h}",
                 "--fps", str(args.fps), "--protocol", args.protocol, "--log", str(work / "agent.json")],
                stdout=open(work / "agent.log", "wb"), stderr=subprocess.STDOUT)
            procs.append(agent)
        if not args.no_viewer:
            viewer = subprocess.Popen(
                [*PYTHON_CHILD, "kvmfr_client.cli.view", "--shm", shm,
                 "--exit-after", str(args.warmup + args.duration + 120),
                 "--stats-json", str(work / "viewer-stats.json"), "--timings-json", str(work / "viewer-timings.json"),
                 f"win:size={w}x{h}", "win:position=0,0", "win:borderless=yes", f"win:title={title}",
                 "win:alerts=no",   # the probe reads the barcode in the top rows, where alerts are drawn
                 *args.options],
                # On a Wayland desktop the window must be an X one (XWayland) for the probe to read it.
                env={k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"},
                stdout=open(work / "viewer.log", "wb"), stderr=subprocess.STDOUT)
            procs.append(viewer)
        windows = ([title] if viewer is not None else []) + list(args.probe_window)
        if not windows:
            raise BenchmarkError("nothing to measure: --no-viewer needs at least one --probe-window")
        for win in windows:
            ctl = ctx.Queue()
            proc = ctx.Process(target=_probe_worker, args=(win, (w, h), args.poll_ms / 1000.0, ctl, results),
                               name=f"probe {win}", daemon=True)
            proc.start()
            workers.append((win, proc, ctl))
        names = {}
        for _ in workers:
            try:
                kind, win, payload = results.get(timeout=60)
            except Exception:
                raise BenchmarkError("the probes found no window showing the pattern within 60 s; viewer log:\n"
                                     + _tail(work / "viewer.log") + "\nagent log:\n" + _tail(work / "agent.log"))
            if kind == "error":
                raise BenchmarkError(f"probe of {win!r}: {payload}\nviewer log:\n{_tail(work / 'viewer.log')}"
                                     f"\nagent log:\n{_tail(work / 'agent.log')}")
            names[win] = payload
        for p in procs:
            if p.poll() is not None:
                which = "agent" if p is agent else "viewer"
                raise BenchmarkError(f"the {which} exited early ({p.returncode}):\n" + _tail(work / f"{which}.log"))

        t_start = time.monotonic_ns() + int(args.warmup * 1e9)
        t_end = t_start + int(args.duration * 1e9)
        for _, _, ctl in workers:
            ctl.put((t_start, t_end + int(TAIL_S * 1e9)))
        frame_bytes = w * h * 4
        src = np.random.default_rng(1).integers(0, 255, frame_bytes, dtype=np.uint8)
        dst = np.empty_like(src)
        _memcpy_ms(src, dst)   # fault the pages in
        time.sleep(max(0.0, (t_start - time.monotonic_ns()) / 1e9))
        pids = {"agent": agent.pid if agent else None, "viewer": viewer.pid if viewer else None}
        cpu0 = {k: cpu_seconds(pid) if pid else None for k, pid in pids.items()}
        copies = []
        n_copies = 30
        for i in range(n_copies):
            due = t_start + (i + 0.5) * (t_end - t_start) / n_copies
            time.sleep(max(0.0, (due - time.monotonic_ns()) / 1e9))
            copies.append(_memcpy_ms(src, dst))
        time.sleep(max(0.0, (t_end - time.monotonic_ns()) / 1e9))
        cpu1 = {k: cpu_seconds(pid) if pid else None for k, pid in pids.items()}
        load_end = os.getloadavg()

        probes = {}
        for _ in workers:
            try:
                kind, win, payload = results.get(timeout=60 + TAIL_S)
            except Exception:
                raise BenchmarkError("a probe did not report back within 60 s after the run")
            if kind != "done":
                raise BenchmarkError(f"probe of {win!r}: {payload}")
            probes[win] = payload

        # Stop the viewer (SIGTERM: it closes the window and writes its JSON), then the agent.
        for p in (viewer, agent):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        viewer_timings = viewer_stats = None
        if viewer is not None:
            if not (work / "viewer-timings.json").exists():
                raise BenchmarkError("the viewer wrote no --timings-json; its log:\n" + _tail(work / "viewer.log"))
            viewer_timings = stages.read_viewer_timings(work / "viewer-timings.json")
            viewer_stats = json.loads((work / "viewer-stats.json").read_text())
        posts = None
        if agent is not None:
            if not (work / "agent.json").exists():
                raise BenchmarkError(f"the agent wrote no frame log (exit code {agent.returncode}); its log:\n"
                                     + _tail(work / "agent.log"))
            posts = json.loads((work / "agent.json").read_text())["frames"]

        from .report import build_report
        return build_report(
            config={"size": [w, h], "fps": args.fps, "duration_s": args.duration, "warmup_s": args.warmup,
                    "shm": shm, "private_agent": private, "display": display, "poll_ms": args.poll_ms,
                    "cores": os.cpu_count(), "loadavg_start": [round(x, 2) for x in load_start],
                    "loadavg_end": [round(x, 2) for x in load_end], "viewer_options": list(args.options)},
            t_start=t_start, t_end=t_end, posts=posts, viewer_timings=viewer_timings,
            viewer_stats=viewer_stats, our_window=title if viewer is not None else None,
            window_names=names, probes=probes,
            cpu={k: (round(cpu1[k] - cpu0[k], 4) if cpu0[k] is not None and cpu1[k] is not None else None)
                 for k in pids},
            memcpy_ms=copies, frame_bytes=frame_bytes)
    finally:
        for _, proc, _ in workers:
            proc.join(2)
            if proc.is_alive():
                proc.terminate()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if private:
            Path(shm).unlink(missing_ok=True)
        if not args.verbose:
            for f in work.iterdir():
                f.unlink()
            work.rmdir()
        else:
            print(f"kvmfr-view --benchmark: logs and raw files kept in {work}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="kvmfr-view: %(levelname)s %(name)s: %(message)s")
    from .report import format_table, write_plot
    try:
        report = run_benchmark(args)
    except (BenchmarkError, ProbeError) as exc:
        print(f"kvmfr-view --benchmark: {exc}", file=sys.stderr)
        return 1
    except exits.Stopped as exc:   # Ctrl+C / SIGTERM: the children were stopped on the way out; no report
        print(f"kvmfr-view --benchmark: stopped by {exc.args[0]}; nothing was reported", file=sys.stderr)
        return exc.exit_code
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        write_plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
