"""Where a receiver's CPU goes per packet: each thread's CPU and context switches per Scream packet, for
``kvmfr-audio`` and the pa_simple baseline, on the benchmark's sender (48 kHz stereo, 288 frames a packet)
into a private PulseAudio null sink, no recorder and no load. Not a test: it reports figures.

    .venv/bin/python benchmarks/audio_wakes.py [--duration 20] [--latency MS] [--receiver ours|baseline|both]
                                               [--syscalls] [--perf]

``--syscalls`` also counts the receiver's system calls per packet with ``strace -c -f`` (strace slows every
call down: the CPU figures of such a run are not the receiver's, only its counts are: take the CPU from a run
without it); ``--perf`` records ``perf record -g`` of the receiver (``benchmarks/out/wakes-KIND.perf``). A bad
value, or a tool missing for its flag: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import audio as bench  # noqa: E402


def thread_counters(pid: int) -> dict[str, list[float]]:
    """By thread name (summed over equal names): [CPU seconds, voluntary switches, involuntary switches]."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, list[float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = dict(line.split(":", 1) for line in (task / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        row = out.setdefault(name, [0.0, 0.0, 0.0])
        row[0] += (int(stat[11]) + int(stat[12])) / tick
        row[1] += int(status["voluntary_ctxt_switches"])
        row[2] += int(status["nonvoluntary_ctxt_switches"])
    return out


def run(kind: str, duration: float, target_ms: int, baseline_exe: Path | None, out: Path, syscalls: bool,
        perf: bool = False) -> dict:
    from tests.support.pulse import die_with_parent, start_pulse
    from tests.support.vm import free_port

    port, pulse, procs = free_port(udp=True), start_pulse(high_priority=True), []
    try:
        receiver = subprocess.Popen(bench.receiver_command(kind, port, target_ms, pulse, baseline_exe),
                                    stdout=subprocess.DEVNULL, stderr=open(out / f"wakes-{kind}.log", "w"),
                                    preexec_fn=die_with_parent)
        procs.append(receiver)
        time.sleep(1.5)
        if receiver.poll() is not None:
            sys.exit(f"the {kind} receiver exited at start; see {out / f'wakes-{kind}.log'}")
        sender = subprocess.Popen([sys.executable, bench.__file__, "--_sender", str(port), str(duration + 3),
                                   str(out / "wakes-sender.json")], preexec_fn=die_with_parent)
        procs.append(sender)
        time.sleep(3.0)  # the stream's start (open, prefill) is not the steady state
        strace = None
        if syscalls:
            strace = subprocess.Popen(["strace", "-c", "-f", "-q", "-o", str(out / f"wakes-{kind}.strace"),
                                       "-p", str(receiver.pid)])
            time.sleep(0.5)
        recorder = None
        if perf:
            recorder = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "4000", "-o", str(out / f"wakes-{kind}.perf"),
                                         "-p", str(receiver.pid)], stdout=subprocess.DEVNULL)
            time.sleep(0.5)
        before, server0, t0 = thread_counters(receiver.pid), bench.cpu_seconds(pulse.process.pid), time.monotonic()
        time.sleep(duration)
        after, server1, t1 = thread_counters(receiver.pid), bench.cpu_seconds(pulse.process.pid), time.monotonic()
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=30)
        if strace is not None:
            strace.send_signal(signal.SIGINT)
            strace.wait(timeout=10)
        sender.wait(timeout=30)
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=10)
    finally:
        bench.stop_all(procs, pulse)
    wall = t1 - t0
    packets = wall * bench.RATE / bench.PACKET_FRAMES
    threads = {}
    for name, (cpu, vol, invol) in after.items():
        b = before.get(name, [0.0, 0.0, 0.0])
        threads[name] = {"cpu_percent": round(100 * (cpu - b[0]) / wall, 2),
                         "cpu_us_per_packet": round(1e6 * (cpu - b[0]) / packets, 1),
                         "voluntary_per_packet": round((vol - b[1]) / packets, 2),
                         "involuntary_per_packet": round((invol - b[2]) / packets, 2)}
    total = sum(t["cpu_percent"] for t in threads.values())
    result = {"receiver": kind, "seconds": round(wall, 1), "packets": round(packets),
              "cpu_percent": round(total, 2), "sound_server_cpu_percent": round(100 * (server1 - server0) / wall, 2),
              "threads": {k: v for k, v in threads.items() if v["cpu_percent"] or v["voluntary_per_packet"]},
              "load_average": os.getloadavg()[0]}
    if syscalls:
        result["strace"] = (out / f"wakes-{kind}.strace").read_text()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=20.0, help="seconds measured (default 20)")
    p.add_argument("--latency", type=int, help="target latency (ms); default: audio:latency's default")
    p.add_argument("--receiver", choices=["ours", "baseline", "both"], default="both")
    p.add_argument("--syscalls", action="store_true", help="count system calls with strace -c (slows the receiver)")
    p.add_argument("--perf", action="store_true", help="also record a perf profile (benchmarks/out/wakes-KIND.perf)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    args = p.parse_args(argv)
    if args.duration <= 0:
        print("audio_wakes: --duration must be above 0", file=sys.stderr)
        return 2
    if args.latency is not None and args.latency <= 0:
        print("audio_wakes: --latency must be above 0", file=sys.stderr)
        return 2
    for flag, tool in (("--syscalls", "strace"), ("--perf", "perf")):
        if getattr(args, flag[2:]) and shutil.which(tool) is None:
            print(f"audio_wakes: {flag} needs {tool} on the PATH", file=sys.stderr)
            return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target_ms = args.latency or int(bench.option_default("audio:latency"))
    kinds = ["ours", "baseline"] if args.receiver == "both" else [args.receiver]
    baseline_exe = bench.build_baseline(out) if "baseline" in kinds else None
    for kind in kinds:
        r = run(kind, args.duration, target_ms, baseline_exe, out, args.syscalls, args.perf)
        trace = r.pop("strace", None)
        print(f"{kind}: {r['cpu_percent']} % of a core ({r['packets']} packets in {r['seconds']} s), "
              f"sound server {r['sound_server_cpu_percent']} %, load {r['load_average']:.2f}")
        for name, t in sorted(r["threads"].items()):
            print(f"  {name:18s} {t['cpu_percent']:5.2f} %  {t['cpu_us_per_packet']:6.1f} us/packet  "
                  f"voluntary {t['voluntary_per_packet']:.2f}/packet  involuntary {t['involuntary_per_packet']:.2f}/packet")
        if trace:
            print(trace)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:   # run()'s clean-up has stopped what it started
        print("audio_wakes: interrupted", file=sys.stderr)
        sys.exit(130)
