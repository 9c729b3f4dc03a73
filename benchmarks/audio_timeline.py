"""What the benchmark's send -> sink figures are made of: ``benchmarks/audio.py --save-recording`` keeps the
last run's recorder reads and markers; this places each marker on three timelines of the sink's monitor.

    .venv/bin/python benchmarks/audio_timeline.py benchmarks/out

* ``recorder``: the benchmark's own (``Recorder.time_of_frame``): each read's time less pa_simple's latency.
  A monitor's latency is negative (its sink renders ahead of playing) and pa_simple reports a negative
  latency as 0, so where it is clamped this is the time the recorder's thread returned from its read.
* ``earliest readable``: the lowest (read time - frames read / rate) within ~1 s of reads: the moment the
  sink rendered a block (it reaches the monitor then) when the recorder woke at once. A frame inside a
  block was mixed with the block, so this reads it early by up to one render block.
* ``unclamped reads``: only the reads where pa_simple's latency was above 0, i.e. not clamped: the
  play-out time by the sink's clock, which includes what the device holds.
"""
import json
import sys
from pathlib import Path

import numpy as np

RATE = 48000
WINDOW = 200  # reads, ~1 s at the recorder's 5 ms blocks


def timelines(reads: np.ndarray, markers: dict) -> dict[str, np.ndarray]:
    frames, t_read, lat = reads.T
    raw = t_read - frames / RATE
    unclamped = lat > 0
    out = {"recorder": [], "earliest readable": [], "unclamped reads": []}
    for t_send, idx in zip(markers["sent"], markers["found"]):
        if idx is None:
            continue
        k = min(int(np.searchsorted(frames, idx + 1)), len(frames) - 1)
        lo, hi = max(0, k - 20), min(len(frames), k + 20)   # as time_of_frame
        out["recorder"].append(np.median(raw[lo:hi] - lat[lo:hi]) + idx / RATE - t_send)
        lo, hi = max(0, k - WINDOW), min(len(frames), k + WINDOW)
        out["earliest readable"].append(raw[lo:hi].min() + idx / RATE - t_send)
        sel = unclamped[lo:hi]
        out["unclamped reads"].append(np.median((raw[lo:hi] - lat[lo:hi])[sel]) + idx / RATE - t_send
                                      if sel.any() else np.nan)
    return {name: np.array(v) * 1000 for name, v in out.items()}


def main(out: Path) -> int:
    if not any((out / f"audio-reads-{kind}.npy").exists() for kind in ("ours", "baseline")):
        print(f"audio_timeline: no audio-reads-*.npy in {out}: run benchmarks/audio.py --save-recording first",
              file=sys.stderr)
        return 2
    for kind in ("ours", "baseline"):
        path = out / f"audio-reads-{kind}.npy"
        if not path.exists():
            continue
        reads = np.load(path)
        clamped = np.mean(reads[:, 2] <= 0) * 100
        print(f"{kind}: {len(reads)} reads, pa_simple's latency clamped to 0 in {clamped:.1f} %, "
              f"read interval median {np.median(np.diff(reads[:, 1])) * 1000:.2f} ms")
        for name, ms in timelines(reads, json.loads((out / f"audio-markers-{kind}.json").read_text())).items():
            print(f"  {name:18s} median {np.nanmedian(ms):6.2f}  p99 {np.nanpercentile(ms, 99):6.2f}  "
                  f"first markers {np.round(ms[:5], 2).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out")))
