"""Screenshots of the viewer's overlay UI for the README, taken from the real viewer under Xvfb::

    .venv/bin/python -m tools.screenshots [--out docs/images]

writes ``waiting.png`` (the status screen for a shared-memory file that does not exist),
``graphs.png`` (the test pattern with the stats panel and the frame timing graphs) and ``help.png``
(the key bindings while ScrollLock is held) and ``settings.png`` (overlay mode, ScrollLock+O, with its
settings panel). Needs Xvfb, xdotool and pillow (the test dependencies).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for
from tests.support.xvfb import start_xvfb

REPO = Path(__file__).resolve().parent.parent
SIZE = (960, 540)


def viewer(xserver, tmp: Path, shm: Path, *options: str, seconds: float = 60.0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kvmfr_client.cli.view", "--shm", str(shm), "--exit-after", str(seconds),
           "--snapshot", str(tmp / "snap.npy"), "--stats-json", str(tmp / "stats.json"),
           f"win:size={SIZE[0]}x{SIZE[1]}", "win:position=0,0", "win:borderless=yes", *options]
    return subprocess.Popen(cmd, cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(proc: subprocess.Popen, tmp: Path, out: Path) -> dict:
    """SIGTERM the viewer (it still draws, snapshots and writes its stats), save the PNG."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    Image.fromarray(np.load(tmp / "snap.npy")[..., :3]).save(out)
    print(f"wrote {out}")
    return json.loads((tmp / "stats.json").read_text())


def xdotool(xserver, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=xserver.env(), capture_output=True, text=True,
                          timeout=10).stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "docs" / "images"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("xdotool") is None:
        print("screenshots: xdotool is needed (apt-get install xdotool)", file=sys.stderr)
        return 2
    xserver = start_xvfb(*SIZE)
    shm = Path(f"/dev/shm/kvmfr-screenshots-{int(time.time())}")
    try:
        # 1. the waiting screen: no shared-memory file yet
        with tempfile.TemporaryDirectory() as d:
            proc = viewer(xserver, Path(d), Path("/dev/shm/looking-glass-screenshot"))
            time.sleep(2.0)
            finish(proc, Path(d), out / "waiting.png")
        # 2. frames with the stats panel and the timing graphs
        agent = start_agent(shm, SIZE, fps=60, cursor=False)
        try:
            with tempfile.TemporaryDirectory() as d:
                proc = viewer(xserver, Path(d), shm, "win:showFPS=yes", "--show-graphs")
                time.sleep(4.0)
                finish(proc, Path(d), out / "graphs.png")
            # 3. help while ScrollLock is held
            with tempfile.TemporaryDirectory() as d:
                proc = viewer(xserver, Path(d), shm)
                found: list[str] = []
                wait_for(lambda: found.append(xdotool(xserver, "search", "--name", "^kvmfr-view")) or found[-1],
                         30, "the viewer window")
                time.sleep(1.0)
                xdotool(xserver, "windowfocus", "--sync", found[-1].split()[0])
                xdotool(xserver, "keydown", "Scroll_Lock")
                time.sleep(1.0)
                stats = finish(proc, Path(d), out / "help.png")
                xdotool(xserver, "keyup", "Scroll_Lock")
                if "help" not in stats.get("overlay", {}):
                    print("screenshots: the help was not shown", file=sys.stderr)
                    return 1
            # 4. overlay mode with the settings panel
            with tempfile.TemporaryDirectory() as d:
                proc = viewer(xserver, Path(d), shm, "win:showFPS=yes")
                found = []
                wait_for(lambda: found.append(xdotool(xserver, "search", "--name", "^kvmfr-view")) or found[-1],
                         30, "the viewer window")
                time.sleep(1.0)
                xdotool(xserver, "windowfocus", "--sync", found[-1].split()[0])
                xdotool(xserver, "keydown", "Scroll_Lock", "key", "o", "keyup", "Scroll_Lock")
                time.sleep(1.0)
                stats = finish(proc, Path(d), out / "settings.png")
                if "settings" not in stats.get("overlay", {}):
                    print("screenshots: overlay mode's settings panel was not shown", file=sys.stderr)
                    return 1
        finally:
            stop_process(agent, timeout=10)
            shm.unlink(missing_ok=True)
    finally:
        xserver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
