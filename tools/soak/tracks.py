"""What the harness remembers about each reader, bounded however long the soak runs: recent frame
times (for gap checks), recovery marks, error counts, RSS samples."""

from __future__ import annotations

import collections
import json
import re
import statistics
import threading
import time

MAX_KINDS = 100


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 3)


def summary_ms(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": pct(values, 50), "p99_ms": pct(values, 99),
            "max_ms": round(max(values), 3) if values else None}


class Recovery:
    """Armed at a moment ``t0_ns``: the first frame captured after ``captured_after_ns`` ends the wait."""

    def __init__(self) -> None:
        self.armed_ns: int | None = None
        self.after_ns = 0
        self.got_ns: int | None = None

    def arm(self, t0_ns: int, captured_after_ns: int) -> None:
        self.armed_ns, self.after_ns, self.got_ns = t0_ns, captured_after_ns, None

    def see(self, t_ns: int, capture_us: int) -> None:
        if self.armed_ns is not None and self.got_ns is None and capture_us >= 0 \
                and capture_us * 1000 >= self.after_ns:
            self.got_ns = t_ns


class FrameTrack:
    """Frames one reader showed: count, the last 10 s of arrival times, recoveries."""

    def __init__(self, name: str):
        self.name = name
        self.frames = 0
        self.recent: collections.deque[int] = collections.deque(maxlen=4000)
        self.captures: collections.deque[tuple[int, int]] = collections.deque(maxlen=4000)  # (t_ns, capture_us)
        self.recovery = Recovery()
        self.errors: collections.Counter[str] = collections.Counter()
        self.status: dict = {}
        self.exception: str | None = None
        self._lock = threading.Lock()

    def frame(self, t_ns: int, capture_us: int) -> None:
        with self._lock:
            self.frames += 1
            self.recent.append(t_ns)
            if capture_us >= 0:
                self.captures.append((t_ns, capture_us))
            self.recovery.see(t_ns, capture_us)

    def reconnected(self, t_ns: int) -> None:
        """A reader that reports no capture stamps (the headless reader) took up a session at ``t_ns``: a
        recovery mark only (kept with the captures, so a recovery armed just after it still sees it), not a
        frame, so it never hides a wait between frames."""
        with self._lock:
            self.captures.append((t_ns, t_ns // 1000))
            self.recovery.see(t_ns, t_ns // 1000)

    def arm(self, t0_ns: int, captured_after_ns: int) -> None:
        """Start a recovery wait; a frame that arrived already (a racing line) counts."""
        with self._lock:
            self.recovery.arm(t0_ns, captured_after_ns)
            for t, cap in self.captures:
                self.recovery.see(t, cap)

    def captures_between(self, t0_ns: int, t1_ns: int) -> list[tuple[int, int]]:
        with self._lock:
            return [(t, c) for t, c in self.captures if t0_ns <= t <= t1_ns]

    def times_between(self, t0_ns: int, t1_ns: int) -> list[int]:
        with self._lock:
            return [t for t in self.recent if t0_ns <= t <= t1_ns]

    def last_frame_ns(self) -> int | None:
        with self._lock:
            return self.recent[-1] if self.recent else None

    def count_error(self, kind: str, n: int = 1) -> None:
        if kind not in self.errors and len(self.errors) >= MAX_KINDS:
            kind = "other"
        self.errors[kind] += n


def max_gap_ns(times: list[int], t0_ns: int, t1_ns: int) -> int:
    """Longest stretch in [t0, t1] without a frame (the ends count as edges)."""
    points = [t0_ns] + sorted(times) + [t1_ns]
    return max(b - a for a, b in zip(points, points[1:]))


_NUM = re.compile(r"0x[0-9a-fA-F]+|-?\d+")


def error_kind(message: str) -> str:
    """A log message reduced to its kind: numbers out, internals in brackets dropped, 70 characters."""
    text = message.split("[", 1)[0]
    return _NUM.sub("N", text).strip()[:100]


class ApiLines:
    """Parses the API reader's lines into a FrameTrack (see tools/soak/api_reader.py)."""

    def __init__(self, track: FrameTrack):
        self.track = track

    def __call__(self, t_ns: int, line: str) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "F":
            t, _serial, cap = rest.split()
            self.track.frame(int(t), int(cap))
        elif kind == "S":
            t, state, restarts, counts = rest.split(" ", 3)
            self.track.status = {"state": state, "session_restarts": int(restarts), "errors": json.loads(counts)}
        elif kind == "X":
            self.track.exception = rest.split(" ", 1)[1]
        else:
            self.track.count_error("log: " + error_kind(line.split(": ", 2)[-1] if line.startswith("kvmfr") else line))


class LogLines:
    """A program's log lines: 'connected' lines (``on_connected``), tracebacks (counted as ``TRACEBACK``) and,
    with ``count_warnings``, warning/error lines counted by kind (the agent). The readers report their own
    error counts instead (the window's --stats-json, the headless reader's --progress and final JSON, the API
    reader's status lines), so their warning lines are not parsed."""

    def __init__(self, track: FrameTrack, on_connected=None, count_warnings: bool = True):
        self.track = track
        self.on_connected = on_connected
        self.count_warnings = count_warnings
        self.connected_ns: list[int] = []

    def __call__(self, t_ns: int, line: str) -> None:
        if "connected:" in line and "INFO" in line:
            self.connected_ns = self.connected_ns[-100:] + [t_ns]
            if self.on_connected is not None:
                self.on_connected(t_ns)
            return
        if "Traceback" in line:
            self.track.count_error("TRACEBACK")
        if not self.count_warnings:
            return
        for level in ("WARNING", "ERROR", "CRITICAL"):
            if level in line:
                message = line.split(level, 1)[1].lstrip(": ")
                if message.startswith("kvmfr_client.") or message.startswith("guest_agent."):
                    message = message.split(": ", 1)[-1]   # drop the logger name
                self.track.count_error(error_kind(message))
                return


class RssTrack:
    """VmRSS samples of one process, one a second: the warm-up value, the last value, their growth."""

    def __init__(self, name: str, warmup_s: float):
        self.name, self.warmup_s = name, warmup_s
        self.t0 = time.monotonic()
        self.warm: list[int] = []
        self.last: collections.deque[int] = collections.deque(maxlen=5)
        self.peak = 0
        self.first: int | None = None

    def add(self, kib: int | None) -> None:
        if kib is None:
            return
        age = time.monotonic() - self.t0
        self.first = self.first or kib
        if age < self.warmup_s:
            return
        if len(self.warm) < 5:
            self.warm.append(kib)
        self.last.append(kib)
        self.peak = max(self.peak, kib)

    def result(self) -> dict:
        warm = statistics.median(self.warm) if self.warm else None
        end = statistics.median(self.last) if self.last else None
        growth = (end - warm) / warm * 100 if warm and end else None
        return {"first_kib": self.first, "warm_kib": warm, "end_kib": end, "peak_kib": self.peak or None,
                "growth_pct": round(growth, 2) if growth is not None else None}
