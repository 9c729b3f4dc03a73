"""Secrets and permissions (issue 12, part 7).

The SPICE password (the contents of ``spice:passwordFile``, or ``$KVMFR_SPICE_PASSWORD``) is never
printed: each program runs with a recognisable password and -v against a SPICE server that speaks the
real link handshake, and every output (stdout, stderr, the window's --stats-json, --help-options, error
lines) is searched for it. The agent's shared-memory file is 0660 whatever the umask; the viewer warns
once about a world-writable one."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time

import pytest

from kvmfr_client.config import exits
from tests.audio.spice_server import FakeSpiceServer
from tests.cli.programs import Running, clean_env, command, one_line, run
from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for

PASSWORD = "Sekr1t-pässword-4217"


def _never_shown(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text, text[-2000:]
        assert PASSWORD.encode().hex() not in text and PASSWORD[:10] not in text, text[-2000:]


@pytest.fixture
def spice():
    with FakeSpiceServer([]) as server:
        yield server


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "spice-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def test_kvmfr_input_verbose_never_shows_the_password(spice, password_file, tmp_path):
    for how, env_extra, args in (("file", {}, ["--password-file", str(password_file)]),
                                 ("environment", {"KVMFR_SPICE_PASSWORD": PASSWORD}, [])):
        out = run("kvmfr-input", "-v", "--spice", f"127.0.0.1:{spice.port}", *args, "key", "a",
                  env=clean_env(tmp_path, **env_extra))
        assert out.returncode == 0, (how, out.stderr)
        assert "linked 127.0.0.1" in out.stderr, (how, out.stderr)   # -v logged the conversation
        _never_shown(out.stdout, out.stderr)


def test_the_window_with_verbose_logs_and_stats_never_shows_the_password(spice, password_file, xserver, tmp_path,
                                                                         shm_path):
    stats = tmp_path / "stats.json"
    viewer = Running("kvmfr-view", "-vv", "--shm", str(shm_path), "--stats-json", str(stats), "--exit-after", "4",
                     "win:size=320x240", "spice:host=127.0.0.1", f"spice:port={spice.port}",
                     f"spice:passwordFile={password_file}",
                     env=clean_env(tmp_path, DISPLAY=xserver.display, KVMFR_SPICE_PASSWORD=PASSWORD))
    try:
        assert viewer.proc.wait(60) == 0, viewer.stderr
    finally:
        viewer.kill()
    assert 1 in spice.linked, "the window never linked to the SPICE server: the password was not used"
    _never_shown(viewer.stdout, viewer.stderr, stats.read_text())


def test_kvmfr_audio_verbose_never_shows_the_password(spice, password_file, tmp_path):
    audio = Running("kvmfr-audio", "-v", "--spice", f"127.0.0.1:{spice.port}", "--spice-password-file",
                    str(password_file), "--stats", "0.2", env=clean_env(tmp_path))
    try:
        wait_for(lambda: 5 in spice.linked or audio.proc.poll() is not None, 30, "kvmfr-audio to link playback")
        audio.wait_for("stats:", timeout=30)
        code = audio.stop(signal.SIGTERM) if audio.proc.poll() is None else audio.proc.returncode
    finally:
        audio.kill()
    assert code == exits.OK and 5 in spice.linked, audio.stderr   # the playback channel linked with it
    _never_shown(audio.stdout, audio.stderr)


def test_help_options_and_config_errors_never_show_the_password(password_file, tmp_path):
    ini = tmp_path / "client.ini"
    ini.write_text(f"[spice]\npasswordFile={password_file}\n")
    env = clean_env(tmp_path, KVMFR_SPICE_PASSWORD=PASSWORD)
    shown = run("kvmfr-view", "-C", str(ini), "--help-options", env=env)
    assert shown.returncode == 0
    bad = run("kvmfr-view", "-C", str(ini), "spice:port=99999", env=env)
    assert bad.returncode == exits.USAGE
    unreadable = run("kvmfr-input", "--password-file", str(tmp_path), "--spice", "127.0.0.1:1", "key", "a", env=env)
    assert unreadable.returncode != 0 and "Traceback" not in unreadable.stderr
    _never_shown(shown.stdout, shown.stderr, bad.stdout, bad.stderr, unreadable.stdout, unreadable.stderr)


# -- permissions -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_the_agent_creates_its_file_0660_whatever_the_umask(umask, tmp_path, shm_path):
    out = run_with_umask(umask, tmp_path, shm_path)
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(shm_path.stat().st_mode) == 0o660


def run_with_umask(umask: int, tmp_path, shm_path):
    return subprocess.run(command("kvmfr-agent", "--shm", str(shm_path), "--size", "320x240", "--frames", "1",
                                  "--always"),
                          capture_output=True, text=True, timeout=60, env=clean_env(tmp_path),
                          preexec_fn=lambda: os.umask(umask))


def test_the_viewer_warns_once_about_a_world_writable_file(tmp_path, shm_path):
    agent = start_agent(shm_path, size=(320, 240), fps=60)
    try:
        wait_for(lambda: shm_path.exists() and shm_path.stat().st_size > 0, 30, "the agent's file")
        shm_path.chmod(0o666)
        out = run("kvmfr-view", "--headless", "--json", "--shm", str(shm_path), "--frames", "5", "--timeout", "30",
                  env=clean_env(tmp_path))
        shm_path.chmod(0o660)
        quiet = run("kvmfr-view", "--headless", "--json", "--shm", str(shm_path), "--frames", "5", "--timeout", "30",
                    env=clean_env(tmp_path))
    finally:
        stop_process(agent)
    assert out.returncode == 0, out.stderr
    line = one_line(out.stderr)
    assert line.startswith("kvmfr-view: warning: ") and str(shm_path) in line and "0666" in line, line
    assert json.loads(out.stdout)["frames"] == 5
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


WRITABLE = "is writable by every user"


def _appears(shm_path, mode: int) -> None:
    """The file appears after the viewer started, as QEMU makes it: sized (16 MiB, enough for 320x240 frames)
    and with ``mode`` whatever the umask; then a host writes into it."""
    fd = os.open(shm_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, 16 << 20)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


@pytest.mark.parametrize("mode", [0o666, 0o660], ids=["0666", "0660"])
def test_headless_checks_a_file_that_appears_later(mode, tmp_path, shm_path):
    """The check at start finds nothing; the one when the reader first maps the file warns (once) about a
    0666 file and says nothing about a 0660 one; the frames are read either way."""
    reader = Running("kvmfr-view", "-v", "--headless", "--json", "--shm", str(shm_path), "--frames", "20",
                     "--timeout", "60", env=clean_env(tmp_path))
    agent = None
    try:
        reader.wait_for("reading 20 frames", timeout=60)   # said after the start-up check
        assert not shm_path.exists()
        _appears(shm_path, mode)
        agent = start_agent(shm_path, size=(320, 240), fps=60)
        code = reader.proc.wait(90)
        for t in reader._threads:
            t.join(5)
    finally:
        reader.kill()
        if agent is not None:
            stop_process(agent)
    assert code == exits.OK, reader.stderr
    assert "Traceback" not in reader.stderr, reader.stderr
    warnings = [line for line in reader.stderr.splitlines() if WRITABLE in line]
    if mode == 0o666:
        assert len(warnings) == 1 and str(shm_path) in warnings[0] and "0666" in warnings[0], reader.stderr
    else:
        assert warnings == [], warnings
    assert json.loads(reader.stdout)["frames"] == 20
    assert stat.S_IMODE(shm_path.stat().st_mode) == mode   # the viewer only warns; it changes nothing


def test_the_window_checks_a_file_that_appears_later(xserver, tmp_path, shm_path):
    """The window, open and waiting for a missing file: when QEMU creates it 0666, one warning, once."""
    window = Running("kvmfr-view", "-v", "--shm", str(shm_path), "spice:enable=no", "win:size=320x240",
                     env=clean_env(tmp_path, DISPLAY=xserver.display))
    agent = None
    try:
        window.wait_for("OpenGL:", timeout=60)
        time.sleep(0.5)
        assert WRITABLE not in window.stderr
        _appears(shm_path, 0o666)
        agent = start_agent(shm_path, size=(320, 240), fps=30)
        window.wait_for(WRITABLE, timeout=30)
        window.wait_for("connected", timeout=30)
        time.sleep(1.0)   # frames flow: no second warning
        code = window.stop(signal.SIGTERM)
    finally:
        window.kill()
        if agent is not None:
            stop_process(agent)
    assert code == exits.OK and "Traceback" not in window.stderr, window.stderr
    assert sum(WRITABLE in line for line in window.stderr.splitlines()) == 1, window.stderr
