"""A private PulseAudio daemon with null sinks, and a recorder of their monitors (for the audio tests and
benchmarks/audio.py).

The daemon runs as whoever runs pytest (root in CI): ``-n`` loads no default script, so no hardware,
no D-Bus and no systemd are needed, and the native protocol listens on a socket in a temporary folder
with anonymous auth. Two 7.1 float32 null sinks, one at 48 kHz and one at 44.1 kHz, let the tests check
rates and channel order without the sound server resampling or remixing anything.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import signal
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from kvmfr_client.audio import pulse
from kvmfr_client.audio.formats import SINK_7_1_POSITIONS
from tests.support.process import stop_process
from tests.support.threads import LoopThread

SINK_CHANNEL_MAP = "front-left,front-right,front-center,lfe,rear-left,rear-right,side-left,side-right"
# kvmfr_guest stands in for a Linux guest's own sound card in the guest-sender tests.
SINKS = {"kvmfr_test_48k": 48000, "kvmfr_test_44k": 44100, "kvmfr_guest": 48000}


@dataclass
class PulseDaemon:
    server: str
    runtime: Path
    process: subprocess.Popen
    log_path: Path
    keepers: list = field(default_factory=list)

    sink48 = "kvmfr_test_48k"
    sink44 = "kvmfr_test_44k"
    guest_sink = "kvmfr_guest"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PULSE_SERVER"] = self.server
        return env

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def recorder(self, sink: str, channels: int = 8) -> Recorder:
        return Recorder(self.server, sink + ".monitor", SINKS[sink], channels)


class Recorder(LoopThread):
    """Records a Pulse source (a null sink's monitor) while in a ``with`` block, noting when the sink mixed
    each frame.

    The audio arrives in libpulse's own thread (pulse.RecordStream); this thread only asks the server for
    a timing update every TIMING_EVERY seconds and collects. The timeline comes from those updates, which
    the server stamps itself (see sink_timeline), so it does not depend on when any thread of this process
    woke up: the pa_simple recorder before it stamped each block with its read's return, less a latency
    that pa_simple clamps at 0 (a monitor's is negative), so its timeline was mostly its own wake-up."""

    BLOCK_SECONDS = 0.005
    TIMING_EVERY = 0.05

    def __init__(self, server: str, source: str, rate: int, channels: int = 8):
        self.rate = rate
        self.channels = channels
        spec = pulse.StreamSpec(pulse.SAMPLE_FLOAT32LE, rate, SINK_7_1_POSITIONS[:channels])
        self.block = int(rate * self.BLOCK_SECONDS)
        self._stream = pulse.RecordStream(spec, server=server, device=source, app_name="kvmfr-test",
                                          stream_name="test recorder", fragsize=self.block * 4 * channels)
        self._chunks: list[bytes] = []
        self._frames = 0
        # (frames recorded through the chunk, monotonic time it reached this process): when the recording
        # was readable here, kept for benchmarks/audio_timeline.py's check of the timeline.
        self.arrivals: list[tuple[int, float]] = []
        # the server's timing updates as rows of TIMING_COLUMNS (see sink_timeline)
        self.timings: list[tuple[float, float, float, float]] = []
        super().__init__("test-recorder")

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stream.request_timing()
            self._collect()
            # At random moments: at a fixed 50 ms the updates would all meet the sink's 5 ms render
            # cycle at the same phase for seconds, and their sink part would read high or low for as long.
            self._stop.wait(random.uniform(0.5, 1.5) * self.TIMING_EVERY)

    def _collect(self) -> None:
        chunks, timings = self._stream.take()
        frame_bytes = 4 * self.channels
        for chunk in chunks:
            self._chunks.append(chunk.data)
            self._frames += len(chunk.data) // frame_bytes
            self.arrivals.append((self._frames, chunk.arrived))
        self.timings += [(t.at, t.write_index / frame_bytes, t.source_usec / 1e6, t.sink_usec / 1e6)
                         for t in timings]

    def stop(self) -> np.ndarray:
        """Stop recording; what was recorded."""
        super().stop()
        return self.audio()

    def _close(self) -> None:
        self._collect()
        self._stream.close()

    def audio(self) -> np.ndarray:
        if not self._chunks:
            return np.zeros((0, self.channels), dtype=np.float32)
        return np.frombuffer(b"".join(self._chunks), dtype="<f4").reshape(-1, self.channels)

    def time_of_frame(self, index: int) -> float:
        """When recorded frame ``index`` was mixed by the sink (monotonic seconds; see sink_timeline)."""
        return float(sink_timeline(np.array(self.timings), self.rate, np.array([index]))[0])


TIMING_COLUMNS = ("at", "write_index_frames", "source_s", "sink_s")
# timing updates after a frame that place it: 0.5 s at Recorder.TIMING_EVERY, in which a null sink's clock
# drifts 0.1 ms at most against this machine's (measured: 30-200 ppm)
TIMING_WINDOW = 10


def sink_timeline(timings: np.ndarray, rate: int, frames: np.ndarray, *, play_out: bool = False) -> np.ndarray:
    """When the sink mixed each of ``frames`` (indices of a monitor's recording; monotonic seconds), from
    the server's timing updates of the record stream (rows of TIMING_COLUMNS).

    Each update says where the monitored sink was playing at its moment ``at``: frame write_index +
    (source - sink) * rate, the stream's signed latency (pa_timing_info; the sink's part is what it had
    mixed and not yet played). The server asks its sink thread for that part first and stamps ``at``
    after, so an update reads late by however long that took (0 to ~1.5 ms while the sink thread is busy
    mixing a stream; never early): the lower envelope of the updates, not their median, places a frame
    on the sink's play-out clock. Only the updates taken after the frame was recorded count (the first
    TIMING_WINDOW of them), so that a step in the monitor's indices (audio it lost or got twice, should
    a sink's rewind reach it; none was seen at the streams' starts in the benchmark) misplaces only the
    frames of one update interval before it, and a sink clock that drifts against this machine's is
    followed. A frame is mixed with its render block, which the sink then holds until it plays; the mean
    of the updates' sink part (over the whole recording) is that share on average (what the player counts
    too: its latency is to the sink mixing a packet, the stream's latency less the mean of the same sink
    part), so the mixing time is the play-out less that mean. ``play_out`` gives the play-out time itself."""
    at, written, source, sink = timings.T
    offset = at - written / rate + sink - source   # play-out time of frame 0, by each update
    order = np.argsort(written, kind="stable")
    written, offset = written[order], offset[order]
    share = 0.0 if play_out else float(np.mean(sink))
    out = np.empty(len(frames))
    for n, f in enumerate(frames):
        lo = min(int(np.searchsorted(written, f)), max(0, len(written) - TIMING_WINDOW))
        out[n] = np.min(offset[lo:lo + TIMING_WINDOW]) + f / rate - share
    return out


# Loaded before any fork: the child of a threaded process should do as little as possible.
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the test process dies, even by a crash or SIGKILL, so
    no daemon outlives its test run."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _ensure_pulseaudio() -> str:
    exe = shutil.which("pulseaudio")
    if exe:
        return exe
    if os.geteuid() == 0 and shutil.which("apt-get"):
        # scripts/setup.sh test installs scripts/deps/apt-test-audio.txt; this is the fallback for a
        # plain `pytest` on a machine that skipped it.
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "pulseaudio", "pulseaudio-utils"],
                       env=env, check=False, capture_output=True, timeout=600)
        exe = shutil.which("pulseaudio")
        if exe:
            return exe
    raise PulseStartError("pulseaudio is not installed and could not be installed: run `scripts/setup.sh test` "
                "(installs scripts/deps/apt-test-audio.txt) or `apt-get install pulseaudio pulseaudio-utils`")


