"""Watches the viewer window from outside: reads the test pattern's barcode off the X server (the
latency probe's GetImage of the barcode strip) and prints a line for each new serial shown:

    F <t_ns> <serial> <capture_us>     t_ns: when the X reply showing it came back (CLOCK_MONOTONIC)
    E <t_ns> <message>                 the window could not be read (it is retried)

``python -m tools.soak.window_watch TITLE WIDTHxHEIGHT [INTERVAL_S]``; DISPLAY names the X server.
"""

from __future__ import annotations

import signal
import sys
import time

from kvmfr_client.latency.probe import ProbeError, WindowProbe


def main(argv: list[str]) -> int:
    title, size = argv[0], argv[1]
    interval = float(argv[2]) if len(argv) > 2 else 0.01
    w, h = (int(v) for v in size.split("x"))
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    probe = None
    last = None
    while running[0]:
        try:
            if probe is None:
                probe = WindowProbe(title, (w, h))
                probe.locate(timeout=2.0)
            got = probe.poll()
            if got is not None and got[0] != last:
                last = got[0]
                print(f"F {got[3]} {got[0]} {got[1]}", flush=True)
        except (ProbeError, Exception) as exc:  # noqa: BLE001 - X errors while the window changes
            print(f"E {time.monotonic_ns()} {type(exc).__name__}: {str(exc)[:200]}", flush=True)
            if probe is not None:
                try:
                    probe.close()
                except Exception:  # noqa: BLE001
                    pass
            probe = None
            time.sleep(0.2)
            continue
        time.sleep(interval)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
