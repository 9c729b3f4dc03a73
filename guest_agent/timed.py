"""The guest agent's test pattern for the benchmark, with a log of every frame it posts.

    python -m guest_agent.timed --shm PATH --size WxH --fps N --log FILE [--protocol b7|master]

Runs :class:`guest_agent.agent.Agent` unchanged (no cursor: the cursor would cover the barcode now
and then) and notes, per frame, its serial, its capture time (the one in the barcode, microseconds), when it
was posted (``begin_frame``: as in B7 the frame is in the queue before its rows are written, and the
client copies rows as the write pointer moves) and when its last row was written (``end_frame``),
both CLOCK_MONOTONIC ns.
On SIGTERM it stops and writes the log as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from kvmfr_client import config

    from guest_agent import options as _options  # noqa: F401  (declares agent:*)
    p = argparse.ArgumentParser(prog="guest_agent.timed")
    p.add_argument("--shm", required=True)
    p.add_argument("--size", required=True, help="WIDTHxHEIGHT")
    p.add_argument("--fps", required=True)
    p.add_argument("--log", required=True, help="JSON file written at exit")
    p.add_argument("--protocol", default="b7", help="b7 or master (agent:protocol)")
    args = p.parse_args(argv)
    try:
        cfg = config.load([f"agent:shmFile={args.shm}", f"agent:size={args.size}", f"agent:fps={args.fps}",
                           "agent:cursor=no", f"agent:protocol={args.protocol}"], user_file=False)
    except config.ConfigError as exc:
        p.error(str(exc))

    from guest_agent.agent import Agent, AgentOptions
    import signal
    agent = Agent(AgentOptions.from_config(cfg))
    posted: list[tuple[int, int, int, int]] = []
    t_ns = {"begin": 0, "end": 0}
    producer = agent.producer
    begin_frame, end_frame = producer.begin_frame, producer.end_frame

    def timed_begin_frame(*a, **kw):
        t_ns["begin"] = time.monotonic_ns()
        return begin_frame(*a, **kw)

    def timed_end_frame(*a, **kw):
        r = end_frame(*a, **kw)
        t_ns["end"] = time.monotonic_ns()
        return r

    producer.begin_frame, producer.end_frame = timed_begin_frame, timed_end_frame
    source_post = agent.source.post

    def logged_post(prod, serial):
        t_us = source_post(prod, serial)
        posted.append((serial, t_us, t_ns["begin"], t_ns["end"]))
        return t_us

    agent.source.post = logged_post
    def stop(*_):
        agent.stop_event.set()
        producer.interrupt()   # a frame wait in progress gives up within one wait slice

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        agent.run()
    finally:
        agent.close()
        Path(args.log).write_text(json.dumps({"clock": "CLOCK_MONOTONIC",
                                              "fields": ["serial", "t_capture_us", "t_post_ns", "t_written_ns"],
                                              "frames": posted}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
