"""Headless reader: subscribe, consume N frames and every cursor update, verify the agent's test pattern.

`kvmfr-view --headless --frames N --json` prints one JSON object, also when it fails (its ``error`` member
then says why, beside what was read so far); exit status 0 only when N whole frames arrived with no
pattern error (the statuses are in kvmfr_client.config.exits). Ctrl+C or SIGTERM ends the reading: the
results so far are printed, exit 130 / 143. Frames are read on this thread, cursor updates on a thread of
their own.

``--progress`` adds one JSON line a second on stdout before the results (see :func:`progress_line`), written
by the reading loop itself: a reader stuck in a wait stops writing them, which is how a soak sees it hang.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kvmfr_client.config import exits
from kvmfr_client.core import errors
from kvmfr_client.core import session as session_mod
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.testpattern import Pattern, PatternKind, read_stored_code
from kvmfr_client.viewer.stats import Series

log = logging.getLogger(__name__)
# A capture-to-copied latency outside -1 ms .. this is two clocks (a VM guest's pattern), reported as null.
SAME_CLOCK_MAX_MS = 60_000.0


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
    protocol: dict = field(default_factory=dict)   # {"lgmp": 6|12, "kvmfr": 20|34} of the last host
    format: str = ""
    width: int = 0
    height: int = 0
    ups: float = 0.0
    # Bounded sample arrays (viewer.stats.Series), so a reader left running for hours stays flat.
    latency_ms: Series = field(default_factory=Series)   # capture -> copied (same machine, same clock: see to_json)
    copy_ms: Series = field(default_factory=Series)
    state: str = ""
    elapsed_s: float = 0.0
    truncated_frames: int = 0     # frames cut short by the host (they did not fit): not verified
    truncated_message: str = ""
    error: str | None = None      # why the shared memory could not be read at all

    def to_json(self) -> dict:
        p50, p99 = self.latency_ms.p(50), self.latency_ms.p(99)
        if p50 is not None and not -1.0 <= p50 <= SAME_CLOCK_MAX_MS:
            p50 = p99 = None   # the pattern's capture time is a VM guest's clock, not ours: no latency
        return {
            "frames": self.frames, "ups": round(self.ups, 2), "pattern_errors": self.pattern_errors,
            "pattern_frames": self.pattern_frames, "serial_gaps": self.serial_gaps,
            "cursor_updates": self.cursor_updates, "cursor_shapes": self.cursor_shapes,
            "session_restarts": self.session_restarts, "host": self.host, "protocol": self.protocol,
            "format": self.format,
            "width": self.width, "height": self.height, "data_errors": self.data_errors,
            "capture_to_copied_ms_p50": p50, "capture_to_copied_ms_p99": p99,
            "copy_ms_p50": self.copy_ms.p(50), "copy_ms_p99": self.copy_ms.p(99),
            "truncated_frames": self.truncated_frames,
            "state": self.state, "elapsed_s": round(self.elapsed_s, 3), "error": self.error,
        }


def _cursor_loop(session: session_mod.Session, result: ReaderResult, stop: threading.Event) -> None:
    while not stop.is_set():
        event = session.next_cursor(timeout=0.05)
        if event is not None:
            result.cursor_updates += 1
            result.cursor_shapes += event.shape is not None


PROGRESS_EVERY_S = 1.0


@dataclass
class NewFrames:
    """The frames read since the last progress line: how many, and when the first and the last were copied
    (CLOCK_MONOTONIC ns, the clock the agent stamps captures with)."""
    count: int = 0
    first_ns: int | None = None
    last_ns: int | None = None

    def add(self, t_ns: int) -> None:
        self.count += 1
        self.first_ns = t_ns if self.first_ns is None else self.first_ns
        self.last_ns = t_ns


def progress_line(result: ReaderResult, session: session_mod.Session, last_serial: int | None,
                  elapsed_s: float, new: NewFrames) -> dict:
    """What ``--progress`` prints once a second: the counts so far and the session's state. ``state`` is
    the session state's name (``connected``, ``waiting``, ``lost``, ``incompatible``), ``status`` the
    sentence the final JSON's ``state`` holds, ``data_errors`` the session's error counts by kind.
    ``new_frames``, ``new_first_ns``, ``new_last_ns``: the frames since the previous line and when the
    first and last of them were copied (CLOCK_MONOTONIC ns; null without any), so that a watcher knows the
    exact length of any wait between frames that spans a line."""
    return {
        "progress": True, "t_s": round(elapsed_s, 3), "frames": result.frames, "last_serial": last_serial,
        "state": session.state.name.lower(), "status": session.status_message,
        "session_restarts": session.session_restarts, "data_errors": session.errors_by_kind(),
        "pattern_errors": result.pattern_errors, "truncated_frames": result.truncated_frames,
        "cursor_updates": result.cursor_updates,
        "new_frames": new.count, "new_first_ns": new.first_ns, "new_last_ns": new.last_ns,
    }


def read_frames(path: str, frames: int, timeout: float = 60.0, verify: bool = True,
                stop: threading.Event | None = None, mapped: Callable[[], None] | None = None,
                progress: Callable[[dict], None] | None = None) -> ReaderResult:
    """Read ``frames`` frames from ``path`` (or until ``timeout`` seconds pass, or ``stop`` is set).
    ``mapped`` is called once, when the file is first mapped (at once when it is there; later when it
    appears or grows big enough). ``progress`` is called with a :func:`progress_line` about once a second,
    from this loop.

    A file that cannot be used at all (a directory, a FIFO, not a kvmfr device...) is no exception here:
    ``result.error`` says why, in the user's words; the refused value goes to the debug log."""
    result = ReaderResult()
    try:
        session = session_mod.open(path)
    except errors.KvmfrError as exc:
        log.debug("cannot use %s: %s (field %s, value %s, limit %s, code %s)", path, exc.message, exc.field,
                  exc.value, exc.limit, exc.code)
        result.error = str(exc)
        result.state = "cannot use the shared memory"
        return result
    stop = stop or threading.Event()
    cursor_stop = threading.Event()
    cursor_thread = threading.Thread(target=_cursor_loop, args=(session, result, cursor_stop), name="cursor",
                                     daemon=True)
    cursor_thread.start()
    patterns: dict[tuple, Pattern] = {}
    out = None
    first_t = last_t = None
    last_serial = None
    t_start = time.monotonic()
    deadline = t_start + timeout
    next_progress = t_start + PROGRESS_EVERY_S
    new = NewFrames()
    try:
        while result.frames < frames and time.monotonic() < deadline and not stop.is_set():
            if progress is not None and time.monotonic() >= next_progress:
                now = time.monotonic()
                next_progress = max(next_progress + PROGRESS_EVERY_S, now)   # no burst after a long wait
                progress(progress_line(result, session, last_serial, now - t_start, new))
                new = NewFrames()
            try:
                frame = session.next_frame(timeout=0.1, out=out, allow_damage=True)
            except ValueError:   # the frame grew past our buffer: that one is dropped, start a new buffer
                out = None
                continue
            if mapped is not None and session.shm_size:   # the session maps the file when it can
                mapped()
                mapped = None
            if frame is None:
                continue
            if out is None:
                out = frame.pixels   # the fresh buffer the session copied into; damage lands in it from now on
            now = time.monotonic()
            first_t = first_t or now
            last_t = now
            result.frames += 1
            new.add(frame.t_copy_end_ns)
            if last_serial is not None and frame.serial != last_serial + 1:
                result.serial_gaps += 1
            last_serial = frame.serial
            result.format, result.width, result.height = frame.type.name, frame.width, frame.height
            result.copy_ms.add((frame.t_copy_end_ns - frame.t_copy_start_ns) / 1e6)
            if frame.truncated or frame.data_height < frame.height:
                _truncated(frame, session, result)
            elif verify:
                _verify(frame, patterns, result)
    finally:
        cursor_stop.set()
        cursor_thread.join(1.0)
        result.session_restarts = session.session_restarts
        result.data_errors = session.errors_by_kind()
        result.state = session.status_message
        if session.host is not None:
            result.host = {"version": session.host.hostver, "capture": session.host.capture,
                           "os": session.host.os_name, "session_id": session.host.session_id}
            result.protocol = session.host.protocol
        session.close()
    if first_t is not None and last_t is not None and result.frames > 1:
        result.ups = (result.frames - 1) / max(last_t - first_t, 1e-9)
        result.elapsed_s = last_t - first_t
    return result


