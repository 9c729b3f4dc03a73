"""``kvmfr-vm demo``: a real VM in one command. Boots the tiny Linux guest (:mod:`.guest_image`, built once
from Debian's packages) with one display, a Scream device and SPICE; inside it our agent finds its IVSHMEM
device by itself (started without ``--shm``: ``--device auto`` is its default in a VM) and draws the test
pattern, a PulseAudio of the guest plays a 440 Hz tone that ``kvmfr-agent audio --ivshmem auto`` sends as
Scream, and every key the guest receives is printed here (``guest: key 30 down``). The viewer shows it with
SPICE input and the audio wired, as ``kvmfr-vm start`` wires them.

The guest runs this installation's Python from the host's root, shared read-only over virtio-9p: nothing is
copied into it, and it can read (not write) what this user's QEMU can read.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from . import command, guest_image, runtime, spec as vmspec
from .runtime import VmError

NAME = "kvmfr-demo"
LATER_S = 5   # seconds after the agent the guest's sound and key printer start

# The guest's sound (run chrooted in the host's tree, as root, with a read-only root): a PulseAudio of its
# own whose null sink module-sine plays a 440 Hz tone into, and our Scream sender recording its monitor into
# the Scream device, found by its label. $1: the project's Python.
GUEST_AUDIO = """\
mkdir -p /dev/shm/home /dev/shm/run   # /dev is the guest's devtmpfs: the one writable place
export HOME=/dev/shm/home XDG_RUNTIME_DIR=/dev/shm/run
if ! command -v pulseaudio >/dev/null; then echo "GUEST no pulseaudio on the host: the guest plays no tone"; exit 0; fi
pulseaudio -n --daemonize=no --exit-idle-time=-1 --disable-shm=yes --use-pid-file=no --log-level=error \\
  -L "module-null-sink sink_name=guest rate=48000" \\
  -L "module-native-protocol-unix auth-anonymous=1 socket=/dev/shm/run/pa.sock" \\
  -L "module-sine sink=guest frequency=440" &
i=0
while [ ! -S /dev/shm/run/pa.sock ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
echo "GUEST PULSE ready: a 440 Hz tone goes out as Scream"
exec "$1" -m guest_agent audio --ivshmem auto --source guest.monitor --server unix:/dev/shm/run/pa.sock
"""


def package_root() -> Path:
    """The folder holding ``kvmfr_client`` and ``guest_agent`` (site-packages, or a checkout): the guest runs
    ``python -m guest_agent`` from there."""
    return Path(__file__).resolve().parents[2]


def _yaml(name: str, image: guest_image.GuestImage, size: str, guestcmd: str) -> str:
    return (f"name: {name}\ncpus: 1\nmemory: 512M\nvideo: none\nnetwork: none\nvdagent: false\n"
            f"kernel: {image.kernel}\ninitrd: {image.initrd}\n"
            f"append: console=ttyS0 quiet panic=-1 i8042.nopnp {guestcmd}\n"
            f"displays: [{{resolution: {size}}}]\naudio: scream-ivshmem\n"
            f"shares: [{{path: /, tag: {guest_image.SHARE_TAG}}}]\n")


def _follow_serial(path: Path, name: str, stop: threading.Event) -> None:
    """Print the guest's own lines (``GUEST ...``: keys, sound) from its serial console as they come."""
    pos = 0
    while not stop.wait(0.2):
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except OSError:
            continue
        end = data.rfind(b"\n") + 1
        pos += end
        for line in data[:end].decode(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("GUEST "):
                print(f"{name}: guest: {line[6:]}", flush=True)


def run(args, supervise) -> int:
    """The demo; ``supervise(spec, state, plan)`` runs the viewers (kvmfr-vm start's own)."""
    import shutil
    import signal

    from kvmfr_client.config import exits
    if shutil.which(command.QEMU) is None:
        raise VmError("the demo needs QEMU: apt-get install qemu-system-x86 (scripts/demo.sh then runs it; "
                      "without QEMU it shows the host-side demo)", 1)
    name = args.name
    existing = runtime.load_state(name)
    if existing is not None:
        if existing.alive():
            raise VmError(f"{name} is already running (QEMU pid {existing.pid}): kvmfr-vm stop {name}", 1)
        runtime.cleanup(existing)
    image = guest_image.build(say=lambda text: print(f"{name}: {text}", flush=True))
    python, root = sys.executable, package_root()
    rundir = command.runtime_root() / name
    for what, path in (("Python", python), ("kvmfr-client", str(root)), ("runtime folder", str(rundir))):
        if any(c in path for c in " +\t"):
            raise VmError(f"the demo cannot pass the {what} path {path!r} to the guest (it holds a space or '+')", 1)
    runtime.make_rundir(rundir)
    try:
        (rundir / "guest-audio.sh").write_text(GUEST_AUDIO)
        size = f"{args.size[0]}x{args.size[1]}"
        # the picture first: under TCG, three Pythons starting at once take three times as long to the first
        # frame; the sound and the key printer follow a few seconds later
        guestcmd = guest_image.guest_command(
            f"cd {root}; {python} -m guest_agent --size {size} --fps {args.fps:g}",
            f"(sleep {LATER_S}; sh {rundir}/guest-audio.sh {python})",
            f"(sleep {LATER_S}; {python} -m kvmfr_client.vm.guest_keys)")
        yaml_path = rundir / "demo.yaml"
        yaml_path.write_text(_yaml(name, image, size, guestcmd))
        spec = vmspec.load(yaml_path)
    except (OSError, vmspec.SpecErrors) as exc:
        runtime.cleanup(runtime.State(name, rundir, {"name": name}))
        raise VmError(f"cannot prepare the demo VM: {exc}", 3 if isinstance(exc, OSError) else 2) from None
    plan = command.build(spec, viewer=not args.no_viewer)
    print(f"{name}: acceleration {plan.accel.upper()} ({plan.accel_why})", flush=True)
    state = runtime.start(spec, plan, ready_timeout=args.timeout)
    display = spec.displays[0]
    print(f"{name}: running, QEMU pid {state.pid}; the guest's agent draws {size} at {args.fps:g} frames/s into "
          f"{display.path}, its Scream tone goes to {spec.audio.path}, SPICE {plan.spice}", flush=True)
    stop_follow = threading.Event()
    follower = threading.Thread(target=_follow_serial, args=(rundir / "serial.log", name, stop_follow),
                                name="serial", daemon=True)
    follower.start()
    timer = None
    try:
        if args.seconds:
            # the same way as Ctrl+C: the supervising loop stops the VM
            timer = threading.Timer(args.seconds, os.kill, (os.getpid(), signal.SIGTERM))
            timer.daemon = True
            timer.start()
        if plan.viewers:
            supervise(spec, state, plan)
        else:
            print(f"{name}: no viewer: kvmfr-view -f {display.path} spice:host={plan.spice[5:]} spice:port=0 "
                  f"audio:scream=ivshmem:{spec.audio.path} shows it; Ctrl+C stops the VM", flush=True)
            stop_requested: list[int] = []
            with exits.on_stop_signals(stop_requested.append):
                while not stop_requested and state.alive():
                    time.sleep(0.2)
            if not stop_requested:
                print(f"{name}: QEMU ended", flush=True)
    finally:
        if timer is not None:
            timer.cancel()
        stop_follow.set()
        if state.alive() or state.rundir.exists():
            how = runtime.stop(state, grace=3)   # the guest's key printer powers it off on the ACPI button
            print(f"{name}: {how}; its files removed", flush=True)
    return exits.OK
