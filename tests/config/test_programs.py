"""The four programs as a user runs them: --version, --help-options, and bad settings as one error line."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from kvmfr_client.config import lg_b7
from tools import lgdoc

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROGRAMS = {"kvmfr-view": "kvmfr_client.cli.view", "kvmfr-audio": "kvmfr_client.audio.cli",
            "kvmfr-input": "kvmfr_client.spice.cli", "kvmfr-agent": "guest_agent"}


def _run(program: str, *args: str, env=None) -> subprocess.CompletedProcess:
    exe = BIN / program
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", PROGRAMS[program]]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def clean_env(places):
    import os
    return {**os.environ, **places.env()}


@pytest.mark.parametrize("program", list(PROGRAMS))
def test_version(program, clean_env):
    out = _run(program, "--version", env=clean_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"{program} {version('kvmfr-client')} "
                                  "(Looking Glass B7 wire format: LGMP 6, KVMFR 20)")


@pytest.mark.parametrize("program", list(PROGRAMS))
def test_help_options_shows_each_option_once_as_typed(program, clean_env):
    out = _run(program, "--help-options", env=clean_env)
    assert out.returncode == 0, out.stderr
    entries = [line for line in out.stdout.splitlines() if re.match(r"^\w+:\w+=", line)]
    keys = [line.split("=", 1)[0] for line in entries]
    assert entries and len(keys) == len(set(keys))
    for line in entries:
        value = line.split("=", 1)[1].split("  (")[0]
        assert not re.search(r"None|True|False|\(\d|^''$|^\[", value), line


def test_help_options_of_the_viewer(clean_env):
    text = _run("kvmfr-view", "--help-options", env=clean_env).stdout
    assert "win:size=1024x768\n" in text
    assert "win:fullScreen=no  (-F, --fullscreen)" in text
    assert "egl:vsync=no  (--vsync)" in text and "also spelled: opengl:vsync, win:vsync" in text
    assert 'audio:scream=""' in text and "win:position=center" in text
    shm = "/dev/kvmfr0" if Path("/dev/kvmfr0").exists() else "/dev/shm/looking-glass"
    assert f"app:shmFile={shm}  (-f, --shm)" in text


@pytest.mark.parametrize("args, message", [
    (("--scream", "udp://127.0.0.1:0", "--latency", "0"), "audio:latency: must be 1..1000 milliseconds, got 0"),
    (("--scream", "udp://127.0.0.1:0", "--max-latency", "0"), "audio:maxLatency: must be 1..10000 milliseconds"),
    (("--scream", "udp://127.0.0.1:0", "--latency", "soon"), "audio:latency: must be 1..1000 milliseconds, got soon"),
    (("--spice", "nowhere"), "--spice: expected HOST:PORT"),
    (("audio:latncy=5",), "did you mean audio:latency?"),
])
def test_kvmfr_audio_bad_settings_are_one_line_and_exit_2(args, message, clean_env):
    out = _run("kvmfr-audio", *args, env=clean_env)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvmfr-audio: error:") and message in lines[0], lines


def test_kvmfr_audio_reads_the_looking_glass_ini_too(places, clean_env):
    places.write(places.home_dotfile, "[audio]\nlatency=0\n")
    out = _run("kvmfr-audio", "--scream", "udp://127.0.0.1:0", env=clean_env)
    assert out.returncode == 2 and str(places.home_dotfile) in out.stderr, out.stderr


@pytest.mark.parametrize("args, message", [
    (("--fps", "0"), "agent:fps: must be 0.01..1000 frames per second, got 0"),
    (("--size", "big"), "agent:size: expected WIDTHxHEIGHT"),
    (("--format", "YUV"), "agent:format: 'YUV' is not one of"),
])
def test_kvmfr_agent_bad_settings(args, message, clean_env):
    out = _run("kvmfr-agent", *args, env=clean_env)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_kvmfr_input_takes_the_spice_server_from_the_config(places, clean_env):
    """No --spice: spice:host/spice:port from the INI file (a port nothing listens on: exit 1, named)."""
    places.write(places.ours, "[spice]\nhost=127.0.0.1\nport=1\n")
    out = _run("kvmfr-input", "key", "a", env=clean_env)
    assert out.returncode == 1 and "127.0.0.1:1" in out.stderr, out.stderr


def test_the_looking_glass_users_page_is_generated_from_the_registry():
    committed = (REPO / "docs" / "looking-glass-users.md").read_text()
    assert committed == lgdoc.generate(), \
        "docs/looking-glass-users.md is stale: python -m tools.lgdoc > docs/looking-glass-users.md"
    for lg in lg_b7.B7_OPTIONS:
        assert f"| `{lg.key}` |" in committed
