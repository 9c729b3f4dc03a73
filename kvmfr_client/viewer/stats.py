"""Counters and timings of the viewer: what the overlay shows and what ``--stats-json`` writes."""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import numpy as np

from kvmfr_client.core.session import HostTimings

_MAX_SAMPLES = 100_000

# The host's own stage durations (KVMFR 34), as the overlay abbreviates them.
HOST_STAGES = HostTimings.STAGES
HOST_STAGE_SHORT = dict(zip(HOST_STAGES, ("capture", "post", "copy", "ready", "hold", "lead")))
HOST_FIELDS = tuple(f"host_{name}_ns" for name in HOST_STAGES)
_NO_HOST = (-1,) * len(HOST_STAGES)
VIEWER_FIELDS = ("serial", "t_capture_us", "t_seen_ns", "t_copy_start_ns", "t_copy_end_ns",
                 "t_upload_end_ns", "t_draw_end_ns", "t_swap_end_ns", *HOST_FIELDS)
_MAX_TIMING_ROWS = 500_000
HOST_OVERLAY_S = 2.0   # the overlay's host line stays while a host-timed frame was shown this recently


def host_ns(t: HostTimings | None) -> tuple[int, ...]:
    """The six host stage durations (ns) of a frame, or -1 each when the host gave none."""
    if t is None:
        return _NO_HOST
    return (t.capture_ns, t.post_process_ns, t.copy_ns, t.ready_ns, t.hold_ns, t.ready_lead_ns)