class PulseStartError(RuntimeError):
    """The private daemon did not come up; the message carries its log."""


def start_pulse(high_priority: bool = False) -> PulseDaemon:
    """Start a private PulseAudio daemon with the test sinks; call ``stop_pulse`` when done.

    ``high_priority`` lets the daemon take nice -11 and real-time scheduling where it may, as a desktop
    session's daemon does through rtkit; without it a busy machine delays the sink's own thread and the
    recording shows underruns that are the test daemon's, not the player's."""
    exe = _ensure_pulseaudio()
    runtime = Path(tempfile.mkdtemp(prefix="kvmfr-pulse-"))
    socket_path = runtime / "native"
    log_path = runtime / "daemon.log"
    env = dict(os.environ, HOME=str(runtime), XDG_RUNTIME_DIR=str(runtime), PULSE_RUNTIME_PATH=str(runtime),
               PULSE_STATE_PATH=str(runtime), XDG_CONFIG_HOME=str(runtime / "config"))
    env.pop("PULSE_SERVER", None)
    # Remixing off: a stereo stream must land on FL/FR only, so channel order can be checked exactly.
    conf_dir = runtime / "config" / "pulse"
    conf_dir.mkdir(parents=True)
    (conf_dir / "daemon.conf").write_text("enable-remixing = no\nflat-volumes = no\n")
    env["PULSE_CONFIG"] = str(conf_dir / "daemon.conf")
    cmd = [exe, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--system=no",
           f"--high-priority={'yes' if high_priority else 'no'}", f"--realtime={'yes' if high_priority else 'no'}", "--log-target=stderr", "--log-level=info"]
    for name, rate in SINKS.items():
        cmd += ["-L", f"module-null-sink sink_name={name} rate={rate} channels=8 format=float32le "
                      f"channel_map={SINK_CHANNEL_MAP}"]
    cmd += ["-L", f"module-native-protocol-unix auth-anonymous=1 socket={socket_path}"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)
    daemon = PulseDaemon(f"unix:{socket_path}", runtime, proc, log_path)
    import pulsectl

    deadline = time.monotonic() + 15
    try:
        while True:
            if proc.poll() is not None:
                raise PulseStartError(f"pulseaudio exited with {proc.returncode} at start:\n{daemon.log_tail()}")
            if socket_path.exists():
                try:
                    with pulsectl.Pulse("kvmfr-test", server=daemon.server) as p:
                        names = {s.name for s in p.sink_list()}
                    if set(SINKS) <= names:
                        break
                except pulsectl.PulseError:
                    pass
            if time.monotonic() > deadline:
                raise PulseStartError(f"pulseaudio did not come up within 15 s:\n{daemon.log_tail()}")
            time.sleep(0.05)
        # An idle null sink renders in blocks of its maximum latency (2 s), and a sink input that
        # connects meanwhile waits for the block to end. A low-latency reader on each monitor for the
        # whole session keeps the blocks at 5 ms; the first 2 s block has to run out once.
        started = time.monotonic()
        parec = shutil.which("parec")
        if not parec:
            raise PulseStartError("parec is missing: install pulseaudio-utils")
        for name in SINKS:
            daemon.keepers.append(subprocess.Popen(
                [parec, "--server", daemon.server, "-d", name + ".monitor", "--latency-msec=5", "--raw"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent))
        time.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
        return daemon
    except BaseException:
        stop_pulse(daemon)
        raise


@contextmanager
def running_pulse(high_priority: bool = False) -> Iterator[PulseDaemon]:
    """``start_pulse`` for a pytest fixture: a daemon that does not come up fails the test with its reason
    and log (no traceback of ours); the daemon is stopped on the way out."""
    import pytest   # only here: benchmarks/audio.py uses this module without pytest
    try:
        daemon = start_pulse(high_priority)
    except PulseStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield daemon
    finally:
        stop_pulse(daemon)


def stop_pulse(daemon: PulseDaemon) -> None:
    for keeper in daemon.keepers:
        stop_process(keeper, timeout=3)
    stop_process(daemon.process)
    shutil.rmtree(daemon.runtime, ignore_errors=True)
