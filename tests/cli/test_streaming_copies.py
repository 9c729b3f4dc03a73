"""kvmfr-view's window runs with glibc's streaming copies (kvmfr_client.startup.stream_large_copies); its jobs
and a user's own GLIBC_TUNABLES threshold are left alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kvmfr_client.startup import STREAMING_COPIES
from tests.cli.programs import Running, clean_env

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64" or not (os.confstr("CS_GNU_LIBC_VERSION") or "")
                                .startswith("glibc"), reason="the tunable is x86-64 glibc's")


def _tunables(pid: int) -> str | None:
    """GLIBC_TUNABLES of process ``pid`` as it runs now (an exec replaces the environment it started with)."""
    for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if entry.startswith(b"GLIBC_TUNABLES="):
            return entry.split(b"=", 1)[1].decode()
    return None


def _window(tmp_path, shm_path, xserver, **env) -> Running:
    run = Running("kvmfr-view", "-v", "--shm", str(shm_path), "spice:enable=no", "win:size=320x240",
                  env=clean_env(tmp_path, DISPLAY=xserver.display, **env))
    run.wait_for("OpenGL:", timeout=60)   # the window exists: any exec happened before
    return run


def test_the_window_streams_its_large_copies(xserver, tmp_path, shm_path):
    run = _window(tmp_path, shm_path, xserver)
    try:
        assert _tunables(run.proc.pid) == STREAMING_COPIES
    finally:
        run.kill()


def test_a_users_own_threshold_is_kept(xserver, tmp_path, shm_path):
    own = "glibc.cpu.x86_non_temporal_threshold=0xf000000"
    run = _window(tmp_path, shm_path, xserver, GLIBC_TUNABLES=own)
    try:
        assert _tunables(run.proc.pid) == own
    finally:
        run.kill()


def test_other_tunables_are_added_to_and_only_the_program_itself_is_run_again(monkeypatch):
    # (glibc's loader cuts GLIBC_TUNABLES short in /proc/PID/environ after parsing a list of several, so this
    # one is looked at where the exec is made.)
    import sys
    import types

    from kvmfr_client import startup
    calls = []
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append((exe, argv, env)))
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "kvmfr_client.cli.view", "-F"])
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name="kvmfr_client.cli.view")
    monkeypatch.setitem(sys.modules, "__main__", main)
    startup.stream_large_copies("kvmfr-view")
    assert calls == [(sys.executable, [sys.executable, "-m", "kvmfr_client.cli.view", "-F"],
                      dict(os.environ, GLIBC_TUNABLES=f"glibc.malloc.arena_max=2:{STREAMING_COPIES}"))]
    main.__spec__ = types.SimpleNamespace(name="someone_elses_program")   # kvmfr-view's main() embedded
    startup.stream_large_copies("kvmfr-view")
    assert len(calls) == 1


def test_the_headless_job_is_not_run_again(tmp_path, shm_path):
    run = Running("kvmfr-view", "--headless", "--shm", str(shm_path), "--frames", "1", "--timeout", "30",
                  env=clean_env(tmp_path))
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and run.proc.poll() is None:
            assert _tunables(run.proc.pid) is None
            time.sleep(0.1)
        assert run.proc.poll() is None   # it was looked at while it ran
    finally:
        run.kill()
