"""Headless reader: subscribe, consume N frames and every cursor update, verify the agent's test pattern.

`kvmfr-view --headless --frames N --json` prints one JSON object; exit status 0 only when N frames
arrived with no pattern error. Frames are read on this thread, cursor updates on a thread of their own.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from kvmfr_client.core import session as session_mod
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.testpattern import Pattern, PatternKind, read_stored_code

log = logging.getLogger(__name__)


@dataclass
class ReaderResult:
    frames: int = 0
    pattern_frames: int = 0
    pattern_errors: int = 0
    serial_gaps: int = 0
    cursor_updates: int = 0
    cursor_shapes: int = 0
    session_restarts: int = 0
    data_errors: dict = field(default_factory=dict)
    host: dict = field(default_factory=dict)
    format: str = ""
    width: int = 0
    height: int = 0
    ups: float = 0.0
    latency_ms: list = field(default_factory=list)   # capture -> copied (same machine, same clock)
    copy_ms: list = field(default_factory=list)
    state: str = ""
    elapsed_s: float = 0.0

    def to_json(self) -> dict:
        def pct(values, q):
            return round(float(np.percentile(values, q)), 3) if values else None
        return {
            "frames": self.frames, "ups": round(self.ups, 2), "pattern_errors": self.pattern_errors,
            "pattern_frames": self.pattern_frames, "serial_gaps": self.serial_gaps,
            "cursor_updates": self.cursor_updates, "cursor_shapes": self.cursor_shapes,
            "session_restarts": self.session_restarts, "host": self.host, "format": self.format,
            "width": self.width, "height": self.height, "data_errors": self.data_errors,
            "capture_to_copied_ms_p50": pct(self.latency_ms, 50), "capture_to_copied_ms_p99": pct(self.latency_ms, 99),
            "copy_ms_p50": pct(self.copy_ms, 50), "copy_ms_p99": pct(self.copy_ms, 99),
            "state": self.state, "elapsed_s": round(self.elapsed_s, 3),
        }


def _cursor_loop(session: session_mod.Session, result: ReaderResult, stop: threading.Event) -> None:
    while not stop.is_set():
        event = session.next_cursor(timeout=0.05)
        if event is not None:
            result.cursor_updates += 1
            result.cursor_shapes += event.shape is not None


def read_frames(path: str, frames: int, timeout: float = 60.0, verify: bool = True) -> ReaderResult:
    result = ReaderResult()
    session = session_mod.open(path)
    stop = threading.Event()
    cursor_thread = threading.Thread(target=_cursor_loop, args=(session, result, stop), name="cursor", daemon=True)
    cursor_thread.start()
    patterns: dict[tuple, Pattern] = {}
    out = None
    first_t = last_t = None
    last_serial = None
    deadline = time.monotonic() + timeout
    try:
        while result.frames < frames and time.monotonic() < deadline:
            try:
                frame = session.next_frame(timeout=0.1, out=out, allow_damage=True)
            except ValueError:   # the frame grew past our buffer: that one is dropped, start a new buffer
                out = None
                continue
            if frame is None:
                continue
            if out is None:
                out = frame.pixels   # the fresh buffer the session copied into; damage lands in it from now on
            now = time.monotonic()
            first_t = first_t or now
            last_t = now
            result.frames += 1
            if last_serial is not None and frame.serial != last_serial + 1:
                result.serial_gaps += 1
            last_serial = frame.serial
            result.format, result.width, result.height = frame.type.name, frame.width, frame.height
            result.copy_ms.append((frame.t_copy_end_ns - frame.t_copy_start_ns) / 1e6)
            if verify:
                _verify(frame, patterns, result)
    finally:
        stop.set()
        cursor_thread.join(1.0)
        result.session_restarts = session.session_restarts
        result.data_errors = dict(session.error_counts)
        result.state = session.status_message
        if session.host is not None:
            result.host = {"version": session.host.hostver, "capture": session.host.capture,
                           "os": session.host.os_name, "session_id": session.host.session_id}
        session.close()
    if first_t is not None and last_t is not None and result.frames > 1:
        result.ups = (result.frames - 1) / max(last_t - first_t, 1e-9)
        result.elapsed_s = last_t - first_t
    return result


def _verify(frame, patterns: dict, result: ReaderResult) -> None:
    code = read_stored_code(frame.pixels, frame.type, frame.width)
    if code is None:
        return   # not the agent's pattern (a real guest): nothing to verify
    kind, serial, t_us = code
    result.pattern_frames += 1
    result.latency_ms.append((frame.t_copy_end_ns // 1000 - t_us) / 1000.0)
    key = (frame.width, frame.height, frame.type, kind)
    if key not in patterns:
        patterns[key] = Pattern(frame.width, frame.height, FrameType(frame.type), PatternKind(kind))
    bad = patterns[key].verify(frame.pixels, serial)
    if serial != frame.serial or bad:
        result.pattern_errors += 1
        log.warning("frame %d: pattern mismatch (code serial %d, bad rows %s)", frame.serial, serial, bad[:5])


def main_headless(path: str, frames: int, as_json: bool, timeout: float) -> int:
    result = read_frames(path, frames, timeout)
    data = result.to_json()
    if as_json:
        print(json.dumps(data))
    else:
        for key, value in data.items():
            print(f"{key:>26}: {value}")
    ok = result.frames >= frames and result.pattern_errors == 0
    if not ok and result.frames < frames:
        print(f"kvmfr-view: only {result.frames} of {frames} frames arrived ({result.state})", file=sys.stderr)
    return 0 if ok else 1
