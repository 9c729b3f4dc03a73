"""A real ``kvmfr-vm start`` of the project's tiny test guest (QEMU under TCG here), then ``status``, ``list``
and ``stop``: QMP answers, the IVSHMEM files exist with the right size, mode and owner, the SPICE socket
accepts a connection, the vCPU is pinned, our own agent running inside the guest writes the test pattern
into the display's BAR2 and the host's headless reader verifies 120 frames of it, and ``stop`` leaves no
process, socket or file behind.

Two boots in all: one with ``--no-viewer``, one with two displays and the real viewer (started through a
script named kvmfr-view first on PATH, which records its command line) to check its wiring and lifetime."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.process import stop_process, wait_for
from tests.vm.conftest import kvmfr_vm
from tests.vm.x11_guest import (frame_colour_errors, missing_x_tools, read_frames, window_shows_colour, x11_agent,
                                 x_screens)

pytestmark = pytest.mark.slow


def vm_yaml(folder: Path, image, name: str, displays: str, extra: str = "", append: str = "") -> Path:
    """A VM description for the tiny test guest (``image``: its kernel and initrd) in folder/NAME.yaml."""
    path = folder / f"{name}.yaml"
    path.write_text(f"""\
name: {name}
cpus: 1
memory: 512M
video: none
network: none
vdagent: false
kernel: {image.kernel}
initrd: {image.initrd}
append: console=ttyS0 quiet panic=-1 i8042.nopnp {append}
displays: {displays}
{extra}""")
    return path


REPO = Path(__file__).resolve().parents[2]


def video_agent(display: int, *args: str) -> str:
    """Our agent for display ``display``, started as its systemd unit starts it: no --shm, so in the guest it
    looks for its IVSHMEM device by itself (by kvmfr-vm's label kvmfr-display-N, not by order)."""
    return " ".join([sys.executable, "-m", "guest_agent", "--display", str(display), *args])


def guest_audio(folder: Path) -> str:
    """The demo's guest sound (kvmfr_client/vm/demo.py): the guest's PulseAudio playing a 440 Hz tone, and our
    Scream sender writing it into the Scream device it finds by its label (--ivshmem auto)."""
    from kvmfr_client.vm.demo import GUEST_AUDIO
    script = folder / "guest-audio.sh"
    script.write_text(GUEST_AUDIO)
    return f"sh {script} {sys.executable}"


def agent_command(*commands: str) -> str:
    """Kernel parameters that make the agent guest run ``commands`` side by side, in this checkout."""
    from kvmfr_client.vm.guest_image import guest_command
    return guest_command(f"cd {REPO}; {commands[0]}", *commands[1:])


@pytest.fixture(scope="module")
def agent_guest():
    from tests.vm.agent_guest import build_agent_guest
    return build_agent_guest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_line = Path(f"/proc/{pid}/stat").read_text()
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def test_start_status_stop_leaves_nothing(tmp_path, vm_env, agent_guest, host_pulse):
    cpu = sorted(os.sched_getaffinity(0))[-1]
    name = f"kvt{os.getpid()}"
    yaml_path = vm_yaml(tmp_path, agent_guest, name, "[{resolution: 1920x1080}]",
                      f"audio: scream-ivshmem\ncpu_pinning: [{cpu}]\nshares: [{{path: /, tag: hostroot}}]\n",
                      agent_command(video_agent(0, "-v", "--size", "640x480", "--fps", "30"),
                                    guest_audio(tmp_path)))
    shm, scream = Path(f"/dev/shm/{name}-0"), Path(f"/dev/shm/{name}-scream")
    rundir = Path(vm_env["XDG_RUNTIME_DIR"]) / "kvmfr-vm" / name
    t0 = time.monotonic()
    result = kvmfr_vm(vm_env, "start", str(yaml_path), "--no-viewer")
    started = time.monotonic() - t0
    pid = 0
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("acceleration") == 1 and f"{name}: acceleration TCG" in result.stdout
        ready = float(re.search(r"QMP ready in ([\d.]+) s", result.stdout).group(1))
        print(f"kvmfr-vm start returned after {started:.2f} s; QMP ready {ready:.2f} s after QEMU's start")
        pid = int((rundir / "qemu.pid").read_text())
        assert _alive(pid)
        assert "accel=tcg" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")

        # QMP answers (through the library kvmfr-vm uses), and names the devices by their ids
        from qemu.qmp.legacy import QEMUMonitorProtocol
        with QEMUMonitorProtocol(str(rundir / "qmp.sock")) as monitor:
            monitor.connect()
            assert monitor.cmd("query-status")["status"] == "running"
            ids = {o["name"] for o in monitor.cmd("qom-list", path="/objects")}
            assert {"kvmfr-mem-0", "scream-mem"} <= ids
            devices = monitor.cmd("qom-list", path="/machine/peripheral")
            assert {"kvmfr-0", "scream"} <= {d["name"] for d in devices}
            threads = monitor.cmd("query-cpus-fast")
        # the vCPU thread is pinned
        tid = threads[0]["thread-id"]
        assert os.sched_getaffinity(tid) == {cpu}

        # the shared memory: Looking Glass's size for 1080p SDR, 0660, ours
        for path, size in ((shm, 32 << 20), (scream, 2 << 20)):
            st = path.stat()
            assert st.st_size == size and stat.S_IMODE(st.st_mode) == 0o660, (path, st)
            assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())

        # the SPICE UNIX socket accepts a connection
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(rundir / "spice.sock"))

        # the guest boots, and our agent inside it writes into display 0's BAR2 (the device at 00:10.0):
        # the host reads /dev/shm/<name>-0 and checks every pixel of 120 frames
        reader = subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--headless", "--frames", "120",
                                 "--json", "-f", str(shm), "--timeout", "150"], capture_output=True, text=True,
                                timeout=200, env=vm_env)
        serial = (rundir / "serial.log").read_text(errors="replace")
        assert reader.returncode == 0, f"{reader.stdout[-1500:]}\n{reader.stderr[-1500:]}\nserial:\n{serial[-2000:]}"
        got = json.loads(reader.stdout)
        assert got["frames"] == 120 and got["pattern_errors"] == 0 and got["error"] is None
        # written by the guest: the agent reports the kernel it runs on, the guest's, not this host's
        assert got["host"]["capture"] == "testpattern" and got["host"]["os"] == f"Linux {agent_guest.kernel_version}"
        assert (got["width"], got["height"]) == (640, 480)
        # started without --shm, the agent found display 0's device by its label (kvmfr-vm put it at 00:10.0)
        assert "GUEST ready" in serial
        assert ("display 0: writing into /sys/bus/pci/devices/0000:00:10.0/resource2 (from --device auto)"
                in serial), serial[-2000:]
        print(f"120 frames from the guest's agent verified {time.monotonic() - t0:.2f} s after kvmfr-vm start, "
              f"{got['ups']} frames/s; guest kernel {got['host']['os']}")

        # the guest's Scream sender reaches a PulseAudio null sink on the host, through kvmfr-vm's Scream
        # device (/dev/shm/<name>-scream) and our player: the guest's 440 Hz tone comes out
        wait_for(lambda: "GUEST PULSE ready" in (rundir / "serial.log").read_text(errors="replace"), 60,
                 "the guest's PulseAudio")
        player = subprocess.Popen([sys.executable, "-m", "kvmfr_client.audio.cli", "--scream", f"ivshmem:{scream}",
                                   "--sink", host_pulse.sink48, "--server", host_pulse.server],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(2.0)   # the player's start and its jitter buffer filling
            with host_pulse.recorder(host_pulse.sink48) as rec:
                time.sleep(2.0)
            sound = rec.audio()
        finally:
            player_out = stop_process(player)
        from tests.audio.signals import dominant_freq, rms
        assert len(sound) > 48000 and rms(sound[:, 0]) > 1e-3, f"silence on the host sink:\n{player_out[-1500:]}"
        assert dominant_freq(sound[:, 0], 48000) == pytest.approx(440, abs=3)
        print(f"guest tone on the host sink: {dominant_freq(sound[:, 0], 48000):.1f} Hz, rms {rms(sound[:, 0]):.3f}")

        status = kvmfr_vm(vm_env, "status", name, "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["status"] == "running" and info["pid"] == pid and info["accel"] == "tcg"
        assert sorted(info["files"]) == sorted([str(shm), str(scream)])
        listed = json.loads(kvmfr_vm(vm_env, "list", "--json").stdout)
        assert [(r["name"], r["alive"], r["pid"]) for r in listed] == [(name, True, pid)]
        assert kvmfr_vm(vm_env, "start", str(yaml_path), "--no-viewer").returncode == 1   # already running

        # the test guest has no ACPI daemon: power-down goes unanswered, quit follows the grace period
        stopped = kvmfr_vm(vm_env, "stop", str(yaml_path), "--grace", "1")
        assert stopped.returncode == 0, stopped.stderr
        assert "quit" in stopped.stdout
        assert not _alive(pid)
        assert not shm.exists() and not scream.exists() and not rundir.exists()
        assert json.loads(kvmfr_vm(vm_env, "list", "--json").stdout) == []
        assert kvmfr_vm(vm_env, "status", name).returncode == 1
    finally:
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
        for path in (shm, scream):
            path.unlink(missing_ok=True)


VIEWER = """\
#!{python}
# kvmfr-view, recording its command line (one file per process) first.
import os, sys
open(os.path.join({folder!r}, "viewer-%d.argv" % os.getpid()), "w").write("\\n".join(sys.argv[1:]))
os.execv({python!r}, [{python!r}, "-m", "kvmfr_client.cli.view", "-v", *sys.argv[1:]])
"""


def test_two_displays_and_viewers_follow_the_vm(tmp_path, vm_env, agent_guest, xserver):
    """Two displays: two agents in the guest, one per device (found by its label), give two sessions, each
    read back on the host from its own file: display 0 the test pattern, display 1 the guest's own X screen
    (an Xvfb inside the guest painted one colour, captured by ``--source x11``), whose colour shows in its
    file and in its viewer window. ONE viewer process shows both (a window
    each, the real kvmfr-view on a private Xvfb) with the SPICE socket and Scream wired: a key typed into
    either window reaches the guest's evdev over the VM's SPICE socket; a window closed by the user leaves
    the viewer and the VM running; ``stop`` closes the viewer and the supervising ``kvmfr-vm start`` ends
    with 0."""
    from tests.viewer.multi_windows import close_like_its_button, find_window, xdotool
    if missing_x_tools():
        pytest.fail(missing_x_tools())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    recorder = bin_dir / "kvmfr-view"
    recorder.write_text(VIEWER.format(python=sys.executable, folder=str(tmp_path)))
    recorder.chmod(0o755)
    env = dict(vm_env, **xserver.env())
    env["PATH"] = f"{bin_dir}:{vm_env['PATH']}"
    name = f"kvv{os.getpid()}"
    yaml_path = vm_yaml(tmp_path, agent_guest, name, "[{resolution: 1280x720}, {resolution: 1920x1080, hdr: true}]",
                      "audio: scream-ivshmem\nshares: [{path: /, tag: hostroot}]\n",
                      agent_command(video_agent(0, "--device", "auto", "--size", "640x480", "--fps", "20"),
                                    x_screens([(320, 200)], [x11_agent(1, 0, "-v", "--device", "auto", "--fps", "20")])))
    rundir = Path(env["XDG_RUNTIME_DIR"]) / "kvmfr-vm" / name
    supervisor = subprocess.Popen([sys.executable, "-m", "kvmfr_client.vm.cli", "start", str(yaml_path)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pid = 0
    try:
        wait_for(lambda: list(tmp_path.glob("viewer-*.argv")) or supervisor.poll() is not None, 60, "the viewer")
        assert supervisor.poll() is None, supervisor.stdout.read()
        pid = int((rundir / "qemu.pid").read_text())
        [argv_file] = tmp_path.glob("viewer-*.argv")
        vpid, argv = int(argv_file.stem.split("-")[1]), argv_file.read_text().split("\n")
        assert argv[:2] == ["--displays", f"/dev/shm/{name}-0,/dev/shm/{name}-1"], argv
        assert f"spice:host={rundir / 'spice.sock'}" in argv and "spice:port=0" in argv
        assert f"audio:scream=ivshmem:/dev/shm/{name}-scream" in argv
        assert Path(f"/dev/shm/{name}-1").stat().st_size == 64 << 20   # 1080p HDR

        # each display's file holds its own agent's session: display 0's test pattern, verified pixel by pixel
        # by the headless reader, and display 1's X screen, every pixel its colour
        reader = subprocess.Popen([sys.executable, "-m", "kvmfr_client.cli.view", "--headless", "--frames", "60",
                                   "--json", "-f", f"/dev/shm/{name}-0", "--timeout", "150"], env=vm_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        import kvmfr_client
        from kvmfr_client.core.errors import HostNotRunning
        try:
            with kvmfr_client.open(f"/dev/shm/{name}-1", wait=150) as x_session:
                frames = read_frames(x_session, 10, 150)
                x_host = x_session.host
        except HostNotRunning as exc:   # the guest's X screen or its agent never came up: say what the guest said
            pytest.fail(f"display 1 (the guest's X screen): {exc}\n"
                        f"{(rundir / 'serial.log').read_text(errors='replace')[-3000:]}", pytrace=False)
        out, err = reader.communicate(timeout=200)
        serial_text = (rundir / "serial.log").read_text(errors="replace")
        assert reader.returncode == 0, f"{out[-1000:]}\n{err[-1000:]}\n{serial_text[-2000:]}"
        got = json.loads(out)
        assert got["frames"] == 60 and got["pattern_errors"] == 0 and (got["width"], got["height"]) == (640, 480)
        assert len(frames) == 10, serial_text[-2000:]
        assert x_host.capture == "X11" and x_host.session_id != got["host"]["session_id"]
        assert {(f.width, f.height) for f in frames} == {(320, 200)}
        assert [frame_colour_errors(f, 0) for f in frames] == [0] * 10, "display 1 is not its X screen's colour"
        assert "display 1: writing into /sys/bus/pci/devices/0000:00:11.0/resource2" in serial_text

        # one viewer process, a window per display; a key typed into either reaches the guest's keyboard
        # (evprint: EV dev 1 30 1 = KEY_A down, 1 48 1 = KEY_B down)
        win1, win2 = find_window(xserver, f"^{name} - display 1 of 2"), find_window(xserver, f"^{name} - display 2 of 2")
        assert len(list(tmp_path.glob("viewer-*.argv"))) == 1, "one viewer process for the two displays"
        wait_for(lambda: window_shows_colour(xserver.display, win2, 0), 30, "display 2's window showing its X screen")
        assert not window_shows_colour(xserver.display, win1, 0)
        wait_for(lambda: runtime_spice_clients(rundir) > 0, 30, "the viewer's SPICE connection")
        serial = rundir / "serial.log"
        for wid, key, code in ((win1, "a", 30), (win2, "b", 48)):
            xdotool(xserver, "windowfocus", "--sync", wid)
            time.sleep(0.3)
            xdotool(xserver, "key", "--delay", "30", key)
            wait_for(lambda: re.search(rf"^EV \d+ 1 {code} 1$", serial.read_text(errors="replace"), re.M), 20,
                     f"key {key} from window {wid} in the guest's evdev")

        close_like_its_button(xserver, win2)    # the user closes display 2's window
        wait_for(lambda: not xdotool(xserver, "search", "--name", f"^{name} - display 2 of 2"), 10, "window 2 to close")
        time.sleep(0.5)
        assert _alive(pid) and supervisor.poll() is None and _alive(vpid)

        stopped = kvmfr_vm(env, "stop", name, "--grace", "0.5")
        assert stopped.returncode == 0, stopped.stderr
        assert supervisor.wait(20) == 0
        wait_for(lambda: not _alive(vpid), 10, "the viewer to close with the VM")
        assert not _alive(pid) and not rundir.exists()
        assert not any(Path(f"/dev/shm/{name}-{n}").exists() for n in ("0", "1", "scream"))
    finally:
        if supervisor.poll() is None:
            stop_process(supervisor, read_output=False)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
        for n in ("0", "1", "scream"):
            Path(f"/dev/shm/{name}-{n}").unlink(missing_ok=True)


def runtime_spice_clients(rundir: Path) -> int:
    """SPICE channels connected, from QMP's query-spice."""
    from qemu.qmp.legacy import QEMUMonitorProtocol
    with QEMUMonitorProtocol(str(rundir / "qmp.sock")) as monitor:
        monitor.connect()
        return len(monitor.cmd("query-spice").get("channels", []))


def test_qemu_refusing_is_one_line_and_leaves_nothing(tmp_path, vm_env):
    """QEMU starts but refuses the machine (a kernel file that is no kernel): its own last line, status 1,
    and the files and runtime folder made for it are gone."""
    (tmp_path / "empty.k").write_bytes(b"")
    name = f"kvb{os.getpid()}"
    (tmp_path / "vm.yaml").write_text(f"name: {name}\nkernel: empty.k\nvideo: none\nnetwork: none\n"
                                      "displays: [{resolution: 800x600}]\n")
    result = kvmfr_vm(vm_env, "start", str(tmp_path / "vm.yaml"), "--no-viewer")
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("kvmfr-vm: QEMU did not start (1): ")
    assert "could not load kernel" in result.stderr
    assert not Path(f"/dev/shm/{name}-0").exists()
    assert not (Path(vm_env["XDG_RUNTIME_DIR"]) / "kvmfr-vm" / name).exists()
