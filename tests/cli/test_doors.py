"""Every bad input of issue 12, as a user meets it: one line on stderr that names what is wrong, a
documented exit status (kvmfr_client.config.exits, README "Exit statuses"), never a traceback; with
``--json`` the headless reader and ``--inspect`` still print one valid JSON object with an ``error``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from kvmfr_client.config import exits
from tests.cli.programs import clean_env, one_line, run
from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for

USAGE, FAILED, SHM = exits.USAGE, exits.FAILED, exits.SHM


def _no_internals(line: str) -> None:
    """Internal values stay in the debug log: no `[field = value, limit N]` dump, no errno, no int() text."""
    assert not re.search(r"\[[\w.]+ = -?\d+", line), line
    assert "limit" not in line and "Errno" not in line and "invalid literal" not in line, line


# -- the shared-memory path: headless, --inspect ---------------------------------------------------------------

def _bad_path(kind: str, tmp: Path) -> str:
    if kind == "directory":
        (tmp / "dir").mkdir()
        return str(tmp / "dir")
    if kind == "empty file":
        (tmp / "empty").write_bytes(b"")
        return str(tmp / "empty")
    if kind == "1 KiB file":
        (tmp / "small").write_bytes(bytes(1024))
        return str(tmp / "small")
    if kind == "FIFO":
        os.mkfifo(tmp / "fifo")
        return str(tmp / "fifo")
    if kind == "missing":
        return str(tmp / "missing")
    return kind   # /dev/null, /dev/zero, /proc/self/mem


# What each may end with: a path that can never hold shared memory is status 3 (SHM); a missing file is
# waited on, so a reader runs out of time (1). An empty or too small file is status 3 today; once the
# session waits for it to grow, like a missing one, it is 1: both say the path.
PATHS = {"directory": {SHM}, "empty file": {SHM, FAILED}, "1 KiB file": {SHM, FAILED}, "FIFO": {SHM},
         "/dev/null": {SHM}, "/dev/zero": {SHM}, "/proc/self/mem": {SHM, FAILED}, "missing": {FAILED}}


@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
@pytest.mark.parametrize("kind", list(PATHS))
def test_headless_on_a_bad_shared_memory_path(kind, as_json, tmp_path):
    path = _bad_path(kind, tmp_path)
    out = run("kvmfr-view", "--headless", "--shm", path, "--frames", "2", "--timeout", "1",
              *(["--json"] if as_json else []), env=clean_env(tmp_path), timeout=30)   # a FIFO must not block
    assert out.returncode in PATHS[kind], (out.returncode, out.stderr)
    line = one_line(out.stderr)
    assert line.startswith("kvmfr-view: ") and path in line, line
    _no_internals(line)
    if as_json:
        data = json.loads(out.stdout)
        assert data["error"] and data["frames"] == 0 and "state" in data, data
    elif out.returncode == SHM:
        assert out.stdout == "", out.stdout   # nothing was read: the one line says it all


@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
@pytest.mark.parametrize("kind", list(PATHS))
def test_inspect_on_a_bad_file(kind, as_json, tmp_path):
    path = _bad_path(kind, tmp_path)
    out = run("kvmfr-view", "--inspect", path, *(["--json"] if as_json else []), env=clean_env(tmp_path),
              timeout=30)
    assert out.returncode == SHM, (out.returncode, out.stderr)
    line = one_line(out.stderr)
    assert path in line, line
    _no_internals(line)
    if as_json:
        data = json.loads(out.stdout)
        assert data["file"] == path and path in data["error"], data


def test_inspect_of_a_dump_without_a_host(tmp_path):
    """A file of the right size that holds no Looking Glass header: said, status 3."""
    dump = tmp_path / "zeros.dump"
    dump.write_bytes(bytes(1 << 20))
    out = run("kvmfr-view", "--inspect", str(dump), "--json", env=clean_env(tmp_path))
    assert out.returncode == SHM and json.loads(out.stdout)["error"], out.stderr
    one_line(out.stderr)


@pytest.mark.slow
def test_headless_frames_larger_than_the_file_are_refused_with_the_size_it_needs(tmp_path, shm_path):
    """The agent at 3840x2160 into a 16 MiB file: frames arrive cut short. No IndexError: one line naming the
    file and the size it needs (128 MiB), exit 1, the JSON counts them."""
    with open(shm_path, "wb") as f:
        f.truncate(16 << 20)
    agent = start_agent(shm_path, size=(3840, 2160), fps=5, cursor=False)
    try:
        out = run("kvmfr-view", "--headless", "--json", "--shm", str(shm_path), "--frames", "2", "--timeout", "60",
                  env=clean_env(tmp_path), timeout=90)
    finally:
        stop_process(agent)
    assert out.returncode == FAILED, out.stderr
    line = one_line(out.stderr)
    assert str(shm_path) in line and "128 MiB" in line and "3840x2160" in line, line
    data = json.loads(out.stdout)
    assert data["truncated_frames"] == data["frames"] == 2 and data["pattern_errors"] == 0, data
    assert data["error"] == line.removeprefix("kvmfr-view: ")


def test_headless_reads_a_good_file_with_no_error(tmp_path, shm_path):
    """The same doors on a good file: exit 0, no stderr line, "error": null."""
    agent = start_agent(shm_path, size=(320, 240), fps=60)
    try:
        out = run("kvmfr-view", "--headless", "--json", "--shm", str(shm_path), "--frames", "10", "--timeout", "30",
                  env=clean_env(tmp_path))
    finally:
        stop_process(agent)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    data = json.loads(out.stdout)
    assert data["frames"] == 10 and data["error"] is None and data["pattern_errors"] == 0, data


def test_the_window_on_a_directory_is_one_line_and_status_3(xserver, tmp_path):
    out = run("kvmfr-view", "--shm", str(tmp_path), "--exit-after", "5", "spice:enable=no",
              env=clean_env(tmp_path, DISPLAY=xserver.display), timeout=60)
    assert out.returncode == SHM, out.stderr
    line = one_line(out.stderr)
    assert str(tmp_path) in line, line
    _no_internals(line)


# -- option values the issue named (every numeric option is walked in tests/config/test_option_ranges.py) ---

@pytest.mark.parametrize("item, words", [
    ("app:pollUs=-5", ["app:pollUs", "1..1000000"]),
    ("app:pollUs=99999999999", ["app:pollUs", "1..1000000"]),
    ("win:size=99999x99999", ["win:size", "16384"]),
    ("win:size=70000x600", ["win:size", "16384"]),
    ("win:size=0x600", ["win:size"]),
    ("win:position=99999,0", ["win:position", "-32768..32767"]),
    ("win:position=left", ["win:position", "X,Y"]),
])
def test_window_option_values_are_refused_before_any_window(item, words, tmp_path):
    """No display is set: the value is refused when the command line is read, not by X later."""
    out = run("kvmfr-view", item, env=clean_env(tmp_path))
    assert out.returncode == USAGE, out.stderr
    line = one_line(out.stderr)
    assert all(w in line for w in words), line
    _no_internals(line)


@pytest.mark.parametrize("args, words", [
    (("--fps", "0"), ["agent:fps", "0.01..1000"]),
    (("--fps", "-30"), ["agent:fps", "0.01..1000"]),
    (("--fps", "1e12"), ["agent:fps", "0.01..1000"]),
    (("--size", "junk"), ["agent:size", "WIDTHxHEIGHT"]),
    (("--size", "100000x100"), ["agent:size", "16384"]),
    (("--size", "8x8"), ["agent:size", "test pattern"]),
])
def test_agent_option_values(args, words, tmp_path):
    out = run("kvmfr-agent", *args, "--shm", str(tmp_path / "never-created"), env=clean_env(tmp_path))
    assert out.returncode == USAGE, out.stderr
    line = one_line(out.stderr)
    assert all(w in line for w in words), line
    assert not (tmp_path / "never-created").exists()


# -- the agent's other doors ------------------------------------------------------------------------------------

def test_agent_x11_source_without_a_display(tmp_path):
    out = run("kvmfr-agent", "--source", "x11", "--shm", str(tmp_path / "shm"), env=clean_env(tmp_path))
    assert out.returncode == FAILED, out.stderr
    line = one_line(out.stderr)
    assert "no X display" in line and "DISPLAY" in line and "--source testpattern" in line, line


def test_agent_x11_source_with_a_display_that_is_not_there(tmp_path):
    out = run("kvmfr-agent", "--source", "x11", "--shm", str(tmp_path / "shm"),
              env=clean_env(tmp_path, DISPLAY=":9999"))
    assert out.returncode == FAILED, out.stderr
    line = one_line(out.stderr)
    assert ":9999" in line and "DISPLAY" in line, line


def _agent_path(kind: str, tmp: Path) -> tuple[str, str]:
    """(the --shm value, a word the one line must hold)."""
    if kind == "directory":
        return str(tmp), "is a folder"
    if kind == "FIFO":
        os.mkfifo(tmp / "fifo")
        return str(tmp / "fifo"), "FIFO"
    if kind == "missing folder":
        return str(tmp / "no" / "such" / "shm"), f"the folder {tmp / 'no' / 'such'} does not exist"
    if kind == "unwritable file":
        # /sys/kernel/notes is 0444 and sysfs enforces it even for root (access() alone would say yes to root)
        if not Path("/sys/kernel/notes").exists():
            pytest.fail("/sys/kernel/notes is missing: this test needs a Linux sysfs mounted at /sys")
        return "/sys/kernel/notes", "not writable"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["directory", "FIFO", "missing folder", "unwritable file"])
def test_agent_on_a_path_it_cannot_write(kind, tmp_path):
    path, words = _agent_path(kind, tmp_path)
    out = run("kvmfr-agent", "--shm", path, "--frames", "1", env=clean_env(tmp_path), timeout=30)
    assert out.returncode == SHM, out.stderr
    line = one_line(out.stderr)
    assert line.startswith("kvmfr-agent: ") and path in line and words in line, line
    _no_internals(line)


def test_agent_sizes_an_existing_file_too_small_for_a_session(tmp_path):
    """The agent is the producer: a 1 KiB file (nobody can be using it) gets the size its frames need, and the
    frames are posted (tests/guest_agent/test_shm_sizing.py has the refusals and the file it leaves alone)."""
    small = tmp_path / "small"
    small.write_bytes(bytes(1024))
    out = run("kvmfr-agent", "--shm", str(small), "--size", "320x240", "--frames", "1", "--always",
              env=clean_env(tmp_path), timeout=30)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert small.stat().st_size == 16 << 20


def test_viewer_flags_of_its_own_are_range_checked(tmp_path):
    for args, words in ((("--headless", "--frames", "-3"), "--frames"), (("--headless", "--timeout", "inf"), "--timeout"),
                        (("--exit-after", "soon"), "--exit-after")):
        out = run("kvmfr-view", *args, env=clean_env(tmp_path))
        assert out.returncode == USAGE, out.stderr
        assert words in one_line(out.stderr)


def test_agent_runs_after_the_refusals(tmp_path, shm_path):
    """The good door still opens: a valid command line posts frames (the agent waits for no client here)."""
    out = run("kvmfr-agent", "--shm", str(shm_path), "--size", "320x240", "--frames", "3", "--always",
              env=clean_env(tmp_path), timeout=60)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    wait_for(shm_path.exists, 1, "the shared-memory file")


# -- the SPICE password file ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["folder", "not UTF-8", "missing"])
def test_a_password_file_that_cannot_be_read_is_one_line(kind, tmp_path):
    path = tmp_path / "pw"
    if kind == "folder":
        path.mkdir()
    elif kind == "not UTF-8":
        path.write_bytes(b"s3cr\xffet\n")
    out = run("kvmfr-input", "--password-file", str(path), "--spice", "127.0.0.1:1", "key", "a",
              env=clean_env(tmp_path))
    assert out.returncode == FAILED, out.stderr
    line = one_line(out.stderr)
    assert "spice:passwordFile" in line and str(path) in line and "s3cr" not in line, line
    _no_internals(line)
