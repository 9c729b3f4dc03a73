"""A private set of configuration locations: HOME, XDG_CONFIG_HOME and the /etc stand-in
(KVMFR_SYSCONFDIR) all under the test's temporary directory, so no real configuration leaks in."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvmfr_client.config import exits


@dataclass
class Locations:
    etc: Path
    home: Path
    xdg: Path

    @property
    def system(self) -> Path:          # /etc/looking-glass-client.ini
        return self.etc / "looking-glass-client.ini"

    @property
    def home_dotfile(self) -> Path:    # ~/.looking-glass-client.ini
        return self.home / ".looking-glass-client.ini"

    @property
    def xdg_lg(self) -> Path:          # $XDG_CONFIG_HOME/looking-glass/client.ini
        return self.xdg / "looking-glass" / "client.ini"

    @property
    def ours(self) -> Path:            # $XDG_CONFIG_HOME/kvmfr-client/client.ini
        return self.xdg / "kvmfr-client" / "client.ini"

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.xdg), "KVMFR_SYSCONFDIR": str(self.etc)}

    def write(self, path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@pytest.fixture
def places(tmp_path, monkeypatch) -> Locations:
    loc = Locations(tmp_path / "etc", tmp_path / "home", tmp_path / "home" / ".config")
    for path in (loc.etc, loc.home, loc.xdg):
        path.mkdir(parents=True, exist_ok=True)
    for name, value in loc.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KVMFR_SPICE_PASSWORD", raising=False)
    return loc


@pytest.fixture
def signals_kept():
    """A program's ``main`` (or ``exits.raise_on_stop_signals``) takes SIGINT/SIGTERM over; pytest gets its
    own handlers back afterwards."""
    saved = {s: signal.getsignal(s) for s in exits.STOP_SIGNALS}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
