"""``soak.sh sound-restart``: PulseAudio restarted while ``kvmfr-audio`` plays; the audio must resume.

A 440 Hz tone goes out as Scream UDP to 127.0.0.1 (``ScreamUdpSender``, paced in real time), kvmfr-audio
plays it into a null sink of a private PulseAudio (tests/support/pulse.py), and the sink's monitor is
recorded. The player reaches the daemon through a symlink to its socket, so a restarted daemon (a new
process, a new socket) is found at the same PULSE_SERVER. Resume time: from the new daemon being up to
the first loud 10 ms of the recording on it (the recorder's own timing of when that frame hit the sink).
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .children import Children, bin_path
from .report import Criterion, Report, fmt_summary
from .tracks import summary_ms

SINK = "kvmfr_test_48k"
RESUME_S = 5.0
LOUD_RMS = 0.01


class ToneSender:
    def __init__(self, port: int):
        from guest_agent.audio.scream_sender import ScreamUdpSender
        from kvmfr_client.audio.formats import PcmFormat
        self.sender = ScreamUdpSender(PcmFormat(48000, 16, 2), "127.0.0.1", port)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="soak-tone")

    def start(self) -> "ToneSender":
        self._thread.start()
        return self

    def _run(self) -> None:
        chunk = 240     # 5 ms at 48 kHz
        n = 0
        t0 = time.monotonic()
        while not self._stop.is_set():
            t = (np.arange(n, n + chunk) / 48000.0)
            s = (0.3 * 32767 * np.sin(2 * math.pi * 440 * t)).astype("<i2")
            self.sender.send(np.repeat(s, 2).tobytes())
            n += chunk
            delay = t0 + n / 48000.0 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sender.close()


def _first_loud(rec, after: float) -> float | None:
    audio = rec.audio()
    block = 480
    for k in range(0, len(audio) - block, block):
        seg = audio[k:k + block, :2]
        if float(np.sqrt(np.mean(seg * seg))) > LOUD_RMS:
            t = rec.time_of_frame(k)
            if t >= after:
                return t
    return None


def run(count: int, seed: int, log=print) -> Report:
    from tests.support.pulse import PulseStartError, start_pulse, stop_pulse
    from tests.support.vm import free_port

    from .rig import SoakSetupError

    report = Report("sound-restart", {"count": count, "seed": seed})
    workdir = Path(tempfile.mkdtemp(prefix="kvmfr-soak-sound-"))
    link = workdir / "native"
    children = Children()
    resume_ms: list[float] = []
    silent: list[int] = []
    daemon = None
    tone = None
    player = None
    done = 0
    try:
        try:
            daemon = start_pulse()
        except PulseStartError as exc:
            raise SoakSetupError(str(exc).splitlines()[0]) from None
        os.symlink(daemon.server.removeprefix("unix:"), link)
        port = free_port(udp=True)
        env = dict(os.environ, PULSE_SERVER=f"unix:{link}")
        player = children.start("kvmfr-audio", [bin_path("kvmfr-audio"), "--scream", f"udp://127.0.0.1:{port}",
                                                "--sink", SINK, "--server", f"unix:{link}", "-v"], env=env)
        tone = ToneSender(port).start()
        with daemon.recorder(SINK) as rec:
            t0 = time.monotonic()
            deadline = t0 + 15
            while _first_loud(rec, t0) is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if _first_loud(rec, t0) is None:
                raise SoakSetupError(f"kvmfr-audio played nothing within 15 s: {player.tail()}")
        log(f"soak sound-restart: {count} PulseAudio restarts")
        for i in range(count):
            time.sleep(0.5)
            stop_pulse(daemon)
            daemon = None
            try:
                daemon = start_pulse()
            except PulseStartError as exc:
                raise SoakSetupError(f"PulseAudio did not start again: {str(exc).splitlines()[0]}") from None
            tmp = workdir / "native.new"
            os.symlink(daemon.server.removeprefix("unix:"), tmp)
            os.replace(tmp, link)
            t_up = time.monotonic()
            got = None
            with daemon.recorder(SINK) as rec:
                while got is None and time.monotonic() < t_up + 10:
                    time.sleep(0.1)
                    got = _first_loud(rec, t_up - 2.0)
            if got is None:
                silent.append(i + 1)
            else:
                resume_ms.append(max(0.0, (got - t_up) * 1000))
            done += 1
            if not player.alive():
                break
            log(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{count} restarts; "
                f"{'resumed after ' + format((got - t_up) * 1000, '.0f') + ' ms' if got else 'SILENT'}")
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if tone is not None:
            tone.stop()
        alive = player is not None and player.alive()
        children.close()
        if daemon is not None:
            stop_pulse(daemon)
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    s = summary_ms(resume_ms)
    report.extra.update({"restarts": done, "resume": s, "silent_after": silent,
                         "player_tail": player.tail(8) if player is not None else ""})
    report.add(Criterion(f"audio resumes within {RESUME_S:.0f} s of each restart", done > 0 and not silent
                         and s["max_ms"] is not None and s["max_ms"] < RESUME_S * 1000,
                         fmt_summary(s) + (f"; silent after restart(s) {silent[:10]}" if silent else "")))
    report.add(Criterion("kvmfr-audio alive to the end", alive, "alive" if alive else f"exited: {report.extra['player_tail'][:160]}"))
    return report
