"""The sound server's own count of underruns, read from the server, not from the player.

PulseAudio logs each playback stream's underrun (its queue ran empty while it was playing) at debug
level (``Implicit underrun of 'STREAM NAME'`` in PulseAudio 16), and sends the stream's client an underflow
message; nothing in the introspection API (pactl, pulsectl) counts them. So the tests switch the
running daemon's log level to debug through its command-line interface module (the protocol of
``pacmd``, loaded on a private socket) and count those lines in the daemon's log from a mark on.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time

from tests.support.pulse import PulseDaemon

_CLI_SOCKET = "cli"
# PulseAudio 16: "Implicit underrun of 'NAME'" (or "Explicit" after a drain request); older: "Underrun on 'NAME'".
_UNDERRUN = re.compile(r"(?:(?:Implicit|Explicit) underrun of|Underrun on) '([^']*)'")


def set_log_level(daemon: PulseDaemon, level: int) -> None:
    """Send ``set-log-level LEVEL`` (0 error .. 4 debug) to the daemon's command-line interface."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.runtime / _CLI_SOCKET))
        s.sendall(b"set-log-level %d\n" % level)   # never "exit": that would end the daemon


def enable_debug_log(daemon: PulseDaemon) -> None:
    """Raise the daemon's log level to debug (idempotent): loads module-cli-protocol-unix once."""
    path = daemon.runtime / _CLI_SOCKET
    if not path.exists():
        out = subprocess.run(["pactl", "--server", daemon.server, "load-module", "module-cli-protocol-unix",
                              f"socket={path}"], capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(f"cannot load module-cli-protocol-unix: {out.stderr.strip()}")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(b"set-log-level 4\n")   # 4 = debug; never "exit": that would end the daemon
        # The module answers nothing to a command that succeeds: wait for the first debug line.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and "D: [" not in daemon.log_tail(200):
            subprocess.run(["pactl", "--server", daemon.server, "stat"], capture_output=True, timeout=10)
            time.sleep(0.02)
    if "D: [" not in daemon.log_tail(200):
        raise RuntimeError("the sound server did not switch to debug logging")


class UnderrunCounter:
    """Counts the server's underrun lines for streams named ``stream`` logged after construction."""

    def __init__(self, daemon: PulseDaemon, stream: str):
        enable_debug_log(daemon)
        self.daemon = daemon
        self.stream = stream
        self._offset = daemon.log_path.stat().st_size

    def lines(self) -> list[str]:
        with open(self.daemon.log_path, "rb") as f:
            f.seek(self._offset)
            text = f.read().decode(errors="replace")
        return [line for line in text.splitlines()
                if (m := _UNDERRUN.search(line)) and m.group(1) == self.stream]

    def count(self) -> int:
        return len(self.lines())

    def close(self) -> None:
        """Back to the test daemon's usual level (info): debug logging costs the server CPU."""
        set_log_level(self.daemon, 3)

    def __enter__(self) -> "UnderrunCounter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
