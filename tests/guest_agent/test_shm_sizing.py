"""kvmfr-agent on a shared-memory file that already exists but is too small for an LGMP session (0 bytes, as
the usual tmpfiles.d rule creates /dev/shm/looking-glass before anything runs): the agent is the producer,
so it sizes the file as it would create it and says so; when it cannot, one line with the size needed."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import kvmfr_client
from kvmfr_client.core.native import lib
from tests.support.agent import REPO
from tests.support.process import stop_process, wait_for
from tests.support.shm import Region

SHM = 3   # kvmfr_client.config.exits.SHM
MIB = 1 << 20


def _agent(shm, *extra, size="320x240") -> list[str]:
    return [sys.executable, "-m", "guest_agent", "--shm", str(shm), "--size", size, "--fps", "30", *extra]


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_an_empty_file_is_sized_and_frames_flow(shm_path):
    shm_path.touch()
    os.chmod(shm_path, 0o640)   # tmpfiles.d's mode and owner are the user's: kept as they are
    agent = subprocess.Popen(_agent(shm_path, "-v"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        wait_for(lambda: shm_path.stat().st_size > 0 and Region(str(shm_path)).u32(0) == lib.LGMP_PROTOCOL_MAGIC,
                 20, "the agent to size the file and write its header")
        assert shm_path.stat().st_size == 16 * MIB   # the B7 rule for 320x240, as for a file it creates
        assert shm_path.stat().st_mode & 0o777 == 0o640
        with kvmfr_client.open(str(shm_path), wait=10) as session:
            frame = None
            for _ in range(100):
                frame = session.next_frame(timeout=0.2)
                if frame is not None:
                    break
            assert frame is not None and (frame.width, frame.height) == (320, 240) and not frame.truncated
    finally:
        out = stop_process(agent)
    said = [line for line in out.splitlines() if "sizing" in line]
    assert len(said) == 1 and str(shm_path) in said[0] and "16 MiB" in said[0] and "0 bytes" in said[0], out
    assert agent.returncode == 0 and "Traceback" not in out, out


def test_a_file_that_holds_a_session_is_not_resized(shm_path):
    """16 MiB is too small for whole 3840x2160 frames but holds a session: QEMU may map it at that size, so the
    agent leaves it (the viewer asks for the size the frames need)."""
    with open(shm_path, "wb") as f:
        f.truncate(16 * MIB)
    agent = subprocess.Popen(_agent(shm_path, "-v", size="3840x2160"), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: Region(str(shm_path)).u32(0) == lib.LGMP_PROTOCOL_MAGIC, 20, "the agent's header")
        assert shm_path.stat().st_size == 16 * MIB
    finally:
        out = stop_process(agent)
    assert "sizing" not in out, out


def test_a_file_that_cannot_grow_is_one_line_with_the_size_needed():
    """A file the agent may write but not enlarge (a memfd sealed against growing; also what a full or
    size-limited file system does): exit 3, one line naming the file and the size in MiB."""
    fd = os.memfd_create("kvmfr-test", os.MFD_ALLOW_SEALING)
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW)
        path = f"/proc/self/fd/{fd}"
        out = subprocess.run(_agent(path), cwd=REPO, pass_fds=[fd], capture_output=True, text=True, timeout=60)
    finally:
        os.close(fd)
    assert out.returncode == SHM, (out.returncode, out.stderr)
    line = _one_line(out.stderr)
    assert path in line and "0 bytes" in line and "16 MiB" in line and "cannot be resized" in line, line
    assert "5760" not in line and "Operation not permitted" not in line, line


def test_a_read_only_empty_file_is_one_line_with_the_size_needed(shm_path):
    shm_path.touch()
    os.chmod(shm_path, 0o644)
    if os.geteuid() == 0:   # root may write anything: run the agent as nobody, for whom the file is read-only
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *_agent(shm_path)]
    else:
        os.chmod(shm_path, 0o444)
        cmd = _agent(shm_path)
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == SHM, (out.returncode, out.stderr)
    line = _one_line(out.stderr)
    assert str(shm_path) in line and "not writable" in line and "16 MiB" in line, line
    assert shm_path.stat().st_size == 0
