"""Audio benchmark: Scream UDP at 48 kHz stereo through ``kvmfr-audio`` into a real PulseAudio sink,
with the CPU otherwise busy. Not a test: it reports figures.

    .venv/bin/python benchmarks/audio.py [--duration 600] [--latency MS] [--load N] [--runs N]
                                         [--receiver ours|baseline|both] [--out benchmarks/out]

The baseline (``--receiver both``, the default, interleaves it with ours in the same session) is
``benchmarks/baseline/pa_simple_receiver.c``, built here with cc against libpulse-simple: a minimal C
receiver that plays the way Scream's own Unix receiver does with PulseAudio (one blocking pa_simple
stream, default buffer attributes but tlength = the target; no drift correction). Scream's receiver itself
is not packaged for Debian, and the benchmark builds nothing it would have to download. For each receiver
it reports its CPU and the sound server's (the private PulseAudio daemon's utime + stime over the run),
and medians over ``--runs``.

Three processes, as on a real host: a sender (the guest: a 440 Hz tone with a 20 ms noise marker every
~1 s, paced by the clock), ``kvmfr-audio`` (the receiver under test) and this process, which records the
null sink's monitor and finds each marker in it. N busy-loop processes (default: one per core) keep
the CPU busy. All share CLOCK_MONOTONIC, so

* latency = when the marker's first frame reached the sink - when its datagram left the sender;
* underruns = the sound server's underflow notifications counted by the player (and a marker whose
  latency jumps is cross-checked against them);
* buffer level = what ``kvmfr-audio --stats-file`` logged every STATS_EVERY seconds: ``queued`` (in Pulse, the sink
  device's own buffer included, + jitter buffer, right after a write) and ``ahead`` (what each packet
  found ahead of it, device excluded: the player's controlled quantity, and its margin against a hiccup);
* CPU = the receiver's utime + stime over the run, as % of one core;
* machine wake-up probes = how late a 1 ms sleeper woke up: at nice -11, at the audio threads'
  real-time priority on any CPU (``rr``), and real-time (SCHED_FIFO) pinned to each CPU, which nothing
  on the machine but the kernel can delay. A stall a pinned real-time probe sees is its CPU stopping
  (on a VM: the host not running that vCPU; a thread on it waits, however high its priority); one that
  every CPU's probe sees at the same moment is the whole machine paused. The sink's clock goes on
  meanwhile, so a stall longer than the audio queued ahead is an underrun that no receiver can avoid.
  Each underrun is matched with the longest stall and whole-machine pause just before it, and with
  how late the sender was (it logs every packet it sent more than 5 ms after its time).

Writes ``audio.json`` and ``audio-buffer.png`` (buffer level and latency over time) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RATE = 48000
PACKET_FRAMES = 288  # 1152 bytes of 16-bit stereo
MARKER_EVERY = 167  # packets: 1.002 s, so markers start on a packet boundary
MARKER_FRAMES = 960  # 20 ms
MARKER_MIN_CORRELATION = 0.8
# How often kvmfr-audio logs its counters (--stats): the benchmark's instrument, not the receiver's work,
# which the baseline has none of. At 0.1 s its wakes alone cost 0.22-0.31 % of a core (a tenth of the
# whole receiver) in the receiver's main thread; once a second, a tenth of that.
STATS_EVERY = 1.0


def marker_noise(k: int) -> np.ndarray:
    """Marker k's noise: each marker differs, so a lost one can never be mistaken for the next. It is
    low-passed (below ~4 kHz) so that the player's drift resampling, which interpolates, keeps it
    recognisable."""
    raw = np.random.default_rng(1000 + k).uniform(-1, 1, MARKER_FRAMES + 16)
    smooth = np.convolve(raw, np.hanning(10), mode="same")[8:8 + MARKER_FRAMES]
    return (0.5 * smooth / np.max(np.abs(smooth))).astype(np.float32)


# --- the sender (the guest), run as a child process ------------------------------------------------

def run_sender(port: int, duration: float, log_path: str) -> None:
    from guest_agent.audio.scream_sender import ScreamUdpSender
    from kvmfr_client.audio import formats
    from kvmfr_client.audio.formats import PcmFormat
    from kvmfr_client.audio.priority import freeze_startup_objects, raise_thread_priority

    raise_thread_priority()  # nice -11 where permitted; never real-time: a guest's sender gets no such help
    freeze_startup_objects()  # a real guest's sender has no garbage collector pausing it
    fmt = PcmFormat(RATE, 16, 2, 0x3)
    sender = ScreamUdpSender(fmt, "127.0.0.1", port)
    n_packets = int(duration * RATE / PACKET_FRAMES)
    t = np.arange(PACKET_FRAMES * MARKER_EVERY) / RATE
    period = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # one marker period of tone
    pcm = formats.encode(fmt, np.repeat(period[:, None], 2, axis=1))
    packet_bytes = PACKET_FRAMES * 4
    marker_packets = -(-MARKER_FRAMES // PACKET_FRAMES)

    def marked_period(m: int) -> bytes:
        head = period[:marker_packets * PACKET_FRAMES].copy()
        head[:MARKER_FRAMES] = marker_noise(m)
        return formats.encode(fmt, np.repeat(head[:, None], 2, axis=1))

    # Made before the clock starts: made on the way, the first (numpy's first calls) sent the stream's first
    # packet 10-15 ms after its time and the next ones in a burst, so the first marker read 10-15 ms low.
    heads = [marked_period(m) for m in range(-(-n_packets // MARKER_EVERY))]
    marker_times, late = [], []
    t0 = time.monotonic()
    for j in range(n_packets):
        due = t0 + j * PACKET_FRAMES / RATE
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.005:
            late.append((time.monotonic(), round(-delay * 1000, 2)))  # (when it sent, ms late)
        k = j % MARKER_EVERY
        if k == 0:
            head = heads[j // MARKER_EVERY]
            marker_times.append(time.monotonic())
        source = head if k < marker_packets else pcm
        sender.send_raw(sender._header + source[k * packet_bytes:(k + 1) * packet_bytes])
    sender.close()
    Path(log_path).write_text(json.dumps({"marker_times": marker_times, "packets": n_packets, "late": late}))


# --- a probe of the machine itself, run as a child process --------------------------------------

def run_probe(duration: float, log_path: str, mode: str) -> None:
    """Sleep 1 ms at a time and record how late each wake-up was: at nice -11 (``nice``), at the audio
    threads' real-time priority on any CPU (``rr``) or real-time on one CPU (``fifoN``). Lateness over
    5 ms is logged with its time."""
    from kvmfr_client.audio.priority import AUDIO_NICE, AUDIO_RT_PRIORITY, raise_thread_priority, use_realtime

    if mode.startswith("fifo"):  # fifoN: real-time, pinned to CPU N
        cpu = int(mode[4:])
        os.sched_setaffinity(0, {cpu})
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
            policy = f"SCHED_FIFO 20 on CPU {cpu}"
        except OSError as exc:
            policy = f"default on CPU {cpu} (SCHED_FIFO refused: {exc.strerror})"
    else:  # as the audio threads get it: "rr" with audio:realtime=yes, "nice" by default
        use_realtime(mode == "rr")
        got = raise_thread_priority()
        policy = {"realtime": f"SCHED_RR {AUDIO_RT_PRIORITY} on any CPU", "nice": f"nice {AUDIO_NICE}"}.get(got, got)
    late, stalls = [], []
    end = time.monotonic() + duration
    last = time.monotonic()
    while last < end:
        time.sleep(0.001)
        now = time.monotonic()
        lateness = now - last - 0.001
        late.append(lateness)
        if lateness > 0.005:
            stalls.append((now, round(lateness * 1000, 2)))  # (when it woke, ms late)
        last = now
    x = np.array(late) * 1000
    Path(log_path).write_text(json.dumps({
        "policy": policy, "wakeups": len(x), "median_late_ms": round(float(np.median(x)), 3),
        "p999_late_ms": round(float(np.percentile(x, 99.9)), 2), "max_late_ms": round(float(x.max()), 2),
        "late_over_10ms": int((x > 10).sum()), "late_over_20ms": int((x > 20).sum()),
        "late_over_50ms": int((x > 50).sum()), "stalls": stalls}))


PROBE_SLEEP = 0.001
STALL_JOIN = 0.002  # stalls less than this apart are one: a CPU that runs 1 ms between them gets nothing done


def stall_spans(stalls: list, join: float = STALL_JOIN) -> list[tuple[float, float]]:
    """One CPU's stalls ((when it woke, ms late) from its real-time probe) as (start, end) spans,
    those separated by less than ``join`` of running merged into one."""
    spans: list[list[float]] = []
    for when, ms in sorted(stalls):
        start = when - ms / 1000 - PROBE_SLEEP
        if spans and start - spans[-1][1] < join:
            spans[-1][1] = max(spans[-1][1], when)
        else:
            spans.append([start, when])
    return [(a, b) for a, b in spans]


def machine_stalls(stalls_per_cpu: list[list]) -> tuple[list, list]:
    """(stalls, pauses) as (when it ended, ms): every CPU's stall spans, and the spans in which all CPUs
    were stalled at once (the whole machine stopped; on a VM, the hypervisor pausing it: sender,
    receiver and sound server alike)."""
    per_cpu = [stall_spans(s) for s in stalls_per_cpu]
    stalls = [(b, (b - a) * 1000) for spans in per_cpu for a, b in spans]
    common = per_cpu[0] if per_cpu else []
    for spans in per_cpu[1:]:
        common = [(max(a, c), min(b, d)) for a, b in common for c, d in spans if max(a, c) < min(b, d)]
    return stalls, [(b, (b - a) * 1000) for a, b in common]


def classify_underruns(underruns: list, stats: list, stalls: list, pauses: list, sender_late: list,
                       device_ms: float) -> list[dict]:
    """For each underrun (monotonic time it was seen, ms between packets, ms ahead after it): the audio
    that was ahead before it (the last stats line before the gap), the longest CPU stall (real-time
    probes) and whole-machine pause that ended within the gap before it, and how late the sender (the
    guest) was then. After a stall the sink wants the stall plus its own period at once, so a stall of
    at least (ahead - device period) is one that no receiver holding that latency could have played
    through; so is a packet the guest sent later than the audio ahead of it."""

    def longest(events, t, gap_ms):
        return max((ms for when, ms in events if t - gap_ms / 1000 - 0.1 <= when <= t + 0.005), default=0.0)

    out = []
    for t, gap_ms, _ in underruns:
        before = [s["ahead_ms"] for s in stats if "ahead_ms" in s and s["t"] < t - gap_ms / 1000 - 0.005]
        ahead_ms = before[-1] if before else 0.0
        stall, pause = longest(stalls, t, gap_ms), longest(pauses, t, gap_ms)
        late = longest(sender_late, t, gap_ms)
        out.append({"gap_ms": gap_ms, "ahead_before_ms": ahead_ms, "machine_stall_ms": round(stall, 2),
                    "machine_pause_ms": round(pause, 2),
                    "sender_late_ms": late,
                    "machine_stall_exceeds_queue": bool(stall + device_ms >= ahead_ms),
                    "machine_pause_exceeds_queue": bool(pause + device_ms >= ahead_ms),
                    "sender_late_exceeds_queue": bool(late + device_ms >= ahead_ms)})
    return out


# --- measurement -----------------------------------------------------------------------------------

def find_markers(recorded: np.ndarray, n_markers: int) -> list[int | None]:
    """Index of each marker in the recording (None where not found)."""
    from tests.audio.signals import align

    x = recorded[:, 0].astype(np.float64)
    spacing = PACKET_FRAMES * MARKER_EVERY
    found: list[int | None] = []
    guess = None
    for k in range(n_markers):
        if guess is None:
            lo, hi = 0, min(len(x), 3 * RATE + spacing * k)
        else:
            lo, hi = max(0, guess - RATE // 5), min(len(x), guess + RATE // 5 + MARKER_FRAMES)
        seg = x[lo:hi]
        if len(seg) < MARKER_FRAMES * 2:
            found.append(None)
            continue
        noise = marker_noise(k).astype(np.float64)
        lag = align(seg, noise)
        piece = seg[lag:lag + MARKER_FRAMES]
        if len(piece) < MARKER_FRAMES:  # cut off by the end of the recording
            found.append(None)
            continue
        corr = np.dot(piece, noise) / (np.linalg.norm(piece) * np.linalg.norm(noise) + 1e-12)
        if corr < MARKER_MIN_CORRELATION:
            found.append(None)
            guess = None if guess is None else guess + spacing
            continue
        idx = lo + lag
        found.append(idx)
        guess = idx + spacing
    return found


def steal_ms_per_cpu() -> dict[str, float]:
    """Time the host did not run each vCPU (the steal column of /proc/stat), in ms."""
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0].startswith("cpu") and fields[0] != "cpu" and len(fields) > 8:
            out[fields[0]] = int(fields[8]) * tick_ms
    return out


def _threads(pid: int):
    """(name, /proc stat fields after the command) of each thread of a process still there."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield name, fields


