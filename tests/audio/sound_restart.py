"""The sound server restarted under a playing ``kvmfr-audio``: how long until the guest's audio is heard
again. Used by tests/audio/test_sound_restart.py (a few restarts) and for longer runs:

    .venv/bin/python -m tests.audio.sound_restart --count 20       # prints JSON: resume time per restart

``kvmfr-audio`` is given the server as a path that stays the same (a symbolic link to the running
daemon's socket, repointed at each restart), as a desktop's ``$XDG_RUNTIME_DIR/pulse/native`` stays the
same when PulseAudio or PipeWire restarts. A Scream UDP sender plays a continuous 440/660 Hz tone
throughout; after each restart the new daemon's sink is recorded until the tone is back.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.audio.signals import dominant_freq, rms
from tests.support.process import stop_process
from tests.support.pulse import PulseDaemon, die_with_parent, start_pulse, stop_pulse
from tests.support.threads import LoopThread
from tests.support.vm import free_port

TONES = (440.0, 660.0)
RATE = 48000
FRAMES = 288  # 6 ms per datagram: 1152 bytes of 16-bit stereo


class ToneSender(LoopThread):
    """Scream UDP 48 kHz 16-bit stereo, a continuous tone per channel, paced in real time, while in a
    ``with`` block."""

    JOIN_SECONDS = 2.0

    def __init__(self, port: int):
        self.port = port
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        super().__init__("test-tone-sender")

    def _close(self) -> None:
        self._sock.close()

    def _run(self) -> None:
        header = bytes([1, 16, 2, 3, 0])
        n = 0
        start = time.monotonic()
        while not self._stop.is_set():
            t = (n * FRAMES + np.arange(FRAMES)) / RATE
            pcm = np.stack([0.5 * np.sin(2 * math.pi * f * t) for f in TONES], axis=1)
            self._sock.sendto(header + (pcm * 32767).astype("<i2").tobytes(), ("127.0.0.1", self.port))
            n += 1
            delay = start + n * FRAMES / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def tone_heard(audio: np.ndarray, rate: int) -> bool:
    """The last 200 ms carry the tone on FL and FR, loud, at its pitch."""
    window = audio[-int(0.2 * rate):]
    if len(window) < int(0.2 * rate):
        return False
    return all(rms(window[:, ch]) > 0.2 and abs(dominant_freq(window[:, ch], rate) - f) < 10
               for ch, f in enumerate(TONES))


def wait_for_tone(daemon: PulseDaemon, timeout: float) -> float | None:
    """Record the daemon's sink until the tone is heard; seconds it took, or None."""
    start = time.monotonic()
    with daemon.recorder(daemon.sink48) as rec:
        while time.monotonic() - start < timeout:
            time.sleep(0.1)
            if tone_heard(rec.audio(), rec.rate):
                return time.monotonic() - start
    return None


def _point(link: Path, daemon: PulseDaemon) -> None:
    tmp = link.with_suffix(".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(daemon.server.removeprefix("unix:"))
    os.replace(tmp, link)  # atomic: a reconnect never finds the link missing


def run(count: int, workdir: Path, timeout: float = 10.0, kill: bool = True) -> dict:
    """Restart the sound server ``count`` times under a playing kvmfr-audio; figures as a dict.

    ``kill``: SIGKILL the daemon (a crash) instead of SIGTERM (a clean restart)."""
    link = workdir / "pulse-native"
    daemon = start_pulse()
    _point(link, daemon)
    port = free_port(udp=True)
    log_path = workdir / "kvmfr-audio.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "kvmfr_client.audio.cli", "--scream", f"udp://127.0.0.1:{port}",
                             "--server", f"unix:{link}", "--sink", daemon.sink48, "--latency", "60"],
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    resumed: list[float | None] = []
    try:
        with ToneSender(port):
            first = wait_for_tone(daemon, timeout + 5)  # + interpreter start-up
            if first is None:
                raise AssertionError(f"no tone before any restart; kvmfr-audio log:\n{log_path.read_text()}")
            for _ in range(count):
                if kill:
                    daemon.process.send_signal(signal.SIGKILL)
                stop_pulse(daemon)
                time.sleep(0.3)  # the player notices the loss
                daemon = start_pulse()  # ~2.5 s: the test daemon's start-up
                _point(link, daemon)
                resumed.append(wait_for_tone(daemon, timeout))
                if proc.poll() is not None:
                    break
    finally:
        alive = proc.poll() is None
        out = stop_process(proc)
        log.close()
        stop_pulse(daemon)
    done = [r for r in resumed if r is not None]
    return {"restarts": count, "resumed": len(done), "kvmfr_audio_survived": alive,
            "resume_s": [round(r, 2) if r is not None else None for r in resumed],
            "resume_s_max": round(max(done), 2) if done else None,
            "log_tail": (log_path.read_text() + out).splitlines()[-15:]}


def _main() -> int:
    import argparse
    import tempfile

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--term", action="store_true", help="SIGTERM the daemon instead of SIGKILL")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.count, Path(tmp), kill=not args.term)
    result.pop("log_tail")
    print(json.dumps(result))
    return 0 if result["resumed"] == args.count and result["kvmfr_audio_survived"] else 1


if __name__ == "__main__":
    sys.exit(_main())
