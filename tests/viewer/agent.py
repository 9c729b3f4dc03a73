"""Run the real guest agent and the real viewer (as users do) for integration tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.support.agent import start_agent  # noqa: F401  (the viewer tests start it from here)
from tests.support.process import stop_process as stop  # noqa: F401
from tests.support.process import wait_for
from tests.viewer.helpers import REPO


class ViewerRun:
    """``kvmfr-view`` in a subprocess with --exit-after, --stats-json and --snapshot."""

    def __init__(self, xserver, tmp: Path, shm: Path, seconds: float, *options: str, flags: tuple = ()):
        tmp.mkdir(parents=True, exist_ok=True)
        self.stats_path = tmp / "stats.json"
        self.snap_path = tmp / "snapshot.npy"
        cmd = [sys.executable, "-m", "kvmfr_client.cli.view", "--shm", str(shm), "--exit-after", str(seconds),
               "--stats-json", str(self.stats_path), "--snapshot", str(self.snap_path),
               *flags, *options]
        env = xserver.env(XDG_CONFIG_HOME=str(tmp / "xdg"))
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.seconds = seconds

    def __enter__(self) -> "ViewerRun":
        return self

    def __exit__(self, *exc) -> None:
        """Kill the viewer if the test left it running (it failed before :meth:`finish`)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def finish(self) -> tuple[dict, np.ndarray]:
        """Close the window now (SIGTERM: it still writes its stats and snapshot) and collect them."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> tuple[dict, np.ndarray]:
        try:
            out, _ = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise AssertionError(f"viewer did not exit after --exit-after {self.seconds}:\n{out[-3000:]}")
        assert self.proc.returncode == 0, f"viewer exited with {self.proc.returncode}:\n{out[-3000:]}"
        self.output = out
        return json.loads(self.stats_path.read_text()), np.load(self.snap_path)


def frame_subscribers(shm: Path) -> int:
    """How many clients are subscribed to the frame queue of the live session at ``shm``."""
    import kvmfr_client
    from kvmfr_client.core import errors
    from kvmfr_client.core.native import lib
    with kvmfr_client.open(str(shm)) as probe:
        try:
            probe.wait_connected(2)
        except errors.HostNotRunning:      # the agent is still starting
            return 0
        # LGMP keeps the subscribed-clients bitmask in the high half of `subs`: bits 63..32 of LGMP 6's u64,
        # bits 31..16 of LGMP 12's u32
        subs = probe.queue_stats(lib.LGMP_Q_FRAME)["subs"]
        if probe.host.lgmp_version == lib.LGMP12_PROTOCOL_VERSION:
            return bin((subs >> 16) & 0xFFFF).count("1")
        return bin(subs >> 32).count("1")


def wait_viewer_watching(shm: Path, timeout: float = 40) -> None:
    """Block until a client other than our probe is subscribed to the current session (the viewer)."""
    wait_for(lambda: frame_subscribers(shm) >= 2, timeout, "the viewer to subscribe to the host's frames")


def watch(xserver, tmp: Path, shm: Path, seconds: float, *options: str) -> tuple[dict, np.ndarray]:
    """Run the viewer until it has watched the host at ``shm`` for ``seconds``; its (stats, snapshot)."""
    with ViewerRun(xserver, tmp, shm, 120.0, *options) as viewer:
        wait_viewer_watching(shm)
        time.sleep(seconds)
        return viewer.finish()
