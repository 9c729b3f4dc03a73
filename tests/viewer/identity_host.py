"""A host for the window-identity tests, run as a subprocess by test_identity.py:

    python -m tests.viewer.identity_host SHM_PATH

Posts a plain frame every 40 ms; each line on stdin, ``WIDTH HEIGHT FLAGS``, changes the frames' size and
KVMFR flags (1: block the screensaver, 2: request activation) from the next frame on. Prints "ready" after
the first frame, and "ok" after each line once a frame with the new values is posted.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from guest_agent.producer import Producer
from kvmfr_client.core.formats import FrameType, encode


def main(path: str) -> None:
    state = {"size": (320, 240), "flags": 0, "acked": True}
    lock = threading.Lock()

    def read_commands():
        for line in sys.stdin:
            w, h, flags = (int(v) for v in line.split())
            with lock:
                state.update(size=(w, h), flags=flags, acked=False)
    threading.Thread(target=read_commands, daemon=True, name="commands").start()
    prod = Producer(path, create_size=16 << 20)
    serial = 1
    rows = {}
    while True:
        with lock:
            (w, h), flags, acked = state["size"], state["flags"], state["acked"]
            state["acked"] = True
        if (w, h) not in rows:
            img = np.zeros((h, w, 4), np.uint8)
            img[..., 1], img[..., 3] = 120, 255
            rows[(w, h)] = encode(img, FrameType.BGRA)
        prod.post_frame(serial, FrameType.BGRA, rows[(w, h)], w, h, flags=flags)
        if serial == 1:
            print("ready", flush=True)
        if not acked:
            print("ok", flush=True)
        serial += 1
        time.sleep(0.04)


if __name__ == "__main__":
    main(sys.argv[1])
