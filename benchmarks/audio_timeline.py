"""What the benchmark's send -> sink figures are made of: ``benchmarks/audio.py --save-recording`` keeps the
last run's recorder timing updates, the recording's arrivals and the markers; this places each marker on
four timelines of the sink's monitor.

    .venv/bin/python benchmarks/audio_timeline.py benchmarks/out

* ``sink mixing``: the benchmark's own (``Recorder.time_of_frame``, ``tests.support.pulse.sink_timeline``):
  the play-out time by the server's timing updates, less the sink's mean share (what the player counts).
* ``play-out``: the same updates' play-out time, the sink's share not taken off.
* ``earliest readable``: from when each chunk reached the recorder's process: the lowest (arrival -
  frames through the chunk / rate) within ~1 s of chunks, the moment the sink rendered a block (it reaches
  the monitor then) when the process got it at once. A frame inside a block was mixed with the block, so
  this reads it early by up to one render block: half a block on average.
* ``arrival``: the median of the same, i.e. when the recording reached this process (what the pa_simple
  recorder before measured, less its latency that was mostly clamped to 0).
"""
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.pulse import sink_timeline  # noqa: E402

RATE = 48000
WINDOW = 200  # chunks, ~1 s at the recorder's 5 ms blocks


def timelines(timings: np.ndarray, arrivals: np.ndarray, markers: dict) -> dict[str, np.ndarray]:
    frames, arrived = arrivals.T
    raw = arrived - frames / RATE
    pairs = [(t, i) for t, i in zip(markers["sent"], markers["found"]) if i is not None]
    sent = np.array([t for t, _ in pairs])
    idx = np.array([i for _, i in pairs])
    out = {"sink mixing": sink_timeline(timings, RATE, idx) - sent,
           "play-out": sink_timeline(timings, RATE, idx, play_out=True) - sent,
           "earliest readable": [], "arrival": []}
    for t_send, i in pairs:
        k = min(int(np.searchsorted(frames, i + 1)), len(frames) - 1)
        lo, hi = max(0, k - WINDOW), min(len(frames), k + WINDOW)
        out["earliest readable"].append(raw[lo:hi].min() + i / RATE - t_send)
        out["arrival"].append(np.median(raw[lo:hi]) + i / RATE - t_send)
    return {name: np.array(v) * 1000 for name, v in out.items()}


def main(out: Path) -> int:
    kinds = [k for k in ("ours", "baseline") if (out / f"audio-timings-{k}.npy").exists()]
    if not kinds:
        print(f"audio_timeline: no audio-timings-*.npy in {out}: run benchmarks/audio.py --save-recording first",
              file=sys.stderr)
        return 2
    for kind in kinds:
        timings = np.load(out / f"audio-timings-{kind}.npy")
        arrivals = np.load(out / f"audio-arrivals-{kind}.npy")
        sink_ms = timings[:, 3] * 1000
        print(f"{kind}: {len(timings)} timing updates, the sink's share {np.mean(sink_ms):.2f} ms on average "
              f"({np.min(sink_ms):.2f}-{np.max(sink_ms):.2f}); {len(arrivals)} chunks, arrival interval median "
              f"{np.median(np.diff(arrivals[:, 1])) * 1000:.2f} ms")
        lines = timelines(timings, arrivals, json.loads((out / f"audio-markers-{kind}.json").read_text()))
        for name, ms in lines.items():
            print(f"  {name:18s} median {np.nanmedian(ms):6.2f}  p99 {np.nanpercentile(ms, 99):6.2f}  "
                  f"first markers {np.round(ms[:5], 2).tolist()}")
        diff = lines["sink mixing"] - lines["earliest readable"]
        print(f"  sink mixing - earliest readable: median {np.median(diff):.2f} ms, p1-p99 "
              f"{np.percentile(diff, 1):.2f}-{np.percentile(diff, 99):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out")))
