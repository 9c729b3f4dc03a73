"""What a user gets for a path that is no shared-memory file: one sentence naming the file and what
to do, never a traceback, an errno number or a "[field = value, limit N]" dump. A missing, empty or
too-small file is waited on instead, with the size it needs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import kvmfr_client
from guest_agent.producer import Producer
from kvmfr_client.core import errors
from kvmfr_client.core.formats import FrameType, encode
from kvmfr_client.core.snapshot import read_snapshot

REPO = Path(__file__).resolve().parents[2]


def assert_user_worded(text: str, path) -> None:
    assert "\n" not in text and str(path) in text, text
    assert "[" not in text and "limit" not in text and "Errno" not in text, text
    assert not re.search(r"\b(errno|code) ?\d", text), text


def _open_in_thread(path, timeout: float = 5.0):
    """kvmfr_client.open(path) in a thread, so a blocking open (a FIFO) fails the test instead of hanging it."""
    result = {}

    def run():
        try:
            result["session"] = kvmfr_client.open(str(path))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["exc"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"opening {path} blocked"
    return result


@pytest.fixture
def bad_path(request, tmp_path):
    kind = request.param
    if kind == "directory":
        return tmp_path, "is a folder"
    if kind == "fifo":
        p = tmp_path / "fifo"
        os.mkfifo(p)
        return p, "is a FIFO"
    if kind == "dev_null":
        return Path("/dev/null"), "is /dev/null"
    if kind == "dev_zero":
        return Path("/dev/zero"), "is /dev/zero"
    if kind == "proc_self_mem":
        return Path("/proc/self/mem"), "kernel file under /proc"
    if kind == "path_through_a_file":
        p = tmp_path / "file"
        p.write_bytes(b"x")
        return p / "shm", "is a file, not a folder"
    raise AssertionError(kind)


BAD = ["directory", "fifo", "dev_null", "dev_zero", "proc_self_mem", "path_through_a_file"]


@pytest.mark.parametrize("bad_path", BAD, indirect=True)
def test_path_that_is_no_shared_memory_gives_one_clear_line(bad_path):
    path, expected = bad_path
    result = _open_in_thread(path)
    exc = result.get("exc")
    assert isinstance(exc, errors.ShmNotUsable), result
    assert expected in str(exc)
    assert_user_worded(str(exc), path)
    with pytest.raises(errors.ShmNotUsable) as info:   # --inspect reads through the same checks
        read_snapshot(str(path))
    assert expected in str(info.value)


def test_unreadable_file_says_permission_denied(shm_path):
    """Run as an unprivileged user (root reads everything) on a file only root may open."""
    shm_path.write_bytes(bytes(1 << 20))
    os.chmod(shm_path, 0o600)
    code = textwrap.dedent(f"""
        import os
        from kvmfr_client.core import errors, session   # imported while /root (the interpreter) is readable
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
        try:
            session.open({str(shm_path)!r})
        except errors.ShmNotUsable as exc:
            print(exc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert "permission denied" in line and "group" in line, line
    assert_user_worded(line, shm_path)


@pytest.mark.parametrize("size", [0, 1024])
def test_empty_or_tiny_file_is_waited_on_with_the_size_it_needs(shm_path, size):
    """The tmpfiles.d set-up creates an empty file before the VM starts: wait for it, as for a missing one."""
    with open(shm_path, "wb") as f:
        f.truncate(size)
    s = kvmfr_client.open(str(shm_path))
    try:
        assert s.state is kvmfr_client.SessionState.WAITING
        msg = s.status_message
        assert f"it is {size} bytes" in msg and "32 MiB" in msg and "ivshmem" in msg and "tmpfiles.d" in msg, msg
        assert_user_worded(msg, shm_path)
        with pytest.raises(errors.HostNotRunning) as info:
            s.wait_connected(0.3)
        assert "32 MiB" in str(info.value)
        # The VM starts: the file gets its size and a host writes into it; the reader connects.
        with open(shm_path, "r+b") as f:
            f.truncate(16 << 20)
        with Producer(str(shm_path)) as prod:
            s.wait_connected(5)
            time.sleep(0.05)
            rows = encode(np.full((8, 8, 4), 7, np.uint8), FrameType.BGRA)
            prod.post_frame(1, FrameType.BGRA, rows, 8, 8)
            assert s.next_frame(timeout=2) is not None
    finally:
        s.close()


def test_refused_guest_value_reads_as_a_sentence_with_details_kept(shm_path):
    err = errors.FrameError("frame pitch 4 bytes does not fit rows of 256 bytes", code=102, field="frame.pitch",
                            value=4, limit=256)
    assert str(err) == "frame pitch 4 bytes does not fit rows of 256 bytes"
    assert (err.field, err.value, err.limit) == ("frame.pitch", 4, 256)
    assert "[frame.pitch = 4, limit 256" in err.detail


def test_missing_file_is_waited_on(shm_path):
    s = kvmfr_client.open(str(shm_path))
    try:
        assert "waiting for" in s.status_message and str(shm_path) in s.status_message
    finally:
        s.close()
