"""Start the real guest agent (``python -m guest_agent``, as users do) for tests and benchmarks."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.support.process import stop_process

REPO = Path(__file__).resolve().parents[2]


def start_agent(shm: Path, size=(320, 240), fps: float = 60, fmt: str = "BGRA", source: str = "testpattern",
                cursor: bool = True, *, env: dict | None = None, log: Path | None = None,
                protocol: str = "b7") -> subprocess.Popen:
    """The agent producing ``source`` frames into ``shm`` in ``protocol`` (b7 or master); its output goes to
    ``log``, or to a text pipe (``tests.support.process.stop_process`` returns it)."""
    cmd = [sys.executable, "-m", "guest_agent", "--shm", str(shm), "--size", f"{size[0]}x{size[1]}",
           "--fps", str(fps), "--format", fmt, "--source", source, "--protocol", protocol]
    if not cursor:
        cmd.append("--no-cursor")
    if log is None:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def running_agent(shm: Path, size=(320, 240), fps: float = 60, **options) -> Iterator[subprocess.Popen]:
    """:func:`start_agent` for a ``with`` block, stopped (SIGTERM, then killed) at its end, also when the test
    stopped it already."""
    agent = start_agent(shm, size, fps, **options)
    try:
        yield agent
    finally:
        stop_process(agent)
