"""A Scream UDP flood against a running ``kvmfr-audio``, measured: the test (3 s) and the report's 10 s run.

    .venv/bin/python -m tests.audio.flood --seconds 10     # starts its own PulseAudio; prints JSON

The flooder is its own process and sends as fast as one Python loop can, on loopback only, for a bounded
time, from two sockets: ``owner`` (valid 48 kHz stereo datagrams of silence, and every third one with
a bad header) and ``intruder`` (valid datagrams from another address, which the receiver must drop as
foreign). Measured from outside, as a user would: the receiver's CPU seconds (/proc/PID/stat) and
resident memory (/proc/PID/status) before and after, its counters (--stats-file), its log lines. After
the flood, the owner's address sends real audio, which must be played.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

_FLOODER = r"""
import json, socket, sys, time
port, owner_port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
good = bytes([1, 16, 2, 3, 0]) + bytes(1152)        # 48 kHz, 16 bit, 2 ch, FL|FR; silence
bad = bytes([0, 16, 2, 3, 0]) + bytes(1152)         # sample-rate multiplier 0
owner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
owner.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
owner.bind(("127.0.0.1", owner_port))
intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dest = ("127.0.0.1", port)
sent = {"owner_good": 0, "owner_bad": 0, "intruder": 0, "refused": 0}
end = time.monotonic() + seconds
while time.monotonic() < end:                        # bounded: stops after `seconds`
    for _ in range(64):
        try:
            owner.sendto(good, dest); sent["owner_good"] += 1
            intruder.sendto(good, dest); sent["intruder"] += 1
            owner.sendto(bad, dest); sent["owner_bad"] += 1
        except OSError:                              # ECONNREFUSED/ENOBUFS on a saturated loopback
            sent["refused"] += 1
print(json.dumps(sent))
"""


def _proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _last_stats(path: str) -> dict:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    return json.loads(lines[-1]) if lines else {}


@dataclass
class FloodResult:
    seconds: float
    sent: dict
    cpu_seconds: float  # the receiver's, during the flood
    rss_before_mb: float
    rss_after_mb: float
    stats_before: dict
    stats_after: dict
    warning_lines: int  # the receiver's log lines about dropped datagrams, during the flood
    log: list[str] = field(default_factory=list)

    @property
    def datagrams(self) -> int:
        return self.sent["owner_good"] + self.sent["owner_bad"] + self.sent["intruder"]

    def summary(self) -> dict:
        got = {k: self.stats_after.get(k, 0) - self.stats_before.get(k, 0)
               for k in ("packets", "bad_packets", "foreign_packets", "floods", "flood_packets")}
        received = got["packets"] + got["bad_packets"] + got["foreign_packets"]
        return {"seconds": self.seconds, "datagrams_sent": self.datagrams, "send_rate_per_s": round(self.datagrams / self.seconds),
                "received": got, "received_rate_per_s": round(received / self.seconds),
                "receiver_cpu_s": round(self.cpu_seconds, 2), "receiver_cpu_share": round(self.cpu_seconds / self.seconds, 2),
                "cpu_us_per_received": round(self.cpu_seconds * 1e6 / max(1, received), 1),
                "rss_before_mb": round(self.rss_before_mb, 1), "rss_after_mb": round(self.rss_after_mb, 1),
                "drop_warning_lines": self.warning_lines}


def start_receiver(pulse, port: int, stats_file: str, log_file) -> subprocess.Popen:
    from tests.support.pulse import die_with_parent
    return subprocess.Popen([sys.executable, "-m", "kvmfr_client.audio.cli", "--scream", f"udp://127.0.0.1:{port}",
                             "--sink", pulse.sink48, "--server", pulse.server, "--latency", "100",
                             "--stats", "0.25", "--stats-file", stats_file],
                            stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)


def flood(receiver: subprocess.Popen, port: int, owner_port: int, seconds: float, stats_file: str,
          log_path: str) -> FloodResult:
    """Flood ``receiver`` (listening on ``port``) for ``seconds`` from ``owner_port`` and an intruder."""
    from tests.support.pulse import die_with_parent
    time.sleep(0.6)  # a stats line and a settled resident size before measuring
    before_lines = len(open(log_path).read().splitlines())
    stats_before = _last_stats(stats_file)
    rss_before, cpu_before = _proc_rss_mb(receiver.pid), _proc_cpu_seconds(receiver.pid)
    out = subprocess.run([sys.executable, "-c", _FLOODER, str(port), str(owner_port), str(seconds)],
                         capture_output=True, text=True, timeout=seconds + 30, preexec_fn=die_with_parent)
    if out.returncode != 0:
        raise RuntimeError(f"the flooder failed: {out.stderr}")
    cpu = _proc_cpu_seconds(receiver.pid) - cpu_before
    time.sleep(0.6)  # the counters of the last moment of the flood reach the stats file
    log = open(log_path).read().splitlines()[before_lines:]
    warnings = [line for line in log if "dropped" in line]
    return FloodResult(seconds, json.loads(out.stdout), cpu, rss_before, _proc_rss_mb(receiver.pid),
                       stats_before, _last_stats(stats_file), len(warnings), log)


def _main() -> int:
    import argparse
    import tempfile

    from tests.support.pulse import start_pulse, stop_pulse
    from tests.support.vm import free_port

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args()
    daemon = start_pulse()
    with tempfile.TemporaryDirectory() as tmp:
        port, owner_port = free_port(udp=True), free_port(udp=True)
        stats_file, log_path = os.path.join(tmp, "stats.jsonl"), os.path.join(tmp, "log")
        with open(log_path, "w") as log_file:
            receiver = start_receiver(daemon, port, stats_file, log_file)
            try:
                time.sleep(1.0)
                result = flood(receiver, port, owner_port, args.seconds, stats_file, log_path)
            finally:
                receiver.terminate()
                receiver.wait(10)
                stop_pulse(daemon)
    print(json.dumps(result.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())

