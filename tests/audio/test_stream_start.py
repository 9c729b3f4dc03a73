"""A stream's start and its latency, as a listener hears them: the first packet plays at the target
latency, nothing is skipped or inserted at the start (the sound server counts no underrun, read from
the server itself), and each packet's latency from the guest's send to the sink stays on
``audio:latency``."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from guest_agent.audio.scream_sender import ScreamUdpSender
from kvmfr_client.audio import formats
from kvmfr_client.audio.formats import PcmFormat
from kvmfr_client.audio.service import SCREAM_UDP_STREAM
from tests.audio.server_underruns import UnderrunCounter
from tests.audio.signals import PacedSender, align
from tests.support.process import stop_process
from tests.support.vm import free_port

RATE = 48000
PACKET = 288  # frames per datagram: 1152 bytes of 16-bit stereo
MARK_EVERY = 42 * PACKET  # a marker every 252 ms, on a packet boundary
MARK_LEN = 480  # 10 ms of noise
SECONDS = 3.0
TARGET_MS = 30  # on a busy 2-core CI machine 19 ms would make this a test of the machine's stalls
START_S = 1.2  # "the start": the first 1.2 s of the stream, which is where skips and underruns were
SENDER_STALL = 0.8 * TARGET_MS / 1000  # a gap between two sends this long is the machine's, not the player's


def _signal() -> tuple[np.ndarray, list[int]]:
    n = int(SECONDS * RATE) // PACKET * PACKET
    t = np.arange(n) / RATE
    x = 0.25 * np.sin(2 * np.pi * 440 * t)
    marks = list(range(0, n - MARK_LEN, MARK_EVERY))
    for k, m in enumerate(marks):
        # Low-passed (below ~4 kHz), so that drift resampling, which interpolates, keeps it recognisable.
        raw = np.random.default_rng(100 + k).uniform(-1, 1, MARK_LEN + 16)
        smooth = np.convolve(raw, np.hanning(10), mode="same")[8:8 + MARK_LEN]
        x[m:m + MARK_LEN] = 0.5 * smooth / np.max(np.abs(smooth))
    return np.repeat(x.astype(np.float32)[:, None], 2, axis=1), marks


def test_stream_starts_on_target_without_skip_or_underrun(pulse, tmp_path):
    # kvmfr-audio in its own process, as a user runs it: the recorder and the sender in this process
    # then cannot hold its interpreter lock.
    fmt = PcmFormat(RATE, 16, 2, 0x3)
    sig, marks = _signal()
    for attempt in (1, 2):
        run = _run_once(pulse, tmp_path / f"stats{attempt}.jsonl", fmt, sig)
        start_underruns, rec, paced, start_stats, stats = run
        gap = float(np.max(np.diff(paced.send_times)))
        if gap < SENDER_STALL:
            break
        # The guest's stand-in itself (this test process) stopped for longer than the queue can cover:
        # no receiver could play through that, so this run says nothing about the player. Once more.
        print(f"\nattempt {attempt}: the test's sender stalled {gap * 1000:.0f} ms (the machine is busy)")
    else:
        raise AssertionError(f"the test's own sender stalled {gap * 1000:.0f} ms in both attempts: the machine is "
                             "too busy to test a stream's start at a 30 ms target")
    _check(sig, marks, rec, paced, start_underruns, start_stats, stats)


def _run_once(pulse, stats_file, fmt, sig):
    port = free_port(udp=True)
    with UnderrunCounter(pulse, SCREAM_UDP_STREAM) as counter:
        proc = subprocess.Popen([sys.executable, "-m", "kvmfr_client.audio.cli", "--scream", f"udp://127.0.0.1:{port}",
                                 "--sink", pulse.sink48, "--server", pulse.server, "--latency", str(TARGET_MS),
                                 "--stats", "0.2", "--stats-file", str(stats_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_listening(proc, stats_file)
            start_underruns, rec, paced, start_stats = _play_and_record(pulse, port, counter, fmt, sig, stats_file)
        finally:
            out = stop_process(proc)
    assert proc.returncode == 0, out
    return start_underruns, rec, paced, start_stats, _last_stats(stats_file)


def _last_stats(path) -> dict:
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return json.loads(lines[-1]) if lines else {}


def _wait_listening(proc, stats_file) -> None:
    """kvmfr-audio is up once it has written its first stats line (its socket is bound before)."""
    deadline = time.monotonic() + 20
    while not _last_stats(stats_file):
        assert proc.poll() is None, f"kvmfr-audio exited: {proc.stdout.read()}"
        assert time.monotonic() < deadline, "kvmfr-audio wrote no stats within 20 s"
        time.sleep(0.05)


def _play_and_record(pulse, port, counter, fmt, sig, stats_file):
    """Sends ``sig`` as Scream UDP in real time and records the sink; the server's underruns and the
    player's counters after the first START_S seconds."""
    sender = ScreamUdpSender(fmt, "127.0.0.1", port)
    pcm = formats.encode(fmt, sig)
    try:
        with pulse.recorder(pulse.sink48, channels=2) as rec:
            time.sleep(0.15)
            paced = PacedSender(lambda c: sender.send_raw(sender._header + c), pcm, PACKET * 4, PACKET / RATE).start()
            time.sleep(START_S)
            start_underruns = counter.lines()
            start_stats = _last_stats(stats_file)
            paced.join()
            time.sleep(0.3 + TARGET_MS / 1000)
    finally:
        sender.close()
    return start_underruns, rec, paced, start_stats