def thread_policies(pid: int) -> dict[str, str]:
    """Each thread of a process: its scheduling (real-time priority or niceness), by name."""
    out = {}
    for name, fields in _threads(pid):
        rt_priority, policy, nice = int(fields[37]), int(fields[38]), int(fields[16])
        kind = {0: f"nice {nice}", 1: f"SCHED_FIFO {rt_priority}", 2: f"SCHED_RR {rt_priority}"}.get(policy, str(policy))
        out[name] = kind if name not in out or out[name] == kind else out[name] + ", " + kind
    return out


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a process, by thread name (summed over equal names)."""
    out: dict[str, float] = {}
    for name, fields in _threads(pid):
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- a small PNG plot, so the benchmark needs no plotting library ----------------------------------

_DIGITS = {  # 3x5 bitmaps
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", " ": "000000000000000",
    "m": "000000111111101", "s": "000011010001110", "-": "000000111000000",
    "a": "000111011101111", "b": "100100111101111", "c": "000000111100111", "d": "001001111101111",
    "e": "000111111100111", "f": "011010111010010", "h": "100100111101101", "l": "010010010010010",
    "n": "000000111101101", "r": "000000111100100", "t": "010111010010011", "u": "000000101101111",
    "y": "000101111001111",
}


def _text(img, x, y, text, color, scale=2):
    for ch in text:
        bits = _DIGITS.get(ch, _DIGITS[" "])
        for r in range(5):
            for c in range(3):
                if bits[r * 3 + c] == "1":
                    img[y + r * scale:y + (r + 1) * scale, x + c * scale:x + (c + 1) * scale] = color
        x += 4 * scale


def _panel(img, top, height, left, width, xs, ys, y_max, color, x_max, label_step):
    grey = (220, 220, 220)
    for v in np.arange(0, y_max + 1e-9, label_step):
        py = top + height - int(v / y_max * (height - 1))
        img[py, left:left + width] = grey
        _text(img, 4, py - 5, f"{v:.0f}", (0, 0, 0))
    for minute in range(0, int(x_max // 60) + 1):
        px = left + int(minute * 60 / x_max * (width - 1))
        img[top:top + height, px] = grey
    img[top:top + height, left] = (0, 0, 0)
    img[top + height - 1, left:left + width] = (0, 0, 0)
    if len(xs) < 2:
        return
    px = (left + np.clip(np.asarray(xs) / x_max, 0, 1) * (width - 1)).astype(int)
    py = (top + height - 1 - np.clip(np.asarray(ys) / y_max, 0, 1) * (height - 1)).astype(int)
    for i in range(len(px) - 1):
        n = max(abs(px[i + 1] - px[i]), abs(py[i + 1] - py[i]), 1)
        lx = np.linspace(px[i], px[i + 1], n + 1).astype(int)
        ly = np.linspace(py[i], py[i + 1], n + 1).astype(int)
        img[ly, lx] = color


def write_plot(path: Path, buffer_t, buffer_ms, ahead_ms, latency_t, latency_ms, duration: float) -> None:
    """Top: queued audio (blue) and audio ahead of each packet (green), ms, every STATS_EVERY; bottom: send ->
    sink latency (ms) per marker; x: minutes."""
    w, h = 1200, 560
    img = np.full((h, w, 3), 255, np.uint8)
    y_max = max(40.0, float(np.nanmax(buffer_ms)) * 1.1 if len(buffer_ms) else 40.0)
    _panel(img, 20, 240, 60, w - 80, buffer_t, buffer_ms, y_max, (30, 90, 200), duration, 10)
    if len(ahead_ms):
        _panel(img, 20, 240, 60, w - 80, buffer_t, ahead_ms, y_max, (40, 160, 60), duration, 10)
        _text(img, w - 140, 44, "ahead ms", (40, 160, 60))
    l_max = max(40.0, float(np.nanmax(latency_ms)) * 1.1 if len(latency_ms) else 40.0)
    _panel(img, 300, 240, 60, w - 80, latency_t, latency_ms, l_max, (200, 60, 30), duration, 10)
    _text(img, w - 140, 24, "buffer ms", (30, 90, 200))
    _text(img, w - 140, 304, "latency ms", (200, 60, 30))
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    path.write_bytes(png)


# --- the run ---------------------------------------------------------------------------------------

def receiver_command(kind: str, port: int, target_ms: int, pulse, baseline_exe: Path | None) -> list[str]:
    """The command line of receiver ``kind`` (``ours``: kvmfr-audio; ``baseline``) on ``port`` into the
    private sound server's 48 kHz sink."""
    if kind == "baseline":
        return [str(baseline_exe), str(port), str(target_ms), pulse.sink48, pulse.server]
    return [sys.executable, "-m", "kvmfr_client.audio.cli", "--scream", f"udp://127.0.0.1:{port}",
            "--sink", pulse.sink48, "--server", pulse.server, "--latency", str(target_ms)]


