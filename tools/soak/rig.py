"""The programs under test, started as users start them, each watched from outside.

``Rig`` owns one temporary folder and one shared-memory file, the agent, and any of the three readers:
the viewer window under a private Xvfb (watched through the barcode it shows; its error counts from its
--stats-json at the end), the headless reader (``kvmfr-view --headless --json --progress``: a JSON line a
second with its frame times and error counts, its 'connected' log lines and its final JSON) and the Python
API reader (``tools/soak/api_reader.py``, a line per frame and a status line a second).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .children import PYTHON, REPO, Child, Children, bin_path, rss_kib
from .shmwatch import AgentHealth
from .tracks import ApiLines, FrameTrack, LogLines, RssTrack

WINDOW_TITLE = "kvmfr-soak"


class SoakSetupError(RuntimeError):
    """The soak could not start its programs (a missing tool, a program that never came up)."""


@dataclass
class Reader:
    name: str
    child: Child
    track: FrameTrack
    rss: RssTrack
    deadline_ns: int = 0          # when it is due to end by itself (0: only when stopped)
    exit: dict | None = None      # how it ended
    result: dict | None = None    # its own report (headless JSON, window stats JSON)

    def frames(self) -> int | None:
        """Frames it read: the headless reader's own count (its progress lines mark two times a second, not
        each frame), the frames seen for the others."""
        if self.name == "headless":
            return (self.result or {}).get("frames", self.track.status.get("frames"))
        return self.track.frames

    def errors(self) -> dict[str, int]:
        """Each error kind it met: its session's counts by exception class (``session: FrameError``), as it
        reports them (the window's --stats-json ``error_counts``, the headless reader's ``data_errors``,
        the API reader's status lines), and tracebacks or other lines the harness counted itself."""
        session = dict(self.track.status.get("errors") or {})
        for key in ("error_counts", "data_errors"):   # its final report: complete, so it wins
            session |= (self.result or {}).get(key) or {}
        return {f"session: {k}": v for k, v in session.items()} | dict(self.track.errors)

    def exit_text(self) -> str:
        """How it ended, in a line for the verdict table."""
        e = self.exit or {}
        if self.track.exception:
            return f"exception escaped: {self.track.exception}"
        if e.get("overdue"):
            return f"did not end when due (its --timeout / --exit-after, or SIGTERM): killed; {e.get('tail', '')[:100]}"
        if e.get("early"):
            return f"exited early with status {e.get('rc')}: {e.get('tail', '')[:120]}"
        if e.get("signal"):
            return f"ended by signal {e['signal']}" + (" (the soak's SIGTERM)" if e.get("stopped_by_soak") else "")
        return f"ran to the end (status {e.get('rc')})"


class Rig:
    def __init__(self, size=(640, 360), fps: float = 30.0, warmup_s: float = 10.0, env: dict | None = None,
                 reader_env: dict | None = None, reader_cwd: str | None = None):
        self.size, self.fps, self.warmup_s = size, fps, warmup_s
        self.workdir = Path(tempfile.mkdtemp(prefix="kvmfr-soak-"))
        self.shm = f"/dev/shm/kvmfr-soak-{os.getpid()}-{self.workdir.name[-8:]}"
        self.env = dict(env or os.environ)
        self.env.pop("WAYLAND_DISPLAY", None)
        self.reader_env = reader_env or self.env   # the ASan run swaps the readers' native helper
        self.reader_cwd = reader_cwd
        self.children = Children()
        self.agent: Child | None = None
        self.agent_track = FrameTrack("agent")
        self.agent_log = LogLines(self.agent_track)
        self.agent_starts = 0
        self.readers: dict[str, Reader] = {}
        self.display: str | None = None
        self.health: AgentHealth | None = None
        self._rss_stop = threading.Event()
        self._rss_thread: threading.Thread | None = None

    # -- the agent -------------------------------------------------------------------------------------
    def start_agent(self, wait_s: float = 20.0) -> int:
        """Start kvmfr-agent and wait until its session is up; returns the moment it was (monotonic ns)."""
        before = self.health.sessions_seen if self.health else 0
        w, h = self.size
        self.agent = self.children.start("agent", [bin_path("kvmfr-agent"), "--shm", self.shm, "--size", f"{w}x{h}",
                                                   "--fps", str(self.fps), "--source", "testpattern"],
                                         env=self.env, on_line=self.agent_log)
        self.agent_starts += 1
        if self.health is None:
            self.health = AgentHealth(self.shm)
        deadline = time.monotonic() + wait_s
        while self.health.sessions_seen == before or self.health.session_started_ns is None:
            if not self.agent.alive():
                raise SoakSetupError(f"kvmfr-agent exited with status {self.agent.proc.returncode}: {self.agent.tail()}")
            if time.monotonic() > deadline:
                raise SoakSetupError(f"kvmfr-agent did not start a session in {self.shm} within {wait_s:.0f} s")
            time.sleep(0.005)
        return self.health.session_started_ns

    def kill_agent(self, sig: int = signal.SIGKILL, grace: float = 1.0) -> dict:
        """End the agent; with SIGTERM, whether it obeyed within ``grace`` seconds."""
        if self.agent is None:
            return {}
        if sig == signal.SIGKILL:
            return {"rc": self.agent.kill(), "obeyed": None}
        rc, obeyed = self.agent.stop(grace, sig)
        return {"rc": rc, "obeyed": obeyed}

    # -- readers ---------------------------------------------------------------------------------------
    def _reader(self, name: str, child: Child, track: FrameTrack, deadline_ns: int = 0) -> Reader:
        reader = Reader(name, child, track, RssTrack(name, self.warmup_s), deadline_ns)
        self.readers[name] = reader
        return reader

    def start_api_reader(self, name: str = "api") -> Reader:
        track = FrameTrack(name)
        child = self.children.start(name, [PYTHON, "-m", "tools.soak.api_reader", self.shm], env=self._reader_env(),
                                    on_line=ApiLines(track), cwd=self.reader_cwd)
        return self._reader(name, child, track)

    def start_headless(self, seconds: float) -> Reader:
        track = FrameTrack("headless")
        log = HeadlessLines(track)
        child = self.children.start("headless", [PYTHON, "-m", "kvmfr_client.cli.view", "--shm", self.shm, "--headless",
                                                 "--json", "--progress", "-v", "--frames", str(10 ** 9),
                                                 "--timeout", f"{seconds:.1f}"],
                                    env=self._reader_env(), on_line=log, cwd=self.reader_cwd)
        reader = self._reader("headless", child, track, time.monotonic_ns() + int(seconds * 1e9))
        log.reader = reader
        return reader

    def start_window(self, seconds: float) -> Reader:
        """The viewer window under a private Xvfb, and the barcode watcher on it."""
        if self.display is None:
            self.display = self._start_xvfb()
        env = self._reader_env() | {"DISPLAY": self.display}
        track = FrameTrack("window")
        stats = self.workdir / "window-stats.json"
        w, h = self.size
        # win:alerts=no: the watcher reads the pattern's barcode in the top rows, where an alert ("the host
        # restarted", after every vandal round) would cover it for 3 s and look like a stalled picture.
        child = self.children.start("window", [PYTHON, "-m", "kvmfr_client.cli.view", "--shm", self.shm, "-v",
                                               f"win:title={WINDOW_TITLE}", f"win:size={w}x{h}", "win:alerts=no",
                                               "--exit-after", f"{seconds:.1f}", "--stats-json", str(stats)],
                                    env=env, on_line=LogLines(track, count_warnings=False), cwd=self.reader_cwd)
        reader = self._reader("window", child, track, time.monotonic_ns() + int(seconds * 1e9))
        self.children.start("window-watch", [PYTHON, "-m", "tools.soak.window_watch", WINDOW_TITLE, f"{w}x{h}", "0.01"],
                            env=self.env | {"DISPLAY": self.display}, on_line=WatchLines(track))
        return reader

    def _reader_env(self) -> dict:
        env = dict(self.reader_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
        return env

    def _start_xvfb(self) -> str:
        from tests.support.xvfb import read_display, xvfb_argv   # the tests' Xvfb start, shared

        exe = shutil.which("Xvfb")
        if exe is None:
            raise SoakSetupError("Xvfb is not installed: run `scripts/setup.sh test` (apt-get install xvfb)")
        rfd, wfd = os.pipe()
        w, h = self.size
        proc_child = self.children.start("xvfb", xvfb_argv(exe, wfd, max(w, 640), max(h, 480)),
                                         env=self.env, pass_fds=(wfd,))
        os.close(wfd)
        display = read_display(rfd, proc_child.alive)
        if display is None:
            raise SoakSetupError(f"Xvfb did not start within 20 s: {proc_child.tail()}")
        return display

    # -- watching --------------------------------------------------------------------------------------
    def start_rss_sampler(self, interval_s: float = 1.0) -> None:
        def run():
            while not self._rss_stop.wait(interval_s):
                for r in list(self.readers.values()):
                    if r.child.alive():
                        r.rss.add(rss_kib(r.child.pid))
        self._rss_thread = threading.Thread(target=run, daemon=True, name="soak-rss")
        self._rss_thread.start()

    def wait_first_frames(self, names, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            r = self.readers[name]
            while r.track.frames == 0:
                if not r.child.alive():
                    raise SoakSetupError(f"{name} exited with status {r.child.proc.returncode} before its first frame: "
                                         f"{r.child.tail()}")
                if time.monotonic() > deadline:
                    raise SoakSetupError(f"{name} showed no frame within {timeout:.0f} s: {r.child.tail()}")
                time.sleep(0.05)

    def check_exits(self) -> list[str]:
        """Readers that ended before they were due (a crash, or an exit the soak did not ask for)."""
        found = []
        now = time.monotonic_ns()
        for r in self.readers.values():
            if r.exit is None and not r.child.alive():
                rc = r.child.proc.returncode
                early = r.deadline_ns == 0 or now < r.deadline_ns - 500_000_000
                r.exit = {"rc": rc, "early": early, "signal": -rc if rc < 0 else None,
                          "exception": r.track.exception, "tail": r.child.tail(3)}
                if early:
                    found.append(r.name)
        return found

    def finish_readers(self, extra_s: float = 15.0) -> None:
        """Let readers with a deadline end by themselves (plus ``extra_s``), stop the others; record how."""
        for r in self.readers.values():
            if r.exit is not None:
                continue
            overdue = False
            if r.deadline_ns:   # due to end by itself: one that does not is stuck
                left = (r.deadline_ns - time.monotonic_ns()) / 1e9 + extra_s
                rc = r.child.wait(max(0.1, left))
                if rc is None:
                    overdue = True
                    rc = r.child.kill()
                asked = overdue
            else:               # asked to end (SIGTERM), killed 3 s later
                rc, obeyed = r.child.stop(3.0)
                overdue = not obeyed
                asked = True
            r.exit = {"rc": rc, "early": False, "overdue": overdue, "stopped_by_soak": asked,
                      "signal": -rc if rc < 0 else None, "exception": r.track.exception, "tail": r.child.tail(3)}
        stats = self.workdir / "window-stats.json"
        if "window" in self.readers and stats.exists():
            try:
                self.readers["window"].result = json.loads(stats.read_text())
            except ValueError:
                pass

    def close(self) -> None:
        self._rss_stop.set()
        if self.health is not None:
            self.health.close()
        self.children.close()
        try:
            os.unlink(self.shm)
        except FileNotFoundError:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)


class HeadlessLines(LogLines):
    """The headless reader's output: its --progress lines, 'connected' log lines, tracebacks, and its final
    JSON.

    A progress line (one a second, docs/viewer.md) gives the copy times of the first and the last frame
    since the line before (CLOCK_MONOTONIC, the harness's clock): both go into the track as frame times, so
    any wait between frames that spans a line is measured exactly and the 2 s hang rule applies as to the
    other readers (a wait within one second is shorter than a second). Its counts and error kinds are kept
    as the track's status. Its reconnection ('connected:') is its recovery after an agent restart."""

    def __init__(self, track: FrameTrack):
        super().__init__(track, on_connected=track.reconnected, count_warnings=False)
        self.reader: Reader | None = None

    def __call__(self, t_ns: int, line: str) -> None:
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("progress") is True:
                self._progress(data)
                return
            if isinstance(data, dict) and self.reader is not None:
                self.reader.result = data
                return
        super().__call__(t_ns, line)

    def _progress(self, p: dict) -> None:
        first, last = p.get("new_first_ns"), p.get("new_last_ns")
        if p.get("new_frames") and isinstance(first, int) and isinstance(last, int):
            self.track.frame(first, -1)
            if last != first:
                self.track.frame(last, -1)
        self.track.status = {"state": p.get("state"), "session_restarts": p.get("session_restarts"),
                             "errors": p.get("data_errors") or {}, "frames": p.get("frames")}


class WatchLines:
    """The window watcher's lines into the window's track."""

    def __init__(self, track: FrameTrack):
        self.track = track
        self.read_errors = 0

    def __call__(self, t_ns: int, line: str) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "F":
            t, _serial, cap = rest.split()
            self.track.frame(int(t), int(cap))
        elif kind == "E":
            self.read_errors += 1
