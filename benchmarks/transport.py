"""Transport benchmark: producer -> client through LGMP 6 / KVMFR 20 shared memory.

For 1080p, 1440p and 2160p BGRA:
* copy path: the client's copy of a complete frame out of shared memory into its own buffer, against
  a memcpy (numpy copy) of the same bytes from the same mapping, measured in the same run;
* post -> copied: the real guest agent in another process posts frames (timestamp in the frame's
  barcode, taken just before the post); the client measures when its copy of that frame ended.
  Both processes read CLOCK_MONOTONIC on this machine. Run paced at 60 frames/s and unpaced (as
  fast as the client takes them) for throughput. Progressive delivery means the copy ends just after
  the producer's own write ends, so post -> copied is mostly the producer's pixel write;
* written -> copied: a producer thread paced at 60/s notes when it finished writing each frame; the
  time from there to the end of the client's copy is what the transport itself adds.

    python benchmarks/transport.py [--runs 3] [--frames 240] [--sizes 1920x1080,2560x1440,3840x2160]

Prints medians over the runs (each run's median first), and ratios against memcpy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import kvmfr_client
from kvmfr_client.core.formats import FrameType, encode
from guest_agent.producer import Producer
from kvmfr_client.core.session import recommended_shm_size
from kvmfr_client.core.testpattern import read_stored_code


def copy_vs_memcpy(width: int, height: int, frames: int) -> dict:
    path = tempfile.mktemp(prefix="kvmfr-bench-", dir="/dev/shm")
    size = recommended_shm_size(width, height)
    rows = encode(np.random.default_rng(0).integers(0, 256, (height, width, 4), np.uint8), FrameType.BGRA)
    copy_ms, memcpy_ms = [], []
    try:
        with Producer(path, create_size=size) as prod, kvmfr_client.open(path, wait=5) as s:
            mapping = np.memmap(path, np.uint8, mode="r")
            out = np.empty_like(rows)
            scratch = np.empty_like(rows)
            time.sleep(0.05)
            for serial in range(1, frames + 1):
                prod.post_frame(serial, FrameType.BGRA, rows, width, height)
                f = s.next_frame(timeout=2, out=out)
                assert f is not None and f.serial == serial
                copy_ms.append((f.t_copy_end_ns - f.t_copy_start_ns) / 1e6)
                # The same bytes from the same mapping: the frame data sits in one of the two slots.
                slot = _data_offset(path, serial)
                src = mapping[slot: slot + rows.nbytes].reshape(rows.shape)
                t0 = time.perf_counter_ns()
                np.copyto(scratch, src)
                memcpy_ms.append((time.perf_counter_ns() - t0) / 1e6)
            assert np.array_equal(out, rows)
            del mapping
    finally:
        os.unlink(path)
    return {"copy_ms_p50": statistics.median(copy_ms), "memcpy_ms_p50": statistics.median(memcpy_ms),
            "copy_ms_p99": float(np.percentile(copy_ms, 99)), "memcpy_ms_p99": float(np.percentile(memcpy_ms, 99))}


def _data_offset(path: str, serial: int) -> int:
    """Where frame ``serial``'s pixels are: read back from the newest frame message (our own test layout)."""
    from tests.support.shm import FRAME, Q_FRAME, Region, off
    r = Region(path)
    try:
        payload = r.newest_payload(Q_FRAME)
        return payload + r.u32(payload + off(FRAME, "offset")) + 4   # then the 4-byte write pointer
    finally:
        r.close()


def post_to_copied(width: int, height: int, frames: int, fps: float) -> dict:
    path = tempfile.mktemp(prefix="kvmfr-bench-", dir="/dev/shm")
    from tests.support.agent import start_agent
    from tests.support.process import stop_process
    agent = start_agent(path, (width, height), fps=fps, cursor=False, log=os.devnull)
    lat, copy_ms = [], []
    try:
        while not os.path.exists(path):
            time.sleep(0.01)
        with kvmfr_client.open(path, wait=10) as s:
            out = None
            t_first = t_last = None
            got = 0
            while got < frames + 10:
                f = s.next_frame(timeout=1, out=out)
                if f is None:
                    continue
                out = f.pixels
                got += 1
                if got <= 10:   # warm-up
                    continue
                code = read_stored_code(f.pixels[:16], f.type, f.width)
                if code is not None:
                    lat.append((f.t_copy_end_ns / 1000 - code[2]) / 1000)
                copy_ms.append((f.t_copy_end_ns - f.t_copy_start_ns) / 1e6)
                t_first = t_first or time.monotonic()
                t_last = time.monotonic()
    finally:
        stop_process(agent)
        if os.path.exists(path):
            os.unlink(path)
    return {"fps": (len(copy_ms) - 1) / (t_last - t_first), "post_to_copied_ms_p50": statistics.median(lat),
            "post_to_copied_ms_p99": float(np.percentile(lat, 99)), "frames": len(lat)}


