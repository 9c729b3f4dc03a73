"""After a plain (non-editable) install, the programs work when started inside a source checkout.

The checkout here is a copy of the files git knows (what `git clone` gives: no native helper built in
it), so a child process that imported the checkout's `kvmfr_client` instead of the installed one would
fail with "the native helper is not built". The working tree itself cannot show that: its editable
install built the helper in place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.process import stop_process, wait_for

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _copy_checkout(dst: Path) -> None:
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in names:
        src = REPO / name
        if name and not name.startswith("shared/") and src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, checkout): a wheel of the working tree installed into a fresh venv.

    The fresh venv gets the dependencies through a .pth line naming the test venv's site-packages
    (a plain path: the editable install's own .pth there is not run), so nothing is downloaded."""
    root = tmp_path_factory.mktemp("installed")
    checkout, wheels, venv = root / "checkout", root / "wheels", root / "venv"
    _copy_checkout(checkout)
    assert not list((checkout / "kvmfr_client" / "core").glob("_native*")), "the copy must not hold a built helper"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(checkout)], check=True, capture_output=True, timeout=300)
    base_python = Path(sys._base_executable)
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps-from-test-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                    *map(str, wheels.glob("*.whl"))], check=True, capture_output=True, timeout=120)
    # The wheel build leaves build/ in the copy; the helper it compiled is only in the venv.
    assert not list((checkout / "kvmfr_client" / "core").glob("_native*"))
    return venv / "bin", checkout


def _env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without anything that would choose the import path for the programs."""
    base = dict(os.environ) if base is None else base
    return {k: v for k, v in base.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH", "PYTHONHOME")}


def _native_paths(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {line.split(None, 5)[5] for line in maps.splitlines() if "_native" in line and len(line.split(None, 5)) == 6}


def test_headless_reader_in_the_checkout_reads_the_installed_agent(installed, tmp_path, shm_path):
    bin_dir, checkout = installed
    agent = subprocess.Popen([str(bin_dir / "kvmfr-agent"), "--shm", str(shm_path), "--size", "320x240",
                              "--fps", "60"], cwd=checkout, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _native_paths(agent.pid) or agent.poll() is not None, 20, "the agent to load its helper")
        assert agent.poll() is None, stop_process(agent)
        helper = _native_paths(agent.pid)
        assert helper and all(p.startswith(str(bin_dir.parent)) for p in helper), helper
        out = subprocess.run([str(bin_dir / "kvmfr-view"), "--shm", str(shm_path), "--headless", "--frames", "30",
                              "--json", "--timeout", "20"], cwd=checkout, env=_env(), capture_output=True, text=True,
                             timeout=60)
    finally:
        log = stop_process(agent)
    assert out.returncode == 0, out.stdout + out.stderr + "\nagent:\n" + log
    data = json.loads(out.stdout)
    assert data["frames"] == 30 and data["pattern_errors"] == 0 and data["host"]["version"] == "kvmfr-agent 0.1"


def test_benchmark_in_the_checkout_starts_installed_children(installed, xserver, tmp_path):
    """The benchmark starts its agent and viewer with `python -m`: both must import the installed package."""
    bin_dir, checkout = installed
    report_path = tmp_path / "bench.json"
    proc = subprocess.run([str(bin_dir / "kvmfr-view"), "--benchmark", "--duration", "2", "--warmup", "1",
                           "--size", "640x360", "--fps", "30", "--json", str(report_path)],
                          cwd=checkout, env=_env(xserver.env()),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "native helper" not in proc.stderr
    frames = json.loads(report_path.read_text())["viewers"][0]["frames"]
    assert frames["produced"] > 0 and frames["shown"] > 0, frames