def _check(sig, marks, rec, paced, start_underruns, start_stats, stats) -> None:
    x = rec.audio()[:, 0].astype(np.float64)
    found, lat_ms = [], []
    for k, m in enumerate(marks):
        ref = sig[m:m + MARK_LEN, 0].astype(np.float64)
        lo = 0 if not found else max(0, found[-1] + MARK_EVERY - RATE // 16)
        seg = x[lo:lo + (RATE if not found else RATE // 8 + MARK_LEN)]
        i = lo + align(seg, ref)
        piece = x[i:i + MARK_LEN]
        corr = float(np.dot(piece, ref) / (np.linalg.norm(piece) * np.linalg.norm(ref) + 1e-12))
        assert corr > 0.8, (f"marker {k} ({m / RATE:.2f} s into the stream) not found intact (correlation "
                            f"{corr:.2f}); markers before it at {np.round(lat_ms, 1).tolist()} ms; player: {stats}")
        found.append(i)
        sent = paced.send_times[m // PACKET]
        lat_ms.append((rec.time_of_frame(i) - sent) * 1000)
    spacing = np.diff(found) - MARK_EVERY  # frames skipped (<0) or inserted (>0) between two markers
    print(f"\nlatency per marker (ms): {np.round(lat_ms, 1).tolist()}\nskipped(-)/inserted(+) frames between "
          f"markers: {spacing.tolist()}\nserver underruns in the first {START_S} s: {len(start_underruns)}; "
          f"player: {stats}")
    assert start_underruns == [], f"the sound server ran dry at stream start: {start_underruns}"
    assert start_stats.get("packets", 0) > 0, f"kvmfr-audio received nothing: {start_stats}"
    assert start_stats["skipped_ms"] == 0 and start_stats["catchups"] == 0, start_stats
    start = [s for k, s in enumerate(spacing) if marks[k + 1] / RATE <= START_S]
    assert all(abs(s) <= 2 for s in start), f"audio skipped or inserted at the start: {start} frames"
    # The first packet already plays at the target: the start is not early (a thin cushion) or late.
    assert abs(lat_ms[0] - TARGET_MS) < 2, f"first packet at {lat_ms[0]:.1f} ms, target {TARGET_MS} ms"
    # On the target: medians of 29.9-30.9 ms measured for 30 in six runs (issue 15's 1 ms is the benchmark's,
    # over 30 s; these are a stream's first 3 s, which read up to 1.4 ms high). Before the prefill counted
    # the sink's share the first seconds played 2-2.5 ms below (27.2-28.1 per marker).
    median = float(np.median(lat_ms))
    assert abs(median - TARGET_MS) < 1.5, f"median latency {median:.1f} ms, target {TARGET_MS} ms"
