"""The child processes that tests and benchmarks start (agents, viewers, servers, QEMU): stopping them,
and waiting for what they do."""

from __future__ import annotations

import signal
import subprocess
import time


def stop_process(proc: subprocess.Popen, timeout: float = 5.0, sig: int | None = signal.SIGTERM, *,
                 read_output: bool = True) -> str:
    """Send ``sig`` (None: the caller has asked it to stop already), give it ``timeout`` seconds to exit,
    then kill it; returns what it wrote to its stdout pipe ("" when there is none).

    ``read_output=False`` leaves the pipe alone for a thread that reads it (a serial console log)."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    if not read_output:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return ""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    if isinstance(out, bytes):
        return out.decode(errors="replace")
    return out or ""


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
