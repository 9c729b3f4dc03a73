"""The shared-memory file shrinks or disappears under a running reader and a running agent: neither
dies (before, both ended with SIGBUS), both say so once, and frames flow again when the file is back."""

from __future__ import annotations

import os
import time

import kvmfr_client
from kvmfr_client.core import errors
from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for


def _start(shm_path):
    agent = start_agent(shm_path, size=(160, 120), fps=60)
    wait_for(lambda: shm_path.exists() and shm_path.stat().st_size > 0, 20, "the agent to create its file")
    return agent


def _frames(session, count: int, within: float) -> int:
    got = 0
    deadline = time.monotonic() + within
    while got < count and time.monotonic() < deadline:
        got += session.next_frame(timeout=0.1) is not None
    return got


def _read_through(session, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        session.next_frame(timeout=0.05)
        session.next_cursor(timeout=0)


def test_truncate_to_zero_under_reader_and_agent(shm_path):
    agent = _start(shm_path)
    try:
        with kvmfr_client.open(str(shm_path), wait=15) as s:
            assert _frames(s, 3, 5) == 3
            size = shm_path.stat().st_size
            os.truncate(shm_path, 0)
            _read_through(s, 1.0)
            assert agent.poll() is None, "the agent died when its file shrank"
            assert isinstance(s.last_error, errors.ShmLost), s.last_error
            assert s.state is not kvmfr_client.SessionState.CONNECTED
            assert f"the shared memory file {shm_path} shrank" in s.status_message or "sized" in s.status_message, \
                s.status_message
            os.truncate(shm_path, size)   # valid memory comes back
            assert _frames(s, 3, 10) == 3, f"no frames after the file came back: {s.status_message}"
            assert s.error_counts["ShmLost"] == 1
    finally:
        out = stop_process(agent, timeout=3)
    assert agent.returncode == 0, out
    assert "Traceback" not in out, out
    assert out.count("shrank") == 1, out       # said once
    assert "is back" in out, out


def test_file_removed_and_created_again(shm_path):
    agent = _start(shm_path)
    try:
        with kvmfr_client.open(str(shm_path), wait=15) as s:
            assert _frames(s, 3, 5) == 3
            old_session = s.host.session_id
            os.unlink(shm_path)
            _read_through(s, 1.0)
            assert agent.poll() is None
            assert isinstance(s.last_error, errors.ShmLost), s.last_error
            assert "was removed" in s.last_error.message
            # The agent creates it again (as at its start); the reader maps the new file.
            assert _frames(s, 3, 10) == 3, f"no frames from the new file: {s.status_message}"
            assert s.host.session_id != old_session
    finally:
        out = stop_process(agent, timeout=3)
    assert agent.returncode == 0, out
    assert out.count("was removed") == 1, out
    assert "created again" in out, out


def test_reader_waits_for_a_file_that_shrank_without_a_host(shm_path):
    """No agent: the reader maps a file that then shrinks under it; it waits, never crashes."""
    with open(shm_path, "wb") as f:
        f.truncate(16 << 20)
    s = kvmfr_client.open(str(shm_path))
    try:
        _read_through(s, 0.5)
        os.truncate(shm_path, 100)
        _read_through(s, 1.0)
        assert s.state is not kvmfr_client.SessionState.CONNECTED
        assert str(shm_path) in s.status_message
    finally:
        s.close()
