"""A Python API reader for the soaks: ``kvmfr_client.open(FILE)`` and a ``next_frame`` loop, in a child
process. Prints one line per frame and one status line a second, which the harness reads:

    F <t_ns> <serial> <capture_us>        a frame arrived (capture_us: the test pattern's stamp, -1: none)
    S <t_ns> <state> <restarts> <json error counts>
    X <t_ns> <exception type>: <message>  an exception escaped next_frame/next_cursor (a bug; exit 3)

t_ns is CLOCK_MONOTONIC, the clock the agent stamps captures with. Ends on SIGTERM or stdin closing.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import kvmfr_client
from kvmfr_client.core.testpattern import read_stored_code


def main(argv: list[str]) -> int:
    path = argv[0]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    out = sys.stdout
    cursor_error: list[str] = []

    def cursors(session) -> None:   # a second thread on the cursor queue, as the viewer has
        try:
            while not stop.is_set():
                session.next_cursor(timeout=0.05)
        except Exception as exc:  # noqa: BLE001 - reported as a finding, not hidden
            cursor_error.append(f"{type(exc).__name__}: {exc}")
            stop.set()

    with kvmfr_client.open(path) as session:
        t = threading.Thread(target=cursors, args=(session,), daemon=True, name="cursor")
        t.start()
        next_status = 0
        try:
            while not stop.is_set():
                frame = session.next_frame(timeout=0.1)
                now = time.monotonic_ns()
                if frame is not None:
                    code = read_stored_code(frame.pixels, frame.type, frame.width)
                    out.write(f"F {now} {frame.serial} {code[2] if code else -1}\n")
                if now >= next_status:
                    out.write(f"S {now} {session.state.name} {session.session_restarts} "
                              f"{json.dumps(session.errors_by_kind())}\n")
                    next_status = now + 1_000_000_000
                out.flush()
        except Exception as exc:  # noqa: BLE001
            out.write(f"X {time.monotonic_ns()} {type(exc).__name__}: {str(exc)[:300]}\n")
            out.flush()
            return 3
        finally:
            stop.set()
            t.join(1.0)
        if cursor_error:
            out.write(f"X {time.monotonic_ns()} (cursor thread) {cursor_error[0][:300]}\n")
            out.flush()
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
