"""Per-frame stage timestamps and their statistics.

A frame's path, each point a CLOCK_MONOTONIC time:

    capture    the agent's capture time, written into the frame's barcode (microseconds)
    post       the agent posted the frame (begin_frame: queued before its rows are written; our agent only)
    seen       the viewer's reader saw the frame posted in the LGMP queue (Frame.t_seen_ns)
    copy_start / copy_end   the copy out of shared memory (Frame.t_copy_start_ns / t_copy_end_ns)
    upload_end the texture upload returned (glTexSubImage2D; synchronous on llvmpipe)
    draw_end   the draw calls returned (GL commands queued; a software renderer rasterises at the swap)
    swap_end   the buffer swap returned
    on_screen  the probe first read the frame's barcode back from the window (X GetImage)

The viewer records the first seven for each frame it shows (:class:`kvmfr_client.viewer.stats.TimingRecorder`, written with
``kvmfr-view --timings-json FILE``); the probe adds ``on_screen``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from kvmfr_client.core.session import HostTimings

POINTS = ("capture", "post", "seen", "copy_start", "copy_end", "upload_end", "draw_end", "swap_end", "on_screen")
STAGES = tuple(f"{a}->{b}" for a, b in zip(POINTS, POINTS[1:]))
VIEWER_POINTS = POINTS[POINTS.index("seen"):POINTS.index("swap_end") + 1]
# The host's own stage durations (KVMFR 34 frames carry them; the viewer writes host_<stage>_ns, -1 when not
# given). They are the host's clock and the host's idea of a stage, so they stand beside the path, not in it.
HOST_STAGES = HostTimings.STAGES


def read_viewer_timings(path: str | os.PathLike) -> dict[int, dict[str, int]]:
    """serial -> {point: ns} from a ``--timings-json`` file."""
    data = json.loads(Path(path).read_text())
    fields = data["fields"]
    out = {}
    for row in data["frames"]:
        r = dict(zip(fields, row))
        out[r["serial"]] = r
    return out


def join(viewer: dict[int, dict[str, int]], sightings: dict[int, tuple[int, int, int]] | None,
         posts: dict[int, int] | None = None) -> list[dict[str, int | None]]:
    """One record per frame the viewer showed: serial and every point in ns (``None`` when unknown).

    ``sightings``: serial -> (t_capture_us, t_before_ns, t_seen_ns) from the probe; ``posts``:
    serial -> post time (ns) from the agent's log.
    """
    out = []
    for serial in sorted(viewer):
        r = viewer[serial]
        cap_us = r["t_capture_us"]
        rec: dict[str, int | None] = {"serial": serial,
                                      "capture": cap_us * 1000 if cap_us is not None and cap_us >= 0 else None,
                                      "post": (posts or {}).get(serial),
                                      "seen": r["t_seen_ns"] or None, "copy_start": r["t_copy_start_ns"] or None,
                                      "copy_end": r["t_copy_end_ns"] or None, "upload_end": r["t_upload_end_ns"],
                                      "draw_end": r["t_draw_end_ns"], "swap_end": r["t_swap_end_ns"],
                                      "on_screen": None, "on_screen_after": None, "host_ms": host_ms(r)}
        s = (sightings or {}).get(serial)
        if s is not None:
            if rec["capture"] is None:
                rec["capture"] = s[0] * 1000
            rec["on_screen_after"], rec["on_screen"] = s[1], s[2]
        out.append(rec)
    return out


def host_ms(row: dict) -> dict[str, float] | None:
    """The host's stage durations of one viewer row, in ms; None when the host gave none (B7)."""
    values = [row.get(f"host_{name}_ns", -1) for name in HOST_STAGES]
    if any(v is None or v < 0 for v in values):
        return None
    return {name: v / 1e6 for name, v in zip(HOST_STAGES, values)}


def summarize_host(records: list[dict]) -> dict[str, dict] | None:
    """p50 / p95 / max (ms) and n per host stage over the records that carry them; None when none does."""
    rows = [r["host_ms"] for r in records if r.get("host_ms")]
    if not rows:
        return None
    out = {}
    for name in HOST_STAGES:
        v = np.asarray([row[name] for row in rows], dtype=float)
        out[name] = {"n": int(v.size), "p50": round(float(np.median(v)), 3),
                     "p95": round(float(np.percentile(v, 95)), 3), "max": round(float(v.max()), 3)}
    return out


def summarize(values_ms) -> dict[str, float | int | None]:
    """n, median, p90, p99, max, mean of a list of milliseconds."""
    v = np.asarray([x for x in values_ms if x is not None], dtype=float)
    if v.size == 0:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {"n": int(v.size), "p50": round(float(np.median(v)), 3), "p90": round(float(np.percentile(v, 90)), 3),
            "p99": round(float(np.percentile(v, 99)), 3), "max": round(float(v.max()), 3),
            "mean": round(float(v.mean()), 3)}


def stage_samples(records: list[dict], points: tuple[str, ...] = POINTS) -> dict[str, list[float]]:
    """Per stage, the milliseconds of each record that has both ends, in path order.

    A point missing from every record (``post`` with a real guest) merges its two stages into one
    (``capture->seen``); a point missing from one record only leaves that record out of its stages.
    """
    present = [p for p in points if any(rec.get(p) is not None for rec in records)]
    out: dict[str, list[float]] = {f"{a}->{b}": [] for a, b in zip(present, present[1:])}
    for rec in records:
        for a, b in zip(present, present[1:]):
            ta, tb = rec.get(a), rec.get(b)
            if ta is not None and tb is not None:
                out[f"{a}->{b}"].append((tb - ta) / 1e6)
    return out
