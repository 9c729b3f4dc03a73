"""Transport benchmark: producer -> client through shared memory, in both protocols our producer and
reader speak: B7 (LGMP 6 / KVMFR 20) and master (LGMP 12 / KVMFR 34), side by side in one run.

For 1080p, 1440p and 2160p BGRA, in each protocol:
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
                                   [--protocol b7|master|both] [--json FILE]

Prints medians over the runs (each run's median first), and ratios against memcpy, one column per
protocol. A master producer holds each frame's last row back until it has published the frame's stage
timings (native/lgmp_producer.c, wp_publish_limit), so its post -> copied includes that step.
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
from kvmfr_client.core.native import ffi, lib
from guest_agent.producer import HostDescription, Producer
from kvmfr_client.core.session import recommended_shm_size
from kvmfr_client.core.testpattern import read_stored_code

PROTOCOLS = ("b7", "master")
# Each protocol's structs in the C headers (wire.h, wire_master.h): header, queue, message slot, frame.
LAYOUTS = {"b7": ("struct lgmp_header", "struct lgmp_header_queue", "struct lgmp_header_message", "struct kvmfr_frame"),
           "master": ("struct lgmp12_header", "struct lgmp12_header_queue", "struct lgmp12_header_message",
                      "struct kvmfr34_frame")}


def _producer(path: str, protocol: str, size: int) -> Producer:
    return Producer(path, create_size=size, host=HostDescription(protocol=protocol))


def copy_vs_memcpy(width: int, height: int, frames: int, protocol: str = "b7") -> dict:
    path = tempfile.mktemp(prefix="kvmfr-bench-", dir="/dev/shm")
    size = recommended_shm_size(width, height)
    rows = encode(np.random.default_rng(0).integers(0, 256, (height, width, 4), np.uint8), FrameType.BGRA)
    copy_ms, memcpy_ms = [], []
    try:
        with _producer(path, protocol, size) as prod, kvmfr_client.open(path, wait=5) as s:
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
                slot = _data_offset(mapping, protocol)
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


def _data_offset(mapping: np.ndarray, protocol: str) -> int:
    """Where the newest frame's pixels are: its frame message's payload, the frame's offset, then the 4-byte
    write pointer (offsets from the protocol's C structs)."""
    header, queue, message, frame = LAYOUTS[protocol]

    def u32(at: int) -> int:
        return int(mapping[at:at + 4].view("<u4")[0])

    qsize, queues = ffi.sizeof(queue), ffi.offsetof(header, "queues")
    for i in range(u32(ffi.offsetof(header, "numQueues"))):
        q = queues + i * qsize
        if u32(q + ffi.offsetof(queue, "queueID")) == lib.LGMP_Q_FRAME:
            break
    else:
        raise RuntimeError("no frame queue in the benchmark's own session")
    n = u32(q + ffi.offsetof(queue, "numMessages"))
    newest = (u32(q + ffi.offsetof(queue, "position")) + n - 1) % n
    payload = u32(u32(q + ffi.offsetof(queue, "messagesOffset")) + newest * ffi.sizeof(message)
                  + ffi.offsetof(message, "offset"))
    return payload + u32(payload + ffi.offsetof(frame, "offset")) + 4


def post_to_copied(width: int, height: int, frames: int, fps: float, protocol: str = "b7") -> dict:
    path = tempfile.mktemp(prefix="kvmfr-bench-", dir="/dev/shm")
    from tests.support.agent import start_agent
    from tests.support.process import stop_process
    agent = start_agent(path, (width, height), fps=fps, cursor=False, log=os.devnull, protocol=protocol)
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


def written_to_copied(width: int, height: int, frames: int, fps: float, protocol: str = "b7") -> dict:
    """Producer on a thread (its native writes release the GIL), paced: how long after the producer
    finished writing a frame was the client's copy complete? That is what the transport adds."""
    import threading
    path = tempfile.mktemp(prefix="kvmfr-bench-", dir="/dev/shm")
    from kvmfr_client.core.testpattern import Pattern
    pattern = Pattern(width, height, FrameType.BGRA)
    marks: dict[int, tuple[int, int]] = {}
    posted, added = [], []
    try:
        with _producer(path, protocol, recommended_shm_size(width, height)) as prod, \
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


def measure(width: int, height: int, frames: int, protocol: str) -> dict:
    """One run of every figure for one protocol."""
    r = copy_vs_memcpy(width, height, min(frames, 120), protocol)
    r.update({f"paced60_{k}": v for k, v in post_to_copied(width, height, frames, 60, protocol).items()})
    r.update({f"unpaced_{k}": v for k, v in post_to_copied(width, height, frames, 1000, protocol).items()})
    r.update({f"thread60_{k}": v for k, v in written_to_copied(width, height, frames, 60, protocol).items()})
    return r


# The printed table: (label, key in the medians, format).
ROWS = (
    ("copy out of shared memory, ms p50", "copy_ms_p50", "{:8.3f}"),
    ("memcpy of the same bytes, ms p50", "memcpy_ms_p50", "{:8.3f}"),
    ("copy / memcpy", "copy_over_memcpy", "{:7.2f}x"),
    ("paced 60/s: frames/s", "paced60_fps", "{:8.1f}"),
    ("paced 60/s: post->copied ms p50", "paced60_post_to_copied_ms_p50", "{:8.2f}"),
    ("paced 60/s: post->copied ms p99", "paced60_post_to_copied_ms_p99", "{:8.2f}"),
    ("unpaced: frames/s", "unpaced_fps", "{:8.1f}"),
    ("unpaced: post->copied ms p50", "unpaced_post_to_copied_ms_p50", "{:8.2f}"),
    ("unpaced: post->copied ms p99", "unpaced_post_to_copied_ms_p99", "{:8.2f}"),
    ("producer thread: post->copied ms p50", "thread60_post_to_copied_ms_p50", "{:8.2f}"),
    ("producer thread: post->copied ms p99", "thread60_post_to_copied_ms_p99", "{:8.2f}"),
    ("producer thread: written->copied ms p50", "thread60_written_to_copied_ms_p50", "{:8.3f}"),
    ("producer thread: written->copied ms p99", "thread60_written_to_copied_ms_p99", "{:8.3f}"),
)


def print_table(size: str, runs: int, medians: dict[str, dict]) -> None:
    """One size: a column per protocol."""
    names = {"b7": "B7 (LGMP 6/KVMFR 20)", "master": "master (LGMP 12/KVMFR 34)"}
    w, h = map(int, size.split("x"))
    print(f"{size} BGRA ({w * h * 4 / 1e6:.1f} MB/frame), medians of {runs} runs:")
    print(f"  {'':42}" + "".join(f"{names[p]:>28}" for p in medians))
    for label, key, fmt in ROWS:
        print(f"  {label:42}" + "".join(f"{fmt.format(m[key]):>28}" for m in medians.values()))
    sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--sizes", default="1920x1080,2560x1440,3840x2160")
    ap.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default="both",
                    help="the protocol(s) to measure (default: both, side by side)")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()
    sizes = [tuple(map(int, s.split("x"))) for s in args.sizes.split(",")]
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    report = {}
    for w, h in sizes:
        size = f"{w}x{h}"
        report[size] = {}
        medians = {}
        for _ in range(args.runs):   # the protocols alternate run by run, so a busy moment hits both
            for protocol in protocols:
                report[size].setdefault(protocol, {"runs": []})["runs"].append(measure(w, h, args.frames, protocol))
        for protocol in protocols:
            runs = report[size][protocol]["runs"]
            med = {k: statistics.median(run[k] for run in runs) for k in runs[0]}
            med["copy_over_memcpy"] = statistics.median(run["copy_ms_p50"] / run["memcpy_ms_p50"] for run in runs)
            report[size][protocol]["median"] = medians[protocol] = med
        print_table(size, args.runs, medians)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
