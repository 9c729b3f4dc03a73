"""The benchmark's report: one dict (written as JSON with every sample), a plain table, and a PNG.

The PNG is drawn with numpy and written with zlib + struct (a PNG is a few chunks around a deflated
buffer), with the viewer's own 5x7 bitmap font for labels: a plot of bars and columns needs no
plotting library, and the viewer keeps its short dependency list.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from . import stages

NOTES = {
    "clock": "every time is CLOCK_MONOTONIC of this machine: the agent writes it into the frame's barcode "
             "(microseconds), the viewer and the probes read the same clock. With --shm and a producer in a "
             "real VM the guest's clock is another clock: capture-based figures are then left out (host_ms "
             "stays).",
    "e2e_ms": "capture -> on_screen: from the capture time in the barcode to the reply of the first X "
              "GetImage of the window that showed this frame's barcode. Includes the agent writing the frame, "
              "the LGMP post, the viewer's wait, copy, upload, draw and swap, the X server putting the image "
              "in the window, and up to one probe poll (see probe.poll_ms_p50 and the poll interval).",
    "host_ms": "seen -> on_screen: the host side alone (from the viewer's reader seeing the post).",
    "stages_ms": "consecutive points of the frame path: capture, post (agent called begin_frame: as in B7 "
                 "the frame is queued first and its rows written after, the reader copying behind the write "
                 "pointer, so the agent's write overlaps the copy; agent_write_ms is post -> last row), seen "
                 "(reader saw the post), copy_start, copy_end (copy out of shared memory), upload_end "
                 "(glTexSubImage2D returned), draw_end (draw calls returned; llvmpipe rasterises during the "
                 "swap), swap_end (glfw swap_buffers returned), on_screen (probe). They add up to e2e_ms "
                 "frame by frame.",
    "host_stages_ms": "the host's own stage durations as a KVMFR 34 host (Looking Glass master) writes them into "
                      "each frame: capture, post_process, copy, ready, hold, ready_lead, by the host's clock and its "
                      "own idea of each stage (ns, shown in ms), for the frames the viewer showed; p50/p95/max. "
                      "null when the host gives none (B7: host_stages_note says so).",
    "frames": "produced: frames the agent captured in the measured interval; shown: of those, frames the "
              "viewer swapped to the window; on_screen: frames the probe read back from the window (a frame "
              "replaced within one poll can be missed); dropped = produced - shown (skipped in the ring "
              "because the viewer was busy, or replaced before a swap).",
    "cpu_ms_per_frame": "CPU (user + system, all threads, /proc) over the measured interval, per produced "
                        "frame (agent) or per shown frame (viewer); the probe's per poll and per frame.",
    "memcpy_ms": "numpy copy of one frame's bytes (W*H*4) between two buffers, 30 times spread over the "
                 "measured interval, in the benchmark's own process: the floor a copy of the frame costs "
                 "under the same load.",
}


def _plausible_clock(records: list[dict]) -> bool:
    """True when capture times look like this machine's clock (capture -> seen within 0..5 s)."""
    d = [(r["seen"] - r["capture"]) / 1e9 for r in records if r.get("seen") and r.get("capture")]
    return bool(d) and 0 <= float(np.median(d)) < 5