def _truncated(frame, session: session_mod.Session, result: ReaderResult) -> None:
    """A frame bigger than the shared memory arrives cut short (the host's TRUNCATED flag): counted, not
    verified, and said once in the user's words (the size the file needs)."""
    result.truncated_frames += 1
    if result.truncated_message:
        return
    need = session_mod.recommended_shm_size_for(frame.width, frame.height, frame.type)
    have = session.shm_size
    result.truncated_message = (
        f"the host's {frame.width}x{frame.height} frames do not fit in {session.path} ({have >> 20} MiB) and "
        f"arrive cut short: make it {need >> 20} MiB (the recommended size for that frame), or lower the "
        "guest's resolution")
    log.info("%s", result.truncated_message)   # the one stderr line at the end says it
    log.debug("frame %d: %d of %d rows (flags %s)", frame.serial, frame.data_height, frame.height, frame.flags)


def _verify(frame, patterns: dict, result: ReaderResult) -> None:
    code = read_stored_code(frame.pixels, frame.type, frame.width)
    if code is None:
        return   # not the agent's pattern (a real guest): nothing to verify
    kind, serial, t_us = code
    result.pattern_frames += 1
    result.latency_ms.add((frame.t_copy_end_ns // 1000 - t_us) / 1000.0)
    key = (frame.width, frame.height, frame.type, kind)
    try:
        if key not in patterns:
            patterns[key] = Pattern(frame.width, frame.height, FrameType(frame.type), PatternKind(kind))
        bad = patterns[key].verify(frame.pixels, serial)
    except ValueError as exc:   # a barcode on a frame the pattern cannot have (too small, cut short)
        result.pattern_errors += 1
        log.warning("frame %d: %s", frame.serial, exc)
        return
    if serial != frame.serial or bad:
        result.pattern_errors += 1
        log.warning("frame %d: pattern mismatch (code serial %d, bad rows %s)", frame.serial, serial, bad[:5])


def main_headless(path: str, frames: int, as_json: bool, timeout: float,
                  mapped: Callable[[], None] | None = None, progress: bool = False) -> int:
    """Read, print the results (JSON or a table) and one stderr line when something went wrong; returns
    the exit status (kvmfr_client.config.exits). ``mapped``: see :func:`read_frames`; ``progress``: one
    JSON line a second on stdout while reading (``--progress``)."""
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int) -> None:
        signals.append(signum)
        stop.set()

    def print_progress(line: dict) -> None:
        print(json.dumps(line), flush=True)

    with exits.on_stop_signals(on_signal):
        result = read_frames(path, frames, timeout, stop=stop, mapped=mapped,
                             progress=print_progress if progress else None)
    data = result.to_json()
    error, status = _outcome(result, frames, timeout, signals)
    data["error"] = error
    if signals:
        data["stopped_by"] = exits.signal_name(signals[0])
    if as_json:
        print(json.dumps(data), flush=True)
    elif result.error is None:
        for key, value in data.items():
            print(f"{key:>26}: {value}")
    if error is not None:
        print(f"kvmfr-view: {error}", file=sys.stderr)
    return status


def _outcome(result: ReaderResult, frames: int, timeout: float, signals: list[int]) -> tuple[str | None, int]:
    """(the one line that says what went wrong or None, the exit status)."""
    if result.error is not None:
        return result.error, exits.SHM
    if signals:
        return (f"stopped by {exits.signal_name(signals[0])} after {result.frames} of {frames} frames",
                exits.signal_exit(signals[0]))
    if result.frames < frames:
        return (f"only {result.frames} of {frames} frames arrived in {timeout:g} s ({result.state})",
                exits.FAILED)
    if result.truncated_frames:
        return result.truncated_message, exits.FAILED
    if result.pattern_errors:
        return (f"{result.pattern_errors} of {result.frames} frames did not match the agent's test pattern "
                "(-v logs which rows)", exits.FAILED)
    return None, exits.OK
