"""Input latency: key press sent by our SPICE client -> event logged by QEMU -> event read in the guest.

    .venv/bin/python benchmarks/input.py [--presses 200] [--guest-presses 60] [--no-guest]

Three measurements in one run, each reported as median and p99 in microseconds:
  * raw socket:  a 10-byte write on a localhost TCP socket until a reader thread has it (the floor any
                 socket-based input path pays on this machine);
  * QEMU:        KEY_DOWN written by SpiceClient until QEMU's input layer logged the key (QEMU's trace
                 timestamps, ``-msg timestamp=on``, same host clock);
  * guest:       KEY_DOWN written until the guest kernel's evdev event was printed on the serial console
                 and read by the host (TCG guest; host-side arrival time of the line).
Results also go to benchmarks/out/input.json. This is a measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kvmfr_client.spice import Address, SpiceClient, keymap  # noqa: E402
from tests.support.vm import start_guest, start_qemu  # noqa: E402

KEY_A = keymap.scancode(keymap.key_from_name("a"))
_TRACE_TS = re.compile(r"^(\d+)@(\d+)\.(\d+):input_event_key_qcode .*qcode a, down 1", re.M)


def summary(samples_s: list[float]) -> dict:
    us = sorted(s * 1e6 for s in samples_s)
    if not us:
        return {"n": 0}
    p99 = us[min(len(us) - 1, int(round(0.99 * (len(us) - 1))))]
    return {"n": len(us), "median_us": round(statistics.median(us), 1), "p99_us": round(p99, 1),
            "min_us": round(us[0], 1), "max_us": round(us[-1], 1)}


def raw_socket(count: int) -> list[float]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn, _ = server.accept()
    arrivals: list[float] = []

    def reader():
        for _ in range(count):
            conn.recv(64)
            arrivals.append(time.perf_counter())

    thread = threading.Thread(target=reader, name="raw-reader")
    thread.start()
    sent = []
    for _ in range(count):
        sent.append(time.perf_counter())
        client.send(b"0123456789")
        while len(arrivals) < len(sent):
            time.sleep(0.0005)
        time.sleep(0.002)
    thread.join()
    for s in (client, conn, server):
        s.close()
    return [a - s for s, a in zip(sent, arrivals)]


def poll(collect, count: int, timeout: float) -> list:
    """``collect()`` every 50 ms until it returns ``count`` items or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    items = collect()
    while len(items) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        items = collect()
    return items


async def spice_presses(spice: str, count: int, gap: float, on_sent) -> None:
    client = SpiceClient(Address.parse(spice))
    await client.connect()
    try:
        for _ in range(count):
            on_sent(time.time(), time.perf_counter())
            client.inputs.key_down(KEY_A)
            await client.inputs.drain()
            await asyncio.sleep(gap)
            client.inputs.key_up(KEY_A)
            await client.inputs.drain()
            await asyncio.sleep(gap)
    finally:
        await client.close(flush=True)


def qemu_latency(workdir: Path, count: int) -> list[float]:
    vm = start_qemu(workdir, name="bench", extra=["-msg", "timestamp=on"])
    try:
        sent: list[float] = []
        asyncio.run(spice_presses(vm.spice, count, 0.003, lambda wall, perf: sent.append(wall)))
        logged = poll(lambda: [int(s) + int(us) / 1e6
                               for _, s, us in _TRACE_TS.findall(vm.trace.path.read_text())], count, 5)
    finally:
        vm.stop()
    if len(logged) != count:
        raise SystemExit(f"QEMU logged {len(logged)} of {count} presses")
    return [log - send for send, log in zip(sent, logged)]


def guest_latency(workdir: Path, count: int) -> list[float]:
    from tests.support.guest import build_guest
    vm = start_guest(workdir, build_guest(), name="bench-guest")
    try:
        if vm.serial.wait_for(r"^DEV \d+ AT Translated", 60) is None:
            raise SystemExit("guest keyboard did not appear:\n" + vm.output())
        time.sleep(0.5)
        start = len(vm.serial.lines)
        sent: list[float] = []
        asyncio.run(spice_presses(vm.spice, count, 0.02, lambda wall, perf: sent.append(perf)))
        arrivals = poll(lambda: [t for t, line in vm.serial.lines[start:] if re.match(r"EV \d+ 1 30 1$", line)],
                        count, 10)
    finally:
        vm.stop()
    if len(arrivals) != count:
        raise SystemExit(f"the guest reported {len(arrivals)} of {count} presses")
    return [a - s for s, a in zip(sent, arrivals)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--guest-presses", type=int, default=60)
    parser.add_argument("--no-guest", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kvmfr-input-bench-"))
    results = {"raw_socket": summary(raw_socket(args.presses)),
               "spice_to_qemu": summary(qemu_latency(work, args.presses))}
    if not args.no_guest:
        results["spice_to_guest"] = summary(guest_latency(work, args.guest_presses))
    results["raw_socket_again"] = summary(raw_socket(args.presses))
    print(f"{'path':<18} {'n':>5} {'median us':>10} {'p99 us':>10} {'min us':>9} {'max us':>9}")
    for name, r in results.items():
        print(f"{name:<18} {r['n']:>5} {r.get('median_us', 0):>10} {r.get('p99_us', 0):>10}"
              f" {r.get('min_us', 0):>9} {r.get('max_us', 0):>9}")
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "input.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
