"""``kvmfr-vm demo --no-viewer --seconds N``: the product's tiny guest boots, its own agent (started without
--shm: it finds its IVSHMEM device by itself) draws the test pattern, which the host's headless reader verifies;
a key sent over the VM's SPICE socket reaches the guest (the demo prints it from the guest's console); Ctrl+C
stops the VM and leaves no process, socket or shared-memory file behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.process import stop_process, wait_for
from tests.vm.agent_guest import CACHE_HOME

pytestmark = pytest.mark.slow


def test_demo_shows_the_guest_and_ctrl_c_leaves_nothing(vm_env):
    env = dict(vm_env, XDG_CACHE_HOME=str(CACHE_HOME))   # the guest image the other VM tests use
    name = f"kvd{os.getpid()}"
    shm, scream = Path(f"/dev/shm/{name}-0"), Path(f"/dev/shm/{name}-scream")
    rundir = Path(vm_env["XDG_RUNTIME_DIR"]) / "kvmfr-vm" / name
    demo = subprocess.Popen([sys.executable, "-m", "kvmfr_client.vm.cli", "demo", "--no-viewer", "--seconds", "240",
                             "--size", "640x480", "--name", name], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader_thread = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader_thread.start()
    pid = 0
    try:
        wait_for(lambda: (rundir / "qemu.pid").exists() or demo.poll() is not None, 300, "the demo VM to start")
        assert demo.poll() is None, "".join(lines)
        pid = int((rundir / "qemu.pid").read_text())
        got = subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--headless", "--frames", "30", "--json",
                              "-f", str(shm), "--timeout", "150"], capture_output=True, text=True, timeout=200,
                             env=vm_env)
        assert got.returncode == 0, f"{got.stdout[-1500:]}\n{got.stderr[-1000:]}\n{''.join(lines)}"
        frames = json.loads(got.stdout)
        assert frames["frames"] == 30 and frames["pattern_errors"] == 0
        assert (frames["width"], frames["height"]) == (640, 480)
        assert frames["host"]["os"].startswith("Linux ") and frames["host"]["os"] != f"Linux {os.uname().release}"

        # a key typed over SPICE arrives in the guest, which says so on its console, which the demo prints
        wait_for(lambda: any("guest: keys:" in line for line in lines), 60, "the guest's key printer")
        sent = subprocess.run([sys.executable, "-m", "kvmfr_client.spice.cli", "--spice", f"unix:{rundir / 'spice.sock'}",
                               "key", "a"], capture_output=True, text=True, timeout=60, env=vm_env)
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: any(line.strip() == f"{name}: guest: key 30 down" for line in lines), 30,
                 f"KEY_A in the guest:\n{''.join(lines)}")

        demo.send_signal(signal.SIGINT)          # Ctrl+C
        assert demo.wait(30) == 0, "".join(lines)
        reader_thread.join(5)
        assert not shm.exists() and not scream.exists() and not rundir.exists(), "".join(lines)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, "QEMU to end")
    finally:
        if demo.poll() is None:
            stop_process(demo, read_output=False)
        if pid and Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
        for path in (shm, scream):
            path.unlink(missing_ok=True)
