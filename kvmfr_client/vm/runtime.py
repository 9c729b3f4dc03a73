"""A VM's life: its runtime folder (pid file, QMP and SPICE sockets, serial log, ``state.json``), the
shared-memory files it created, QEMU started daemonized, QMP questions, and the stop that removes it all.

``state.json`` records what this VM created (files, mediated devices) and its viewers, so ``stop`` removes
exactly that: a file that was there before (a tmpfiles.d rule's) or a mediated device that existed stays.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import host
from .command import Plan, runtime_root
from .spec import VmSpec

log = logging.getLogger(__name__)


class VmError(Exception):
    """One line for the user and the exit status (kvmfr_client.config.exits)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass
class State:
    name: str
    rundir: Path
    data: dict

    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    def alive(self) -> bool:
        return pid_alive(self.pid, "qemu")

    def save(self) -> None:
        tmp = self.rundir / "state.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.rundir / "state.json")


def pid_alive(pid: int, expect: str) -> bool:
    """``pid`` runs and its command line mentions ``expect`` (a recycled pid is not our process)."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return expect.encode() in cmdline and status.rsplit(")", 1)[1].split()[0] != "Z"


def load_state(name: str) -> State | None:
    rundir = runtime_root() / name
    try:
        data = json.loads((rundir / "state.json").read_text())
    except (OSError, ValueError):
        if rundir.is_dir():   # started but never got as far as its state: only the folder to remove
            return State(name, rundir, {"name": name})
        return None
    return State(name, rundir, data)


def all_states() -> list[State]:
    root = runtime_root()
    if not root.is_dir():
        return []
    return [s for s in (load_state(p.name) for p in sorted(root.iterdir()) if p.is_dir()) if s is not None]


def _invoking_ids() -> tuple[int, int]:
    """The user who asked (under sudo: SUDO_UID / SUDO_GID, so the files are theirs, not root's)."""
    if os.geteuid() == 0 and os.environ.get("SUDO_UID"):
        return int(os.environ["SUDO_UID"]), int(os.environ.get("SUDO_GID", os.environ["SUDO_UID"]))
    return os.getuid(), os.getgid()


def make_rundir(rundir: Path) -> None:
    root = rundir.parent
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = root.stat()
    if st.st_uid != os.getuid():
        raise VmError(f"{root} belongs to another user (uid {st.st_uid}): set XDG_RUNTIME_DIR to a folder of "
                      "yours", 3)
    rundir.mkdir(mode=0o700, exist_ok=True)


def create_shm(path: str, size: int) -> bool:
    """The display's (or Scream's) backing file, sized, mode 0660, owned by the invoking user; True when
    created here (then ``stop`` removes it). An existing file is kept as it is; QEMU sizes it."""
    uid, gid = _invoking_ids()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        if not Path(path).is_file():
            raise VmError(f"{path} exists and is not a regular file: remove it or choose another path", 3) from None
        if not os.access(path, os.R_OK | os.W_OK):
            raise VmError(f"{path} exists and is not readable and writable by this user: fix its owner "
                          "or mode, or remove it", 3) from None
        log.info("%s exists: used as it is, left at stop", path)
        return False
    except OSError as exc:
        raise VmError(f"cannot create {path}: {exc.strerror}", 3) from None
    try:
        os.fchmod(fd, 0o660)      # whatever the umask
        if (uid, gid) != (os.getuid(), os.getgid()):
            os.fchown(fd, uid, gid)
        os.ftruncate(fd, size)
    except OSError as exc:
        os.close(fd)
        os.unlink(path)
        raise VmError(f"cannot size {path} to {size >> 20} MiB: {exc.strerror}", 3) from None
    os.close(fd)
    return True


def start(spec: VmSpec, plan: Plan, ready_timeout: float = 60.0) -> State:
    """Create the files, start QEMU daemonized, wait for QMP; returns the running VM's state."""
    make_rundir(plan.rundir)
    state = State(spec.name, plan.rundir, {"name": spec.name, "source": str(spec.source), "pid": 0,
                                           "accel": plan.accel, "spice": plan.spice, "qmp": str(plan.qmp),
                                           "files": [], "mdevs": [], "viewers": [], "started": time.time()})
    state.save()
    try:
        for path, size in plan.shm_files:
            if create_shm(path, size):
                state.data["files"].append(path)
                state.save()
        for p in spec.passthrough:
            if p.kind == "mdev":
                try:
                    if host.create_mdev(p):
                        state.data["mdevs"].append(p.uuid)
                        state.save()
                except OSError as exc:
                    raise VmError(f"passthrough[{p.index}].mdev: cannot create {p.mdev_type} on {p.address}: "
                                  f"{exc.strerror} (as root, or with write access to its sysfs create file)", 1) from None
        started = time.monotonic()
        proc = subprocess.run(plan.argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=ready_timeout)
        if proc.returncode != 0:
            said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise VmError(f"QEMU did not start ({proc.returncode}): {said}", 1)
        try:
            state.data["pid"] = int(plan.pidfile.read_text().strip())
        except (OSError, ValueError):
            raise VmError(f"QEMU started but wrote no pid file {plan.pidfile}", 1) from None
        state.save()
        status = qmp(state, "query-status", timeout=max(1.0, ready_timeout - (time.monotonic() - started)))
        state.data["qmp_ready_s"] = round(time.monotonic() - started, 3)
        state.save()
        log.info("QMP ready after %.2f s: %s", state.data["qmp_ready_s"], status)
        if spec.cpu_pinning:
            pin_vcpus(state, spec.cpu_pinning)
    except BaseException:
        cleanup(state, quiet=True)
        raise
    return state


def pin_vcpus(state: State, cpus: tuple[int, ...]) -> None:
    """Each vCPU thread on its host CPU (QEMU's command line cannot say it; QMP names the threads)."""
    for vcpu in qmp(state, "query-cpus-fast"):
        index = vcpu["cpu-index"]
        if index < len(cpus):
            os.sched_setaffinity(vcpu["thread-id"], {cpus[index]})
            log.info("vCPU %d (thread %d) pinned to host CPU %d", index, vcpu["thread-id"], cpus[index])


def qmp(state: State, command: str, timeout: float = 5.0, **args):
    """One QMP command through qemu.qmp; retries connecting until ``timeout`` (QEMU may be starting)."""
    from qemu.qmp import QMPError
    from qemu.qmp.legacy import QEMUMonitorProtocol
    sock = state.data.get("qmp") or str(state.rundir / "qmp.sock")
    deadline = time.monotonic() + timeout
    while True:
        monitor = QEMUMonitorProtocol(sock)
        try:
            monitor.connect()
            monitor.settimeout(max(0.5, deadline - time.monotonic()))
            return monitor.cmd(command, **args)
        # AssertionError: qemu.qmp's connect asserts its state when QEMU closes the socket under it (QEMU
        # quitting, e.g. a guest that powers off at once): the same as a refused connection
        except (OSError, QMPError, EOFError, AssertionError) as exc:
            if time.monotonic() >= deadline:
                raise VmError(f"QEMU's QMP socket {sock} does not answer: {exc}", 1) from None
            time.sleep(0.05)
        finally:
            try:
                monitor.close()
            except (OSError, QMPError, EOFError):   # QEMU quit (or died) under us: nothing left to close
                pass


def stop(state: State, grace: float = 30.0) -> str:
    """ACPI power-down, then QMP quit after ``grace`` seconds, then SIGKILL; then remove everything."""
    how = "was not running"
    if state.alive():
        how = "powered down"
        try:
            qmp(state, "system_powerdown", timeout=2.0)
        except VmError:
            pass
        if not _wait_gone(state.pid, grace):
            how = f"did not power down within {grace:g} s: quit"
            try:
                qmp(state, "quit", timeout=2.0)
            except VmError:
                pass
            if not _wait_gone(state.pid, 5.0):
                how = "killed (QMP quit did not end it)"
                _kill(state.pid)
    cleanup(state)
    return how


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid, "qemu"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_gone(pid, 5.0)


def close_viewers(state: State) -> None:
    for pid in state.data.get("viewers", []):
        if pid_alive(pid, "kvmfr"):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for pid in state.data.get("viewers", []):
        deadline = time.monotonic() + 5
        while pid_alive(pid, "kvmfr") and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid, "kvmfr"):
            os.kill(pid, signal.SIGKILL)


def cleanup(state: State, quiet: bool = False) -> None:
    """Remove what this VM created: viewers, shared-memory files, mediated devices, the runtime folder."""
    if state.alive():
        _kill(state.pid)   # only on a failed start; stop() ended it already
    close_viewers(state)
    for path in state.data.get("files", []):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if not quiet:
                log.warning("could not remove %s: %s", path, exc.strerror)
    for uuid in state.data.get("mdevs", []):
        try:
            host.remove_mdev(uuid)
        except OSError as exc:
            log.warning("could not remove mediated device %s: %s", uuid, exc.strerror)
    spice = state.data.get("spice", "")
    if spice.startswith("unix:") and Path(spice[5:]).parent != state.rundir:
        Path(spice[5:]).unlink(missing_ok=True)
    shutil.rmtree(state.rundir, ignore_errors=True)