def stop_all(procs: list[subprocess.Popen], pulse) -> None:
    """Kills what is left of ``procs``, then stops the sound server."""
    from tests.support.pulse import stop_pulse

    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stop_pulse(pulse)


def run_case(args, kind: str, out: Path, target_ms: int, baseline_exe: Path | None) -> dict | None:
    """One run of ``kind`` (``ours``: kvmfr-audio; ``baseline``: the pa_simple receiver); its figures,
    None when the receiver did not start."""
    from tests.support.pulse import die_with_parent, start_pulse

    stats_path = out / "audio-stats.jsonl"
    sender_log = out / "audio-sender.json"
    cpus = sorted(os.sched_getaffinity(0))
    probe_logs = {mode: out / f"audio-probe-{mode}.json" for mode in ["nice", "rr"] + [f"fifo{c}" for c in cpus]}
    for f in (stats_path, sender_log, *probe_logs.values()):
        f.unlink(missing_ok=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    pulse = start_pulse(high_priority=True)
    procs: list[subprocess.Popen] = []
    try:
        # The load runs in its own session, as a VM's QEMU or a game does: with autogroup (or a
        # desktop's per-application cgroups) the scheduler shares the CPU between groups first, so
        # niceness ranks threads only within their own group.
        load = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=die_with_parent,
                                 start_new_session=args.load_session == "own")
                for _ in range(args.load)]
        procs += load
        command = receiver_command(kind, port, target_ms, pulse, baseline_exe)
        if kind == "ours":
            command += ["--stats", str(STATS_EVERY), "--stats-file", str(stats_path),
                        *([f"audio:realtime={args.realtime}"] if args.realtime else [])]
        receiver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(out / f"audio-receiver-{kind}.log", "w"),
                                    preexec_fn=die_with_parent)
        procs.append(receiver)
        time.sleep(1.5)
        if receiver.poll() is not None:
            print(f"the {kind} receiver exited at start; see", out / f"audio-receiver-{kind}.log", file=sys.stderr)
            return None
        cpu0, wall0, steal0 = cpu_seconds(receiver.pid), time.monotonic(), steal_ms_per_cpu()
        server0 = cpu_seconds(pulse.process.pid)
        threads0 = thread_cpu_seconds(receiver.pid)
        rec = pulse.recorder(pulse.sink48, channels=2)
        with rec:
            time.sleep(0.2)
            probes = [subprocess.Popen([sys.executable, __file__, "--_probe", str(args.duration + 1), str(path), mode],
                                       preexec_fn=die_with_parent) for mode, path in probe_logs.items()]
            procs += probes
            time.sleep(1.0)  # the probe's start-up (imports) is not part of the measurement
            sender = subprocess.Popen([sys.executable, __file__, "--_sender", str(port), str(args.duration),
                                       str(sender_log)], preexec_fn=die_with_parent)
            procs.append(sender)
            sender.wait(timeout=args.duration + 60)
            for probe in probes:
                probe.wait(timeout=30)
            time.sleep(0.5)
        cpu1, wall1, steal1 = cpu_seconds(receiver.pid), time.monotonic(), steal_ms_per_cpu()
        server1 = cpu_seconds(pulse.process.pid)
        threads1 = thread_cpu_seconds(receiver.pid)
        receiver_threads = thread_policies(receiver.pid)
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=10)
    finally:
        stop_all(procs, pulse)

    sent = json.loads(sender_log.read_text())
    marker_times = sent["marker_times"]
    recorded = rec.audio()
    if args.save_recording:
        np.save(out / "audio-recording.npy", recorded)
    found = find_markers(recorded, len(marker_times))
    if args.save_recording:  # what the send -> sink figures are made of, to check the recorder's timeline
        np.save(out / f"audio-timings-{kind}.npy", np.array(rec.timings))
        np.save(out / f"audio-arrivals-{kind}.npy", np.array(rec.arrivals))
        (out / f"audio-markers-{kind}.json").write_text(json.dumps({"sent": marker_times, "found": found}))
    lat_t, lat_ms = [], []
    for t_send, idx in zip(marker_times, found):
        if idx is not None:
            lat_t.append(t_send - marker_times[0])
            lat_ms.append((rec.time_of_frame(idx) - t_send) * 1000)
    stats = ([json.loads(line) for line in stats_path.read_text().splitlines() if line.strip()]
             if stats_path.exists() else [])   # the baseline logs no stats
    playing = [s for s in stats if s.get("packets", 0) > 0]
    buf_t = [s["t"] - playing[0]["t"] for s in playing] if playing else []
    buf_ms = [s["queued_ms"] for s in playing]
    ahead_ms = [s["ahead_ms"] for s in playing if "ahead_ms" in s]
    device_ms = [s["device_ms"] for s in playing if "device_ms" in s]
    last = stats[-1] if stats else {}
    lat = np.array(lat_ms)
    probes = {mode: json.loads(path.read_text()) for mode, path in probe_logs.items() if path.exists()}
    seen_underruns = []
    for s in stats:
        if s.get("last_underrun") and s["last_underrun"] not in seen_underruns:
            seen_underruns.append(s["last_underrun"])
    cpu_stalls, pauses = machine_stalls([p["stalls"] for mode, p in probes.items() if mode.startswith("fifo")])
    underrun_causes = classify_underruns(seen_underruns, stats, cpu_stalls, pauses, sent["late"],
                                         float(np.median(device_ms)) if device_ms else 0.0)
    result = {
        "duration_s": args.duration, "target_latency_ms": target_ms,
        "busy_processes": args.load, "busy_processes_session": args.load_session,
        "cores": os.cpu_count(), "markers_sent": len(marker_times), "markers_found": len(lat_ms),
        "latency_ms": {"median": round(float(np.median(lat)), 2), "p99": round(float(np.percentile(lat, 99)), 2),
                       "min": round(float(lat.min()), 2), "max": round(float(lat.max()), 2)} if len(lat) else None,
        # The stream's start: the first marker is in its first packet. (It read 10-15 ms low while the
        # sender made the marker on the way and so sent that packet late, the next ones in a burst.)
        "latency_first_markers_ms": [round(v, 2) for v in lat_ms[:5]],
        "underruns": last.get("underruns"),
        "underruns_during_machine_stalls_longer_than_the_queue": sum(u["machine_stall_exceeds_queue"]
                                                                     for u in underrun_causes),
        "underruns_during_whole_machine_pauses_longer_than_the_queue": sum(u["machine_pause_exceeds_queue"]
                                                                           for u in underrun_causes),
        "underruns_after_sender_late_by_more_than_the_queue": sum(u["sender_late_exceeds_queue"]
                                                                  for u in underrun_causes),
        "underrun_detail": underrun_causes,
        "catchups": last.get("catchups"), "skipped_ms": last.get("skipped_ms"), "packets": last.get("packets"),
        "bad_packets": last.get("bad_packets"), "final_ratio": last.get("ratio"),
        "buffer_ms": {"median": round(float(np.median(buf_ms)), 2), "p1": round(float(np.percentile(buf_ms, 1)), 2),
                      "p99": round(float(np.percentile(buf_ms, 99)), 2),
                      "first_minute_median": round(float(np.median([b for t, b in zip(buf_t, buf_ms) if t < 60])), 2),
                      "last_minute_median": round(float(np.median([b for t, b in zip(buf_t, buf_ms)
                                                                   if t > buf_t[-1] - 60])), 2)} if buf_ms else None,
        "ahead_ms": {"median": round(float(np.median(ahead_ms)), 2), "p1": round(float(np.percentile(ahead_ms, 1)), 2),
                     "p99": round(float(np.percentile(ahead_ms, 99)), 2)} if ahead_ms else None,
        "sink_device_latency_ms": round(float(np.median(device_ms)), 2) if device_ms else None,
        "receiver": kind,
        "receiver_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 2),
        "sound_server_cpu_percent_of_one_core": round(100 * (server1 - server0) / (wall1 - wall0), 2),
        "receiver_threads": receiver_threads,
        "receiver_cpu_percent_by_thread": {name: round(100 * (v - threads0.get(name, 0.0)) / (wall1 - wall0), 2)
                                           for name, v in threads1.items()},
        "sender_late_over_5ms": len(sent["late"]), "sender_max_late_ms": max((ms for _, ms in sent["late"]), default=0.0),
        "final_target_ms": last.get("target_ms"),
        "machine_wakeup_probes": {mode: {k: v for k, v in p.items() if k != "stalls"} for mode, p in probes.items()},
        "machine_stalls_over_15ms": sum(ms > 15 for _, ms in cpu_stalls),
        "whole_machine_pauses": {"over_10ms": sum(ms > 10 for _, ms in pauses),
                                 "over_15ms": sum(ms > 15 for _, ms in pauses),
                                 "max_ms": max((ms for _, ms in pauses), default=0.0)},
        "host_steal_ms_per_cpu": {c: round(steal1[c] - steal0.get(c, 0.0)) for c in steal1},
        "load_average_at_end": os.getloadavg(),
    }
    if kind == "ours":
        write_plot(out / "audio-buffer.png", buf_t, buf_ms, ahead_ms if len(ahead_ms) == len(buf_ms) else [],
                   lat_t, lat_ms, max(args.duration, 1.0))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=600.0, help="seconds of audio (default 600)")
    p.add_argument("--latency", type=int, help="target latency (ms) of both receivers; default: audio:latency's default")
    p.add_argument("--receiver", choices=["ours", "baseline", "both"], default="both",
                   help="kvmfr-audio, the pa_simple baseline receiver (benchmarks/baseline), or both interleaved")
    p.add_argument("--runs", type=int, default=1, help="runs of each receiver (default 1)")
    p.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy-loop processes (default: one per core)")
    p.add_argument("--load-session", choices=["own", "shared"], default="own",
                   help="run the busy loops in their own session (default, as a VM's QEMU) or in the receiver's")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "out"))
    p.add_argument("--realtime", choices=["yes", "no"], help="kvmfr-audio audio:realtime (default: the player's default)")
    p.add_argument("--save-recording", action="store_true", help="also write the recording (audio-recording.npy), the recorder's timing updates and arrivals and the markers "
                   "(the last run's; see audio_timeline.py)")
    p.add_argument("--_sender", nargs=3, metavar=("PORT", "DURATION", "LOG"), help=argparse.SUPPRESS)
    p.add_argument("--_probe", nargs=3, metavar=("DURATION", "LOG", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._sender:
        run_sender(int(args._sender[0]), float(args._sender[1]), args._sender[2])
        return 0
    if args._probe:
        run_probe(float(args._probe[0]), args._probe[1], args._probe[2])
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target_ms = args.latency or int(option_default("audio:latency"))
    kinds = ["ours", "baseline"] if args.receiver == "both" else [args.receiver]
    baseline_exe = build_baseline(out) if "baseline" in kinds else None
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(args.runs):
        for kind in kinds:   # interleaved, so both see the same hour of the machine
            result = run_case(args, kind, out, target_ms, baseline_exe)
            if result is None:
                return 1
            runs[kind].append(result)
            print(f"{kind}: latency {result['latency_ms']}, underruns {result['underruns']}, receiver CPU "
                  f"{result['receiver_cpu_percent_of_one_core']} %, sound server CPU "
                  f"{result['sound_server_cpu_percent_of_one_core']} %, load {os.getloadavg()[0]:.2f}", flush=True)
    summary = {kind: summarize(rs) for kind, rs in runs.items()}
    report = {"summary": summary, "runs": runs}
    (out / "audio.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))
    if "ours" in kinds:
        print(f"plot of the last run: {out / 'audio-buffer.png'}")
    return 0


def option_default(name: str):
    from kvmfr_client import config   # registers every option
    from kvmfr_client.config.registry import option

    del config
    return option(name).default_value()


def build_baseline(out: Path) -> Path:
    """Compiles benchmarks/baseline/pa_simple_receiver.c (needs cc and libpulse-dev)."""
    exe = out / "pa_simple_receiver"
    src = REPO / "benchmarks" / "baseline" / "pa_simple_receiver.c"
    built = subprocess.run(["cc", "-O2", "-o", str(exe), str(src), "-lpulse-simple", "-lpulse"],
                           capture_output=True, text=True)
    if built.returncode != 0:
        sys.exit(f"cannot build the baseline receiver (install a C compiler and libpulse-dev, "
                 f"scripts/deps/apt-test-audio.txt): {built.stderr.strip()}")
    return exe


def summarize(results: list[dict]) -> dict:
    """Medians over runs of the figures compared."""
    def med(get):
        values = [v for v in (get(r) for r in results) if v is not None]
        return round(float(np.median(values)), 2) if values else None

    return {"runs": len(results),
            "latency_median_ms": med(lambda r: (r["latency_ms"] or {}).get("median")),
            "latency_p99_ms": med(lambda r: (r["latency_ms"] or {}).get("p99")),
            "underruns_median": med(lambda r: r["underruns"]),
            "receiver_cpu_percent_of_one_core": med(lambda r: r["receiver_cpu_percent_of_one_core"]),
            "sound_server_cpu_percent_of_one_core": med(lambda r: r["sound_server_cpu_percent_of_one_core"]),
            "load_average_at_end": [r["load_average_at_end"][0] for r in results]}


if __name__ == "__main__":
    sys.exit(main())
