"""guard_buffer: a mapping whose file shrinks reads zeros and says so instead of killing the process;
a fault anywhere else still crashes as before (faulthandler's report included)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


SETUP = """
    import mmap, os
    from kvmfr_client.core.native import guard_buffer
    path = {path!r}
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, 1 << 20)
    mm[4096:4100] = b"LGMP"
"""


def test_guarded_mapping_survives_truncate(shm_path):
    proc = run_child(SETUP.format(path=str(shm_path)) + """
    guard = guard_buffer(mm)
    assert not guard.lost and mm[4096:4100] == b"LGMP"
    os.truncate(path, 0)
    data = bytes(mm[4096:4100]) + bytes(mm[900000:900004])
    mm[10] = 1                                   # writes complete too
    print("after", data.hex(), guard.lost)
    guard.close()
    mm.close()
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["after", "0" * 16, "True"]


def test_unguarded_fault_still_reaches_faulthandler(shm_path):
    """Our handler is installed (another mapping is guarded), but a fault outside it is not ours."""
    proc = run_child(SETUP.format(path=str(shm_path)) + """
    other = mmap.mmap(-1, 4096)
    guard = guard_buffer(other)
    os.truncate(path, 0)
    print(mm[4096])
    """)
    assert proc.returncode == -7, (proc.returncode, proc.stderr)   # SIGBUS, as without us
    assert "Bus error" in proc.stderr   # faulthandler's report