def build_report(config: dict, t_start: int, t_end: int, posts, viewer_timings, viewer_stats, our_window,
                 window_names: dict, probes: dict, cpu: dict, memcpy_ms: list[float], frame_bytes: int) -> dict:
    def inside(t_ns):
        return t_ns is not None and t_start <= t_ns < t_end

    post_map = {f[0]: f[2] for f in posts} if posts else None
    produced = sum(1 for f in posts if inside(f[1] * 1000)) if posts else None
    written = [(f[3] - f[2]) / 1e6 for f in posts if inside(f[1] * 1000)] if posts else []
    viewers = []
    samples = {}
    trusted = True
    if our_window is not None:
        probe = probes[our_window]
        window_names = window_names | {our_window: probe.get("window", our_window)}
        sight = {s[0]: (s[1], s[2], s[3]) for s in probe["sightings"]}
        records = stages.join(viewer_timings, sight, post_map)
        trusted = config["private_agent"] or _plausible_clock(records)
        if trusted:
            records = [r for r in records if inside(r["capture"])]
        else:
            records = [r for r in records if inside(r["seen"])]
            for r in records:
                r["capture"] = None
        n_prod = produced
        if n_prod is None and records:
            n_prod = records[-1]["serial"] - records[0]["serial"] + 1
        shown = len(records)
        on_screen = sum(1 for r in records if r["on_screen"] is not None)
        e2e = [(r["on_screen"] - r["capture"]) / 1e6 for r in records if r["on_screen"] and r["capture"]]
        host = [(r["on_screen"] - r["seen"]) / 1e6 for r in records if r["on_screen"] and r["seen"]]
        chain = [(r["swap_end"] - r["capture"]) / 1e6 for r in records if r["capture"]]
        per = stages.stage_samples(records)
        host_stages = stages.summarize_host(records)
        protocol = (viewer_stats or {}).get("protocol") or {}
        viewers.append({
            "name": "kvmfr-view", "window": window_names.get(our_window, our_window),
            "e2e_ms": stages.summarize(e2e), "host_ms": stages.summarize(host),
            "capture_to_swap_ms": stages.summarize(chain),
            "stages_ms": {k: stages.summarize(v) for k, v in per.items()},
            "agent_write_ms": stages.summarize(written),
            "protocol": protocol or None,
            "host_stages_ms": host_stages,
            "host_stages_note": None if host_stages else
            f"not given by this host ({protocol.get('name', 'B7')})",
            "on_screen_before_swap_end": sum(1 for r in records if r["on_screen"] and r["on_screen"] < r["swap_end"]),
            "frames": {"produced": n_prod, "shown": shown, "on_screen": on_screen,
                       "dropped": None if n_prod is None else n_prod - shown,
                       "shown_pct": round(100.0 * shown / n_prod, 2) if n_prod else None},
            "cpu_ms_per_frame": {
                "viewer": round(1000 * cpu["viewer"] / shown, 3) if cpu.get("viewer") is not None and shown else None,
                "agent": round(1000 * cpu["agent"] / produced, 3) if cpu.get("agent") is not None and produced else None,
                "probe": round(1000 * probe["cpu_s"] / max(on_screen, 1), 3)},
            "cpu_s": {"viewer": cpu.get("viewer"), "agent": cpu.get("agent"), "probe": probe["cpu_s"]},
            "probe": {k: probe[k] for k in ("polls", "undecoded", "errors", "poll_ms_p50", "placement")},
            "viewer_stats_whole_run": viewer_stats,
        })
        samples["kvmfr-view"] = records
    for win, probe in probes.items():
        if win == our_window:
            continue
        window_names = window_names | {win: probe.get("window", win)}
        sights = [s for s in probe["sightings"] if (inside(s[1] * 1000) if trusted else inside(s[3]))]
        e2e = [(s[3] - s[1] * 1000) / 1e6 for s in sights] if trusted else []
        n_prod = produced if produced is not None else (
            sights[-1][0] - sights[0][0] + 1 if sights else None)
        viewers.append({
            "name": window_names.get(win, win), "window": window_names.get(win, win),
            "e2e_ms": stages.summarize(e2e),
            "frames": {"produced": n_prod, "on_screen": len(sights),
                       "on_screen_pct": round(100.0 * len(sights) / n_prod, 2) if n_prod else None},
            "cpu_s": {"probe": probe["cpu_s"]},
            "probe": {k: probe[k] for k in ("polls", "undecoded", "errors", "poll_ms_p50", "placement")},
        })
        samples[window_names.get(win, win)] = [
            {"serial": s[0], "capture": s[1] * 1000 if trusted else None, "on_screen_after": s[2], "on_screen": s[3]}
            for s in sights]
    return {
        "config": config, "clock_trusted": trusted,
        "interval_ns": [t_start, t_end],
        "frame_bytes": frame_bytes,
        "memcpy_ms": stages.summarize(memcpy_ms) | {"min": round(min(memcpy_ms), 3) if memcpy_ms else None},
        "viewers": viewers,
        "notes": NOTES,
        "samples": samples,
    }


# ---- table ----------------------------------------------------------------------------------

def _f(v) -> str:
    return "-" if v is None else f"{v:8.2f}"


