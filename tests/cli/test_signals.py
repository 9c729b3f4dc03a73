"""Ctrl+C (SIGINT) and SIGTERM end every program cleanly: real processes get each signal once they are
working, and must end in time with the documented exit status (README "Exit statuses": 0 for the programs
that run until stopped, 130 / 143 for a job cut short), say what they must, and print no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from kvmfr_client.config import exits
from tests.cli.programs import Running, clean_env
from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for
from tests.support.pulse import running_pulse

SIGNALS = [signal.SIGINT, signal.SIGTERM]
IDS = ["SIGINT", "SIGTERM"]


def _stop(run: Running, sig: int, status: int, timeout: float = 15) -> float:
    """Send ``sig`` to the working program: it must end within ``timeout`` with ``status`` and no traceback.
    The seconds it took to end."""
    t0 = time.monotonic()
    code = run.stop(sig, timeout=timeout)
    took = time.monotonic() - t0
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.stderr
    assert code == status, run.stderr
    return took


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_the_window_closes_cleanly(sig, xserver, tmp_path, shm_path):
    stats = tmp_path / "stats.json"
    run = Running("kvmfr-view", "-v", "--shm", str(shm_path), "--stats-json", str(stats), "spice:enable=no",
                  "win:size=320x240", env=clean_env(tmp_path, DISPLAY=xserver.display))
    try:
        run.wait_for("OpenGL:", timeout=60)   # the window and its GL context exist
        time.sleep(0.5)
        _stop(run, sig, exits.OK)
    finally:
        run.kill()
    assert json.loads(stats.read_text())["shm"] == str(shm_path)   # it finished its work: stats written


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_headless_prints_its_results_so_far(sig, tmp_path, shm_path):
    agent = start_agent(shm_path, size=(320, 240), fps=30)
    run = Running("kvmfr-view", "-v", "--headless", "--json", "--shm", str(shm_path), "--frames", "1000000",
                  "--timeout", "600", env=clean_env(tmp_path))
    try:
        run.wait_for("reading 1000000 frames", timeout=60)
        time.sleep(1.5)
        _stop(run, sig, exits.signal_exit(sig))
    finally:
        run.kill()
        stop_process(agent)
    data = json.loads(run.stdout)
    name = signal.Signals(sig).name
    assert data["stopped_by"] == name and data["frames"] > 0 and data["pattern_errors"] == 0, data
    assert run.stderr.strip().splitlines()[-1] == f"kvmfr-view: stopped by {name} after {data['frames']} of 1000000 frames"


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_the_agent_stops_cleanly(sig, tmp_path, shm_path):
    run = Running("kvmfr-agent", "-v", "--shm", str(shm_path), "--size", "320x240", "--always",
                  env=clean_env(tmp_path))
    try:
        run.wait_for("creating", timeout=60)
        time.sleep(1.0)   # posting frames by now
        took = _stop(run, sig, exits.OK, timeout=5)
    finally:
        run.kill()
    assert took < 2.0, took


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_kvmfr_audio_stops_cleanly(sig, tmp_path):
    run = Running("kvmfr-audio", "--scream", f"udp://127.0.0.1:{_free_udp_port()}", env=clean_env(tmp_path))
    try:
        run.wait_for("listening on", timeout=60)
        _stop(run, sig, exits.OK)
    finally:
        run.kill()
    assert "stopping" in run.stderr   # it went through its own stop, not killed


@pytest.fixture(scope="module")
def pulse():
    """A real PulseAudio daemon (tests/support/pulse.py) for the sound programs."""
    with running_pulse() as daemon:
        yield daemon


@contextmanager
def _frozen(daemon):
    """The sound server stopped (SIGSTOP): a client's connect then waits inside libpulse for an answer."""
    os.kill(daemon.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(daemon.process.pid, signal.SIGCONT)


def _wait_connecting(run: Running, sockets: int = 1, timeout: float = 60) -> None:
    """Until the program holds ``sockets`` sockets, the last one to the sound server (its imports are done
    and it waits for the server's answer)."""
    def enough() -> bool:
        fds = Path(f"/proc/{run.proc.pid}/fd")
        try:
            return sum(os.readlink(fd).startswith("socket:") for fd in fds.iterdir()) >= sockets
        except OSError:
            return False
    wait_for(lambda: enough() or run.proc.poll() is not None, timeout, "the program to connect to the sound server")
    assert run.proc.poll() is None, run.stderr
    time.sleep(0.3)


def test_kvmfr_audio_lists_sinks(pulse, tmp_path):
    """The door the signals below cut short: with the server answering, the sinks are listed, exit 0."""
    run = Running("kvmfr-audio", "--list-sinks", env=clean_env(tmp_path, PULSE_SERVER=pulse.server))
    try:
        code = run.proc.wait(60)
    finally:
        run.kill()
    for t in run._threads:
        t.join(5)
    assert code == exits.OK and pulse.sink48 in run.stdout, run.stderr


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_kvmfr_audio_list_sinks_is_cut_short(sig, pulse, tmp_path):
    """A sound server that does not answer: Ctrl+C / SIGTERM end the listing (a job) with 130 / 143 and one
    line, no traceback, nothing on stdout."""
    with _frozen(pulse):
        run = Running("kvmfr-audio", "--list-sinks", env=clean_env(tmp_path, PULSE_SERVER=pulse.server))
        try:
            _wait_connecting(run)
            _stop(run, sig, exits.signal_exit(sig), timeout=10)
        finally:
            run.kill()
    name = signal.Signals(sig).name
    assert run.stderr.strip().splitlines() == [f"kvmfr-audio: stopped by {name} before the sinks were listed"]
    assert run.stdout == ""


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_kvmfr_agent_audio_stops_cleanly(sig, pulse, tmp_path):
    """Sending: the capture stops and the sender closes (it says how much it sent), exit 0 as for the agent."""
    run = Running("kvmfr-agent", "audio", "--udp", f"127.0.0.1:{_free_udp_port()}", "--source",
                  pulse.guest_sink + ".monitor", "--server", pulse.server, env=clean_env(tmp_path))
    try:
        run.wait_for("sending", timeout=60)
        time.sleep(0.5)
        _stop(run, sig, exits.OK, timeout=10)
    finally:
        run.kill()
    assert "stopped after" in run.stderr, run.stderr


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_kvmfr_agent_audio_stopped_while_connecting(sig, pulse, tmp_path):
    """libpulse's connect to a server that does not answer cannot be interrupted; the program waits for it
    on the side, so the signal still ends it at once: exit 0, no traceback."""
    with _frozen(pulse):
        run = Running("kvmfr-agent", "audio", "--udp", f"127.0.0.1:{_free_udp_port()}", "--source",
                      pulse.guest_sink + ".monitor", "--server", pulse.server, env=clean_env(tmp_path))
        try:
            _wait_connecting(run, sockets=2)   # its UDP sender's, then the sound server's
            took = _stop(run, sig, exits.OK, timeout=10)
        finally:
            run.kill()
    assert took < 2.0, took
    assert "sending" not in run.stderr, run.stderr


# A program's console script as pip writes it (``from MODULE import main; sys.exit(main())``), with the first
# heavy module it loads made slow (30 s), so that a signal surely lands while its modules load: numpy (the
# frame and audio paths), cryptography (the SPICE client), cffi (the native helper), pulsectl (PulseAudio).
_SLOW_LOADING = r"""
import sys, time

HEAVY = {"numpy", "cryptography", "cffi", "_cffi_backend", "pulsectl"}

class SlowImport:
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY:
            HEAVY.clear()   # hold only the first one
            print("loading " + name, file=sys.stderr, flush=True)
            time.sleep(30)
        return None

sys.meta_path.insert(0, SlowImport())
from %s import main
sys.exit(main())
"""

# id -> (entry module as in pyproject.toml, arguments, the heavy module it loads first, the line it says when
# stopped then: None for a program that runs until stopped, which then ends quietly with 0)
_LOADING = {
    "window": ("kvmfr_client.cli.view", ["--shm", "{shm}", "spice:enable=no"], "numpy", None),
    "headless": ("kvmfr_client.cli.view", ["--headless", "--json", "--shm", "{shm}", "--frames", "1"], "numpy",
                 "kvmfr-view: stopped by {name}"),
    "inspect": ("kvmfr_client.cli.view", ["--inspect", "{shm}"], "numpy", "kvmfr-view: stopped by {name}"),
    "benchmark": ("kvmfr_client.cli.view", ["--benchmark", "--duration", "5"], "numpy",
                  "kvmfr-view: stopped by {name}"),
    "audio": ("kvmfr_client.audio.cli", ["--scream", "udp://127.0.0.1:9"], "pulsectl", None),
    "audio-list-sinks": ("kvmfr_client.audio.cli", ["--list-sinks"], "pulsectl",
                         "kvmfr-audio: stopped by {name} before the sinks were listed"),
    "input": ("kvmfr_client.spice.cli", ["--spice", "127.0.0.1:9", "key", "a"], "cryptography",
              "kvmfr-input: stopped by {name} before every command was sent"),
    "agent": ("guest_agent.cli", ["--shm", "{shm}", "--frames", "1"], "numpy", None),
    "agent-audio": ("guest_agent.cli", ["audio", "--udp", "127.0.0.1:9"], "numpy", None),
}


@pytest.mark.parametrize("program", list(_LOADING))
@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_stopped_while_its_modules_load(sig, program, tmp_path, shm_path):
    """Every program takes SIGINT/SIGTERM over before it imports anything heavy (kvmfr_client.startup), so a
    signal while its modules load ends it at once as it would a moment later: a program that runs until
    stopped (the window, kvmfr-audio playing, the agent) quietly with 0; a job (the headless reader,
    --inspect, the benchmark, kvmfr-audio --list-sinks, kvmfr-input) with its one line and 130 / 143. Never
    a traceback, and nothing is created."""
    module, args, heavy, line = _LOADING[program]
    args = [a.format(shm=shm_path) for a in args]
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_LOADING % module, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=tmp_path,
                            env=clean_env(tmp_path))
    try:
        assert proc.stderr.readline() == f"loading {heavy}\n"
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    name = signal.Signals(sig).name
    if line is None:
        assert proc.returncode == exits.OK, err
        assert err == "", err
    else:
        assert proc.returncode == exits.signal_exit(sig), err
        assert err.splitlines() == [line.format(name=name)], err
    assert out == "", out
    assert took < 2.0, took
    assert not shm_path.exists()
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