def written_to_copied(width: int, height: int, frames: int, fps: float) -> dict:
    """Producer on a thread (its native writes release the GIL), paced: how long after the producer
    finished writing a frame was the client's copy complete? That is what the transport adds."""
    import threading
    path = tempfile.mktemp(prefix="kvmfr-bench-", dir="/dev/shm")
    from kvmfr_client.core.testpattern import Pattern
    pattern = Pattern(width, height, FrameType.BGRA)
    marks: dict[int, tuple[int, int]] = {}
    posted, added = [], []
    try:
        with Producer(path, create_size=recommended_shm_size(width, height)) as prod, \
                kvmfr_client.open(path, wait=5) as s:
            time.sleep(0.05)

            def produce():
                next_t = time.monotonic()
                for serial in range(1, frames + 11):
                    prod.begin_frame(serial, FrameType.BGRA, width, height, pitch=pattern.pitch)
                    t_post = time.monotonic_ns()
                    prod.write_rows(pattern.code_stored(serial, 0), 0)
                    prod.write_rows(pattern.body_stored(serial), pattern.code_rows)
                    prod.end_frame()
                    marks[serial] = (t_post, time.monotonic_ns())
                    next_t += 1 / fps
                    time.sleep(max(0.0, next_t - time.monotonic()))

            t = threading.Thread(target=produce, name="producer")
            t.start()
            out = None
            while t.is_alive() or s.queue_stats(2)["count"]:
                f = s.next_frame(timeout=0.2, out=out)
                if f is None:
                    continue
                out = f.pixels
                if f.serial > 10:
                    t_post, t_written = marks.get(f.serial, (0, 0))
                    if t_written:
                        posted.append((f.t_copy_end_ns - t_post) / 1e6)
                        added.append((f.t_copy_end_ns - t_written) / 1e6)
            t.join()
    finally:
        os.unlink(path)
    return {"post_to_copied_ms_p50": statistics.median(posted), "post_to_copied_ms_p99": float(np.percentile(posted, 99)),
            "written_to_copied_ms_p50": statistics.median(added),
            "written_to_copied_ms_p99": float(np.percentile(added, 99))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--sizes", default="1920x1080,2560x1440,3840x2160")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()
    sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    report = {}
    for w, h in sizes:
        runs = []
        for _ in range(args.runs):
            r = copy_vs_memcpy(w, h, min(args.frames, 120))
            r.update({f"paced60_{k}": v for k, v in post_to_copied(w, h, args.frames, 60).items()})
            r.update({f"unpaced_{k}": v for k, v in post_to_copied(w, h, args.frames, 1000).items()})
            r.update({f"thread60_{k}": v for k, v in written_to_copied(w, h, args.frames, 60).items()})
            runs.append(r)
        med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        med["copy_over_memcpy"] = statistics.median(run["copy_ms_p50"] / run["memcpy_ms_p50"] for run in runs)
        report[f"{w}x{h}"] = {"median": med, "runs": runs}
        mb = w * h * 4 / 1e6
        print(f"{w}x{h} BGRA ({mb:.1f} MB/frame), medians of {args.runs} runs:")
        print(f"  copy out of shared memory  {med['copy_ms_p50']:7.3f} ms   memcpy same bytes {med['memcpy_ms_p50']:7.3f} ms"
              f"   ratio {med['copy_over_memcpy']:.2f}x")
        print(f"  paced 60/s: {med['paced60_fps']:6.1f} frames/s   post->copied p50 {med['paced60_post_to_copied_ms_p50']:6.2f} ms"
              f"   p99 {med['paced60_post_to_copied_ms_p99']:6.2f} ms")
        print(f"  unpaced:    {med['unpaced_fps']:6.1f} frames/s   post->copied p50 {med['unpaced_post_to_copied_ms_p50']:6.2f} ms"
              f"   p99 {med['unpaced_post_to_copied_ms_p99']:6.2f} ms")
        print(f"  paced 60/s, producer thread: post->copied p50 {med['thread60_post_to_copied_ms_p50']:6.2f} ms"
              f"   p99 {med['thread60_post_to_copied_ms_p99']:6.2f} ms;  producer done writing -> copied"
              f" p50 {med['thread60_written_to_copied_ms_p50']:5.2f} ms   p99 {med['thread60_written_to_copied_ms_p99']:5.2f} ms")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
