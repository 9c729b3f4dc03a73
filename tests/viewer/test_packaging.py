"""A wheel built from this tree ships the GLSL files where kvmfr_client.viewer.shaders finds them, and the
desktop entry, the icon and the man pages where desktops and man look (share/applications, share/icons,
share/man/man1)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.viewer.helpers import REPO


def test_wheel_ships_every_shader(tmp_path):
    src = tmp_path / "src"
    # build from a copy so the checkout gets no build/ folder
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in ("native", "kvmfr_client", "guest_agent", "shaders", "data", "docs/man"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "dist"), "-q"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if "/data/share/kvmfr-client/shaders/" in n}
    wanted = {p.name for p in (REPO / "shaders").iterdir() if p.suffix in (".glsl", ".vert", ".frag")}
    assert wanted and shipped == wanted, f"missing from the wheel: {sorted(wanted - shipped)}"
    assert any(n.endswith("kvmfr_client/viewer/shaders.py") for n in names)
    data = {n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n}
    assert "share/applications/kvmfr-view.desktop" in data
    from kvmfr_client.viewer import icon
    for size in icon.SIZES:
        assert f"share/icons/hicolor/{size}x{size}/apps/kvmfr-view.png" in data, size
    assert "share/icons/hicolor/scalable/apps/kvmfr-view.svg" in data
    man = {Path(n).name for n in data if n.startswith("share/man/man1/")}
    assert man == {p.name for p in (REPO / "docs" / "man").glob("*.1")} and "kvmfr-view.1" in man, man
