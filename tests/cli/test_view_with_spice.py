"""`kvmfr-view` as a person starts it: the window on the agent's frames, keyboard to a real QEMU over SPICE.

Keys typed into the real window (xdotool, XTEST) must reach QEMU's input layer (its trace), which proves
the wiring CLI -> SPICE thread -> InputController -> window hook.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from tests.support.agent import start_agent
from tests.support.process import stop_process
from tests.support.vm import start_qemu


def xdotool(xserver, *args: str) -> str:
    if shutil.which("xdotool") is None:
        pytest.fail("xdotool is not installed: run `scripts/setup.sh test`")
    return subprocess.run(["xdotool", *args], env=xserver.env(), capture_output=True, text=True,
                          timeout=20).stdout.strip()


def test_keys_typed_into_the_viewer_reach_qemu(xserver, shm_path, tmp_path):
    vm = start_qemu(tmp_path / "qemu", name="viewer-cli")
    agent = start_agent(shm_path, (320, 240), log=tmp_path / "agent.log")
    viewer = None
    try:
        viewer = subprocess.Popen(
            [sys.executable, "-m", "kvmfr_client.cli.view", "--shm", str(shm_path), "-v", "--exit-after", "60",
             "spice:host=127.0.0.1", f"spice:port={vm.port}", "win:size=320x240"],
            env=xserver.env(), stderr=subprocess.PIPE, text=True)
        connected = False
        deadline = time.monotonic() + 30
        while not connected and time.monotonic() < deadline:
            line = viewer.stderr.readline()
            assert line, "the viewer exited before connecting to SPICE"
            connected = "SPICE connected" in line
        assert connected
        wid = ""
        while not wid and time.monotonic() < deadline:
            wid = xdotool(xserver, "search", "--name", "^kvmfr-view").split("\n")[0]
        assert wid, "no viewer window"
        xdotool(xserver, "windowfocus", "--sync", wid)
        vm.trace.mark()
        time.sleep(0.3)
        xdotool(xserver, "key", "--delay", "30", "a", "Up", "ctrl+c")
        events = vm.trace.take(count=8, timeout=10)
        keys = [e for e in events if e[0] == "key"]
        assert keys[:6] == [("key", "a", True), ("key", "a", False), ("key", "up", True), ("key", "up", False),
                            ("key", "ctrl", True), ("key", "c", True)], keys
        # xdotool lets go of a chord's keys in its own order; both releases must arrive.
        assert sorted(keys[6:8]) == [("key", "c", False), ("key", "ctrl", False)], keys
    finally:
        if viewer is not None:
            stop_process(viewer, timeout=15)
        stop_process(agent)
        vm.stop()
    assert viewer.returncode == 0