def format_table(report: dict) -> str:
    c = report["config"]
    w, h = c["size"]
    lines = [f"kvmfr-view --benchmark: {w}x{h} at {c['fps']:g} fps, {c['duration_s']:g} s measured "
             f"(after {c['warmup_s']:g} s warm-up), display {c['display']}, {c['cores']} cores, "
             f"load {c['loadavg_start'][0]:.1f} -> {c['loadavg_end'][0]:.1f}",
             f"memcpy of one frame ({report['frame_bytes'] / 1e6:.1f} MB): p50 {report['memcpy_ms']['p50']} ms, "
             f"min {report['memcpy_ms']['min']} ms"]
    if not report["clock_trusted"]:
        lines.append("the producer's clock is not this machine's: capture-based figures are left out")
    head = f"  {'':32}{'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}   (ms)  n"
    for v in report["viewers"]:
        lines += ["", f"{v['name']}  [window {v['window']!r}]", head]
        rows = list(v.get("stages_ms", {}).items())
        if rows:
            rows.append(("capture->swap_end (our timers)", v["capture_to_swap_ms"]))
            rows.append(("seen->on_screen (host side)", v["host_ms"]))
        rows.append(("END TO END capture->on_screen", v["e2e_ms"]))
        for name, s in rows:
            lines.append(f"  {name:32}{_f(s['p50'])} {_f(s['p90'])} {_f(s['p99'])} {_f(s['max'])}   {s['n']:6d}")
        if "host_stages_ms" in v:
            if v["host_stages_ms"]:
                head = "host stages (the host's own timers)"
                lines.append(f"  {head:36}{'p50':>8} {'p95':>8} {'max':>8}   (ms)  n")
                for name, s in v["host_stages_ms"].items():
                    lines.append(f"    {name:34}{_f(s['p50'])} {_f(s['p95'])} {_f(s['max'])}   {s['n']:6d}")
            else:
                lines.append(f"  host stages: {v['host_stages_note']}")
        fr = v["frames"]
        if "shown" in fr:
            lines.append(f"  frames: produced {fr['produced']}, shown {fr['shown']} ({fr['shown_pct']} %), "
                         f"read back on screen {fr['on_screen']}, dropped {fr['dropped']}")
            vs = v.get("viewer_stats_whole_run") or {}
            if vs:
                lines.append(f"  viewer, whole run: received {vs.get('frames_received')}, shown {vs.get('frames_shown')}, "
                             f"superseded before a swap {vs.get('superseded')}, skipped in the ring {vs.get('dropped')}")
            cpf = v["cpu_ms_per_frame"]
            lines.append(f"  CPU per frame: viewer {cpf['viewer']} ms, agent {cpf['agent']} ms, "
                         f"probe {cpf['probe']} ms (probe poll p50 {v['probe']['poll_ms_p50']} ms)")
        else:
            lines.append(f"  frames: produced {fr['produced']}, read back on screen {fr['on_screen']} "
                         f"({fr['on_screen_pct']} %); probe CPU {v['cpu_s']['probe']} s, "
                         f"poll p50 {v['probe']['poll_ms_p50']} ms")
    lines += ["", "e2e: capture time in the frame's barcode -> first X GetImage of the window showing it "
              "(same CLOCK_MONOTONIC); see docs/latency.md"]
    return "\n".join(lines)