class _SilentServer:
    """Accepts TCP connections and never answers: a SPICE server that hangs during the link."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_kvmfr_input_is_cut_short(sig, tmp_path):
    server = _SilentServer()
    run = Running("kvmfr-input", "--spice", f"127.0.0.1:{server.port}", "--timeout", "60", "key", "a",
                  env=clean_env(tmp_path))
    try:
        assert server.accepted.wait(60), run.stderr
        time.sleep(0.3)
        _stop(run, sig, exits.signal_exit(sig))
    finally:
        run.kill()
        server.close()
    name = signal.Signals(sig).name
    assert run.stderr.strip().splitlines() == [f"kvmfr-input: stopped by {name} before every command was sent"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_the_latency_benchmark_stops_its_children(sig, xserver, tmp_path):
    run = Running("kvmfr-view", "--benchmark", "--duration", "60", "--size", "320x240", "--fps", "30",
                  env=clean_env(tmp_path, DISPLAY=xserver.display))
    shm = Path(f"/dev/shm/kvmfr-bench-{run.proc.pid}")
    try:
        wait_for(shm.exists, 60, "the benchmark's agent to create its shared memory")
        time.sleep(2.0)   # its viewer and probes are starting or running
        _stop(run, sig, exits.signal_exit(sig), timeout=30)
    finally:
        run.kill()
    name = signal.Signals(sig).name
    assert run.stderr.strip().splitlines()[-1] == f"kvmfr-view --benchmark: stopped by {name}; nothing was reported"
    wait_for(lambda: not shm.exists(), 5, "the benchmark to remove its shared memory")
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, str(shm))]
    assert not leftovers, "children left running: " + ", ".join(p.name for p in leftovers)


def _cmdline_has(proc: Path, text: str) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
