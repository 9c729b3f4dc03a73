"""``kvmfr-agent install-service``: the two systemd units it writes (read back as systemd would: parsed, and
checked by ``systemd-analyze verify``), its --dry-run, and one-line refusals. systemd itself is not in the
test guest's initramfs, so the units are not started there: the guest boot in tests/vm/test_lifecycle.py runs
the same command line the unit runs (``-m guest_agent``, its device auto by default in a VM)."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from guest_agent.service import AUDIO_UNIT, VIDEO_UNIT, units
from kvmfr_client.config import exits


def _parse(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=True, interpolation=None)
    cp.optionxform = str
    cp.read_string(text)
    return cp


def test_units_run_the_agent_on_its_device_and_verify(tmp_path):
    made = {u.name: u for u in units(["--source", "x11", "--size", "800x600"], ["--ivshmem", "auto"],
                                     ["DISPLAY=:0", "XAUTHORITY=/home/a b/.Xauthority"], user=False)}
    assert set(made) == {VIDEO_UNIT, AUDIO_UNIT}
    video, audio = _parse(made[VIDEO_UNIT].text), _parse(made[AUDIO_UNIT].text)
    # no --device auto added (the default in a VM): it would override a config file's agent:shmFile
    assert shlex.split(video["Service"]["ExecStart"]) == [sys.executable, "-m", "guest_agent",
                                                          "--source", "x11", "--size", "800x600"]
    assert shlex.split(audio["Service"]["ExecStart"]) == [sys.executable, "-m", "guest_agent", "audio",
                                                          "--ivshmem", "auto"]
    for unit in (video, audio):
        assert unit["Install"]["WantedBy"] == "multi-user.target"
        assert unit["Service"]["Restart"] == "on-failure"
        assert unit["Service"]["RestartPreventExitStatus"] == f"{exits.USAGE} {exits.SHM}"
    # a space in an environment value is quoted as systemd wants it
    assert video["Service"]["Environment"] == 'DISPLAY=:0 "XAUTHORITY=/home/a b/.Xauthority"'
    # --user: the session's target; an explicit --shm is kept as it is
    user = {u.name: _parse(u.text) for u in units(["--shm", "/dev/kvmfr0"], [], [], user=True, audio=False)}
    assert list(user) == [VIDEO_UNIT] and user[VIDEO_UNIT]["Install"]["WantedBy"] == "default.target"
    assert "--device" not in user[VIDEO_UNIT]["Service"]["ExecStart"]

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed (apt-get install systemd): it checks the unit files")
    for u in made.values():
        (tmp_path / u.name).write_text(u.text)
    got = subprocess.run([analyze, "verify", *(str(tmp_path / n) for n in made)], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    assert got.returncode == 0 and "kvmfr" not in got.stderr, got.stderr


def test_install_service_dry_run_and_refusals(tmp_path):
    run = [sys.executable, "-m", "guest_agent"]
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    got = subprocess.run(run + ["install-service", "--user", "--dry-run", "--", "--fps", "30"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert got.returncode == 0, got.stderr
    assert f"# {tmp_path}/systemd/user/{VIDEO_UNIT}\n" in got.stdout
    assert "-m guest_agent --fps 30\n" in got.stdout
    assert got.stdout.endswith("systemctl --user daemon-reload\n"
                               f"systemctl --user enable --now {VIDEO_UNIT} {AUDIO_UNIT}\n")
    assert not (tmp_path / "systemd").exists()          # a dry run touches nothing
    got = subprocess.run(run + ["uninstall-service", "--user", "--dry-run"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert got.returncode == 0 and got.stdout == "systemctl --user daemon-reload\n", got
    for bad in (["--env", "no equals"], ["--audio-args", "'unclosed"], ["--system", "--user"]):
        got = subprocess.run(run + ["install-service", "--dry-run", *bad], capture_output=True, text=True,
                             timeout=60, env=env)
        assert got.returncode == exits.USAGE and got.stderr.count("\n") == 1, (bad, got.stderr)


def test_install_then_uninstall_writes_and_removes_the_units(tmp_path):
    """With a stand-in systemctl (no systemd runs here): the files land in the user's unit folder, then
    daemon-reload and enable --now; uninstall disables them, removes the files and reloads."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n")
    (bin_dir / "systemctl").chmod(0o755)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), PATH=f"{bin_dir}:{os.environ['PATH']}")
    run = [sys.executable, "-m", "guest_agent"]
    got = subprocess.run(run + ["install-service", "--user"], capture_output=True, text=True, timeout=60, env=env)
    assert got.returncode == 0, got.stderr
    folder = tmp_path / "cfg" / "systemd" / "user"
    assert sorted(p.name for p in folder.iterdir()) == sorted([VIDEO_UNIT, AUDIO_UNIT])
    assert "--device" not in (folder / VIDEO_UNIT).read_text()
    got = subprocess.run(run + ["uninstall-service", "--user"], capture_output=True, text=True, timeout=60, env=env)
    assert got.returncode == 0, got.stderr
    assert not list(folder.iterdir())
    assert log.read_text().splitlines() == [
        "--user daemon-reload", f"--user enable --now {VIDEO_UNIT} {AUDIO_UNIT}",
        f"--user disable --now {VIDEO_UNIT} {AUDIO_UNIT}", "--user daemon-reload"]


def test_environment_keeps_dollar_and_execstart_doubles_it():
    """systemd expands % in Environment= but not $: only % is doubled there; ExecStart doubles both."""
    made = {u.name: _parse(u.text) for u in units(["--title", "a$b%c"], [], ["PASS=x$y%z"], user=True,
                                                    audio=False)}
    svc = made[VIDEO_UNIT]["Service"]
    assert svc["Environment"] == "PASS=x$y%%z"
    assert svc["ExecStart"].endswith("--title a$$b%%c")


def test_system_install_writes_audio_only_with_a_sound_server(tmp_path):
    """A root audio unit cannot reach a session's sound server: --system leaves it out (one line says so)
    unless --env PULSE_SERVER=... or --audio-args is given."""
    run = [sys.executable, "-m", "guest_agent", "install-service", "--system", "--dry-run"]
    got = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and AUDIO_UNIT not in got.stdout, got
    assert got.stderr.count("\n") == 1 and "PULSE_SERVER" in got.stderr
    for extra in (["--env", "PULSE_SERVER=tcp:10.0.2.2"], ["--audio-args", "--ivshmem auto"]):
        got = subprocess.run(run + extra, capture_output=True, text=True, timeout=60)
        assert got.returncode == 0 and f"enable --now {VIDEO_UNIT} {AUDIO_UNIT}" in got.stdout, (extra, got)