# ---- PNG --------------------------------------------------------------------------------------

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def png_bytes(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes (8-bit RGB, filter 0 on every row)."""
    h, w, _ = rgb.shape
    raw = np.zeros((h, w * 3 + 1), np.uint8)
    raw[:, 1:] = rgb.reshape(h, w * 3)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))


class Canvas:
    def __init__(self, w: int, h: int):
        self.img = np.full((h, w, 3), 255, np.uint8)

    def rect(self, x0, y0, x1, y1, color) -> None:
        h, w = self.img.shape[:2]
        x0, x1 = sorted((int(round(x0)), int(round(x1))))
        y0, y1 = sorted((int(round(y0)), int(round(y1))))
        self.img[max(y0, 0):min(max(y1, y0 + 1), h), max(x0, 0):min(max(x1, x0 + 1), w)] = color

    def text(self, x, y, s: str, color=(0, 0, 0), scale: int = 2) -> None:
        from kvmfr_client.viewer import font
        ink = font.render([s], scale=scale, pad=0)[..., 3] == 255
        h, w = self.img.shape[:2]
        x, y = int(x), int(y)
        ih, iw = ink.shape
        ink = ink[: max(0, h - y), : max(0, w - x)]
        self.img[y:y + ink.shape[0], x:x + ink.shape[1]][ink] = color

    def text_width(self, s: str, scale: int = 2) -> int:
        return len(s) * 6 * scale


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = span / ticks if span > 0 else 1.0
    mag = 10 ** np.floor(np.log10(raw))
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


def _axes(cv: Canvas, x0, y0, x1, y1, xmax, ymax, xlabel, ylabel, title) -> None:
    cv.rect(x0, y1, x1, y1 + 1, (0, 0, 0))
    cv.rect(x0 - 1, y0, x0, y1, (0, 0, 0))
    step = _nice_step(xmax)
    for i in range(int(xmax / step) + 1):
        x = x0 + (x1 - x0) * (i * step) / xmax
        cv.rect(x, y1, x + 1, y1 + 6, (0, 0, 0))
        label = f"{i * step:g}"
        cv.text(x - cv.text_width(label) / 2, y1 + 10, label)
    step = _nice_step(ymax, 5)
    for i in range(int(ymax / step) + 1):
        y = y1 - (y1 - y0) * (i * step) / ymax
        cv.rect(x0 - 6, y, x0, y + 1, (0, 0, 0))
        cv.rect(x0, y, x1, y + 1, (225, 225, 225))
        label = f"{i * step:g}"
        cv.text(x0 - 10 - cv.text_width(label), y - 7, label)
    cv.text((x0 + x1) / 2 - cv.text_width(xlabel) / 2, y1 + 32, xlabel)
    cv.text(x0 - 60, y0 - 40, ylabel)
    cv.text(x0, y0 - 70, title, scale=3)


def render_plot(report: dict, width: int = 1400) -> np.ndarray:
    """Top: histogram of end-to-end latency per window. Bottom: every frame's stages as a stacked column."""
    height = 980
    cv = Canvas(width, height)
    x0, x1 = 110, width - 330
    # --- histogram
    series = [(v["name"], [s for s in _e2e_samples(report, v)]) for v in report["viewers"]]
    series = [(n, s) for n, s in series if s]
    y0, y1 = 100, 400
    if series:
        allv = np.concatenate([np.asarray(s) for _, s in series])
        xmax = float(np.percentile(allv, 99.5)) * 1.1 or 1.0
        bins = np.linspace(0, xmax, 61)
        counts = [np.histogram(np.clip(s, 0, xmax), bins)[0] for _, s in series]
        ymax = max(int(c.max()) for c in counts) * 1.1 or 1
        _axes(cv, x0, y0, x1, y1, xmax, ymax, "END-TO-END LATENCY (MS)", "FRAMES",
              "CAPTURE -> ON SCREEN, READ BACK FROM THE WINDOW")
        bw = (x1 - x0) / 60 / len(series)
        for k, ((name, s), c) in enumerate(zip(series, counts)):
            color = COLORS[k % len(COLORS)]
            for i, n in enumerate(c):
                if n:
                    bx = x0 + (x1 - x0) * i / 60 + k * bw
                    cv.rect(bx, y1 - (y1 - y0) * n / ymax, bx + max(bw - 1, 1), y1, color)
            p50, p99 = float(np.median(s)), float(np.percentile(s, 99))
            for q, label in ((p50, "P50"), (p99, "P99")):
                qx = x0 + (x1 - x0) * min(q, xmax) / xmax
                cv.rect(qx, y0, qx + 2, y1, color)
                cv.text(qx + 5, y0 + 20 * k, label, color)
            cv.rect(x1 + 30, y0 + 50 * k, x1 + 50, y0 + 50 * k + 20, color)
            cv.text(x1 + 60, y0 + 50 * k + 3, name[:22])
            cv.text(x1 + 60, y0 + 50 * k + 25, f"P50 {p50:.1f}  P99 {p99:.1f} MS")
    # --- timeline of our stages
    ours = report["samples"].get("kvmfr-view")
    y0, y1 = 580, 900
    if ours:
        t0 = report["interval_ns"][0]
        pts = [p for p in stages.POINTS if any(r.get(p) is not None for r in ours)]
        base = pts[0]
        tops = [sum((r[b] - r[a]) / 1e6 for a, b in zip(pts, pts[1:]) if r.get(a) and r.get(b)) for r in ours]
        ymax = float(np.percentile(tops, 99)) * 1.15 or 1.0
        dur = (report["interval_ns"][1] - t0) / 1e9
        _axes(cv, x0, y0, x1, y1, dur, ymax, "CAPTURE TIME IN THE MEASURED INTERVAL (S)", "MS SINCE " + base.upper(),
              "STAGES OF EACH FRAME (KVMFR-VIEW)")
        colw = max(1.0, (x1 - x0) / max(len(ours), 1))
        for r in ours:
            if r.get(base) is None:
                continue
            x = x0 + (x1 - x0) * ((r[base] - t0) / 1e9) / dur
            acc = 0.0
            for k, (a, b) in enumerate(zip(pts, pts[1:])):
                if r.get(a) is None or r.get(b) is None:
                    continue
                d = (r[b] - r[a]) / 1e6
                ya, yb = y1 - (y1 - y0) * min(acc, ymax) / ymax, y1 - (y1 - y0) * min(acc + d, ymax) / ymax
                cv.rect(x, yb, x + colw, ya, COLORS[k % len(COLORS)])
                acc += d
        for k, (a, b) in enumerate(zip(pts, pts[1:])):
            cv.rect(x1 + 30, y0 + 30 * k, x1 + 50, y0 + 30 * k + 20, COLORS[k % len(COLORS)])
            cv.text(x1 + 60, y0 + 30 * k + 3, f"{a}->{b}".replace("_", " "), scale=2)
    return cv.img


def _e2e_samples(report: dict, viewer: dict) -> list[float]:
    key = "kvmfr-view" if viewer["name"] == "kvmfr-view" else viewer["name"]
    out = []
    for r in report["samples"].get(key, []):
        if r.get("on_screen") and r.get("capture"):
            out.append((r["on_screen"] - r["capture"]) / 1e6)
    return out


def write_plot(report: dict, path: str) -> None:
    with open(path, "wb") as f:
        f.write(png_bytes(render_plot(report)))