class TimingRecorder:
    """The viewer's side: one row of stage timestamps per frame shown (a swap after its upload), with the
    host's own stage durations when the frame carries them (KVMFR 34; -1 otherwise)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, ...]] = []

    def frame_shown(self, serial: int, t_capture_us: int | None, t_seen_ns: int, t_copy_start_ns: int,
                    t_copy_end_ns: int, t_upload_end_ns: int, t_draw_end_ns: int, t_swap_end_ns: int,
                    host: HostTimings | None = None) -> None:
        if len(self.rows) < _MAX_TIMING_ROWS:
            self.rows.append((serial, t_capture_us if t_capture_us is not None else -1, t_seen_ns,
                              t_copy_start_ns, t_copy_end_ns, t_upload_end_ns, t_draw_end_ns, t_swap_end_ns,
                              *host_ns(host)))

    def write(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps({"clock": "CLOCK_MONOTONIC", "fields": VIEWER_FIELDS,
                                          "frames": self.rows}) + "\n")


class Series:
    """Timing samples (milliseconds): the first _MAX_SAMPLES for percentiles, the recent ones for the
    overlay. The samples live in one array of 8-byte floats reserved up front, not a list of float
    objects (32 bytes each), so a viewer left running for hours holds at most 0.8 MB a series and its
    memory does not creep up frame by frame."""

    def __init__(self) -> None:
        self._values = np.empty(_MAX_SAMPLES, dtype=np.float64)   # pages are touched only as filled
        self._count = 0
        self.recent: collections.deque[float] = collections.deque(maxlen=120)

    @property
    def values(self) -> np.ndarray:
        return self._values[:self._count]

    def add(self, ms: float) -> None:
        if self._count < _MAX_SAMPLES:
            self._values[self._count] = ms
            self._count += 1
        self.recent.append(ms)

    def p(self, q: float) -> float | None:
        return round(float(np.percentile(self.values, q)), 3) if self._count else None

    def recent_avg(self) -> float | None:
        return sum(self.recent) / len(self.recent) if self.recent else None


class Rate:
    """Events per second over the last second."""

    def __init__(self) -> None:
        self.times: collections.deque[float] = collections.deque()

    def tick(self, now: float) -> None:
        self.times.append(now)
        while self.times and now - self.times[0] > 1.0:
            self.times.popleft()

    def per_second(self, now: float) -> float:
        while self.times and now - self.times[0] > 1.0:
            self.times.popleft()
        return float(len(self.times))


class Stats:
    def __init__(self) -> None:
        self.t_start = time.monotonic()
        self.cpu_start = time.process_time()
        self.t_first_frame: float | None = None
        self.t_last_frame: float | None = None
        self.frames_received = 0     # frames handed to the renderer
        self.frames_shown = 0        # of those, how many reached the screen (a swap after their upload)
        self.redraws = 0             # every swap (frames, cursor moves, overlay, resize, fpsMin)
        self.dropped = 0             # serials the reader never saw (skipped in the ring)
        self.superseded = 0          # uploaded but replaced before a swap
        self.damage_uploads = 0
        self.copy = Series()
        self.upload = Series()
        self.present = Series()      # draw + swap
        self.draw = Series()         # the renderer's draw calls alone (the timing graphs)
        self.swap = Series()         # the buffer swap alone
        self.cpu = Series()          # process CPU (all threads) from one shown frame to the next (graphs)
        self.latency = Series()      # capture timestamp (test pattern) -> after swap
        self.host_stages: dict[str, Series] | None = None   # the host's own stage times (KVMFR 34), per shown frame
        self.host_timed_frames = 0
        self.t_host_timed: float | None = None
        self.ups = Rate()
        self.fps = Rate()
        self.paths: collections.Counter[str] = collections.Counter()
        self.sessions = 0
        self.error_counts: dict[str, int] = {}   # the session's errors by kind (Session.errors_by_kind())
        self.renderer = ""

    def frame_received(self, now: float) -> None:
        self.frames_received += 1
        self.ups.tick(now)
        if self.t_first_frame is None:
            self.t_first_frame = now
        self.t_last_frame = now

    def host_frame_shown(self, t: HostTimings, now: float) -> None:
        """A shown frame carried the host's stage durations: one sample per stage (milliseconds)."""
        if self.host_stages is None:
            self.host_stages = {name: Series() for name in HOST_STAGES}
        for name, ns in zip(HOST_STAGES, host_ns(t)):
            self.host_stages[name].add(ns / 1e6)
        self.host_timed_frames += 1
        self.t_host_timed = now

    def overlay_lines(self) -> list[str]:
        now = time.monotonic()

        def ms(series: Series) -> str:
            v = series.recent_avg()
            return "-" if v is None else f"{v:.2f}"
        lines = [
            f"UPS {self.ups.per_second(now):.1f}   FPS {self.fps.per_second(now):.1f}",
            f"copy {ms(self.copy)}   upload {ms(self.upload)}   draw {ms(self.present)} ms",
            f"dropped {self.dropped}   shown {self.frames_shown} of {self.frames_received}",
        ]
        if self.host_stages is not None and self.t_host_timed is not None and now - self.t_host_timed < HOST_OVERLAY_S:
            lines.append("host: " + ", ".join(f"{HOST_STAGE_SHORT[k]} {ms(v).strip()}"
                                              for k, v in self.host_stages.items()) + " ms")
        if self.latency.recent:
            lat = list(self.latency.recent)[-30:]
            lines.append(f"latency {np.median(lat):.1f} ms (max {max(lat):.1f})")
        path = self.paths.most_common(1)
        if path:
            lines.append(f"path {path[0][0]}, {self.renderer[:40]}")
        return lines

    def summary(self) -> dict:
        now = time.monotonic()
        span = (self.t_last_frame - self.t_first_frame) if self.t_first_frame and self.t_last_frame else 0.0
        cpu = time.process_time() - self.cpu_start
        return {
            "frames_received": self.frames_received,
            "frames_shown": self.frames_shown,
            "redraws": self.redraws,
            "dropped": self.dropped,
            "superseded": self.superseded,
            "damage_uploads": self.damage_uploads,
            "ups": round((self.frames_received - 1) / span, 2) if span > 0 else 0.0,
            "fps": round((self.frames_shown - 1) / span, 2) if span > 0 and self.frames_shown > 1 else 0.0,
            "copy_ms_p50": self.copy.p(50),
            "upload_ms_p50": self.upload.p(50),
            "upload_ms_p95": self.upload.p(95),
            "present_ms_p50": self.present.p(50),
            "present_ms_p95": self.present.p(95),
            "latency_ms_p50": self.latency.p(50),
            "latency_ms_p95": self.latency.p(95),
            "latency_samples": len(self.latency.values),
            "host_timed_frames": self.host_timed_frames,
            "host_stages_ms": None if self.host_stages is None else {
                name: {"p50": v.p(50), "p95": v.p(95), "max": round(float(v.values.max()), 3) if len(v.values) else None}
                for name, v in self.host_stages.items()},
            "paths": dict(self.paths),
            "renderer": self.renderer,
            "sessions": self.sessions,
            "error_counts": dict(self.error_counts),
            "duration_s": round(now - self.t_start, 3),
            "cpu_s": round(cpu, 3),
            "cpu_ms_per_shown_frame": round(1000 * cpu / self.frames_shown, 3) if self.frames_shown else None,
        }

    def write_json(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        data = self.summary() | (extra or {})
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


def thread_cpu_s(threads: dict) -> dict[str, float]:
    """CPU seconds used so far by each named thread (Linux /proc), for the stats JSON."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for name, thread in threads.items():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[name] = round((int(fields[11]) + int(fields[12])) / tick, 3)
        except (OSError, IndexError, ValueError, TypeError):
            pass
    return out


def save_snapshot(path: str | os.PathLike, rgba: np.ndarray) -> None:
    """``--snapshot``: what the window shows (RGBA, top row first) as a numpy ``.npy`` file."""
    np.save(path, rgba)
