"""The QEMU command line for a :class:`~kvmfr_client.vm.spec.VmSpec`, the files it needs, and the viewers.

How a display's device is found by identity, not by order:

* host side: display n is the memory backend ``kvmfr-mem-<n>`` (backing file ``/dev/shm/<vm>-<n>``) and the
  device ``kvmfr-<n>``; Scream's is ``scream-mem`` / ``scream`` (``/dev/shm/<vm>-scream``); QMP's
  ``qom-list /objects`` and ``info pci`` show these ids.
* guest side: every IVSHMEM device is PCI 1af4:1110, so each carries a label (an SMBIOS type 41 record:
  ``kvmfr-display-<n>``, ``kvmfr-scream``) that Linux shows in sysfs and the guest agent looks for, and sits
  at a fixed slot on the root bus: display n at ``00:1<n>.0`` (0x10..0x17), Scream at ``00:0f.0``
  (:mod:`kvmfr_client.core.ivshmem_ids`).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from . import host
from kvmfr_client.core.ivshmem_ids import DISPLAY_SLOT, SCREAM_LABEL, SCREAM_SLOT, display_label, smbios_label
from .spec import VmSpec, show_bytes

QEMU = "qemu-system-x86_64"


@dataclass
class Plan:
    """What ``start`` runs and creates; ``--dry-run`` prints it."""

    argv: list[str]
    rundir: Path
    spice: str                                             # unix:/path or 127.0.0.1:PORT
    shm_files: list[tuple[str, int]] = field(default_factory=list)   # (path, size) created if missing
    disk_argv: list[str] = field(default_factory=list)     # qemu-img create (create only)
    viewers: list[list[str]] = field(default_factory=list)
    accel: str = "tcg"
    accel_why: str = ""

    @property
    def qmp(self) -> Path:
        return self.rundir / "qmp.sock"

    @property
    def pidfile(self) -> Path:
        return self.rundir / "qemu.pid"

    def runtime_files(self) -> list[str]:
        files = [self.rundir, self.pidfile, self.qmp, self.rundir / "serial.log", self.rundir / "state.json"]
        if self.spice.startswith("unix:") and Path(self.spice[5:]).parent == self.rundir:
            files.append(Path(self.spice[5:]))
        return [str(f) for f in files]


def runtime_root() -> Path:
    """Where VMs keep their sockets and pid files: $XDG_RUNTIME_DIR (or /run/user/<uid>)/kvmfr-vm; on a
    machine with neither, /tmp/kvmfr-vm-<uid> (created 0700, and refused if someone else owns it)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "kvmfr-vm"
    run_user = Path(f"/run/user/{os.getuid()}")
    if run_user.is_dir():
        return run_user / "kvmfr-vm"
    return Path(f"/tmp/kvmfr-vm-{os.getuid()}")


def build(spec: VmSpec, *, iso: str | None = None, boot_iso: bool = False, disk_size: int | None = None,
          viewer: bool = True, qemu: str = QEMU) -> Plan:
    rundir = runtime_root() / spec.name
    kind, why = host.accel(spec)
    a: list[str] = [qemu, "-name", f"{spec.name},debug-threads=on", "-nodefaults", "-no-user-config"]
    machine = f"{spec.machine},accel={kind}"
    memory_backend = _memory_backend(spec)
    if memory_backend:
        machine += ",memory-backend=ram"
    a += ["-machine", machine, "-cpu", "host" if kind == "kvm" else "max",
          "-smp", f"{spec.cpus},sockets=1,cores={spec.cpus},threads=1", "-m", show_bytes(spec.memory)]
    if memory_backend:
        a += ["-object", memory_backend]
    a += ["-display", "none", "-vga", "std" if spec.video == "vga" else spec.video, "-monitor", "none",
          "-serial", f"file:{rundir / 'serial.log'}",
          "-qmp", f"unix:{rundir / 'qmp.sock'},server=on,wait=off",
          "-pidfile", str(rundir / "qemu.pid"), "-daemonize"]
    # SPICE: keyboard, mouse, clipboard, maybe sound. Never on a public address unless the file allows it.
    if spec.spice.port:
        spice = f"{spec.spice.address}:{spec.spice.port}"
        opts = f"port={spec.spice.port},addr={spec.spice.address}"
    else:
        path = spec.spice.socket or str(rundir / "spice.sock")
        spice = f"unix:{path}"
        opts = f"unix=on,addr={path}"
    if spec.spice.password_file:
        a += ["-object", f"secret,id=spicepw,file={spec.spice.password_file}", "-spice", f"{opts},password-secret=spicepw"]
    else:
        a += ["-spice", f"{opts},disable-ticketing=on"]
    if spec.vdagent:
        a += ["-device", "virtio-serial-pci,id=vdagent-serial", "-chardev", "spicevmc,id=vdagent,name=vdagent",
              "-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0"]
    shm_files = []
    for d in spec.displays:
        a += ["-object", f"memory-backend-file,id=kvmfr-mem-{d.index},share=on,mem-path={d.path},size={show_bytes(d.size)}",
              "-device", f"ivshmem-plain,id=kvmfr-{d.index},memdev=kvmfr-mem-{d.index},bus=pcie.0,"
                         f"addr={DISPLAY_SLOT + d.index:#04x}"]
        a += smbios_label(display_label(d.index), f"kvmfr-{d.index}", d.index + 1)
        if not d.is_kvmfr_device:
            shm_files.append((d.path, d.size))
    au = spec.audio
    if au.kind == "scream-ivshmem":
        a += ["-object", f"memory-backend-file,id=scream-mem,share=on,mem-path={au.path},size={show_bytes(au.size)}",
              "-device", f"ivshmem-plain,id=scream,memdev=scream-mem,bus=pcie.0,addr={SCREAM_SLOT:#04x}"]
        a += smbios_label(SCREAM_LABEL, "scream", 9)
        shm_files.append((au.path, au.size))
    elif au.kind == "spice":
        a += ["-audiodev", "spice,id=snd0", "-device", "ich9-intel-hda,id=sound0",
              "-device", "hda-duplex,audiodev=snd0"]
    if spec.network == "none":
        a += ["-nic", "none"]
    elif spec.network == "user":
        a += ["-nic", "user,model=virtio-net-pci"]
    else:
        a += ["-nic", f"bridge,br={spec.network.split(':', 1)[1]},model=virtio-net-pci"]
    if spec.disk:
        a += ["-drive", f"file={spec.disk},format={spec.disk_format},if=virtio,cache=none"]
    if iso:
        a += ["-drive", f"file={iso},media=cdrom,readonly=on,if=ide,index=2"]
        if boot_iso:
            a += ["-boot", "once=d"]
    if spec.kernel:
        a += ["-kernel", spec.kernel]
        if spec.initrd:
            a += ["-initrd", spec.initrd]
        if spec.append:
            a += ["-append", spec.append]
    for sh in spec.shares:
        # read-only: the host's permissions as they are; writable: guest ownership kept in xattrs, so a guest
        # root cannot make host files that are root's
        model = "none" if sh.readonly else "mapped-xattr"
        a += ["-virtfs", f"local,path={sh.path},mount_tag={sh.tag},security_model={model},multidevs=remap"
                         + (",readonly=on" if sh.readonly else "")]
    for p in spec.passthrough:
        ident = f"hostdev-{p.index}"
        if p.kind == "vfio":
            a += ["-device", f"vfio-pci,host={p.address},id={ident}"]
        elif p.kind == "mdev":
            a += ["-device", f"vfio-pci,sysfsdev={host.SYS_MDEV / p.uuid},id={ident},display=off"]
        else:
            a += ["-device", f"vfio-pci,sysfsdev={host.vf_path(p)},id={ident}"]
    disk_argv = []
    if disk_size is not None and spec.disk:
        disk_argv = ["qemu-img", "create", "-q", "-f", spec.disk_format, spec.disk, str(disk_size)]
    plan = Plan(a, rundir, spice, shm_files, disk_argv, accel=kind, accel_why=why)
    if viewer:
        plan.viewers = [_viewer(spec, plan)] if spec.displays else []
    return plan


def _memory_backend(spec: VmSpec) -> str:
    """Guest RAM from hugepages and/or bound to a NUMA node (Looking Glass's performance guide)."""
    if not spec.hugepages and spec.numa_node is None:
        return ""
    if spec.hugepages:
        text = f"memory-backend-file,id=ram,size={show_bytes(spec.memory)},mem-path=/dev/hugepages,prealloc=on,share=on"
    else:
        text = f"memory-backend-ram,id=ram,size={show_bytes(spec.memory)}"
    if spec.numa_node is not None:
        text += f",host-nodes={spec.numa_node},policy=bind"
    return text


def _viewer(spec: VmSpec, plan: Plan) -> list[str]:
    """One kvmfr-view for all the displays (a window each: --displays), with the SPICE connection (input goes
    to the focused window's display) and the audio. SPICE admits one client at a time: one process shares it."""
    paths = [d.path for d in spec.displays]
    shm = ["-f", paths[0]] if len(paths) == 1 else ["--displays", ",".join(paths)]
    argv = ["kvmfr-view", *shm, f"win:title={spec.name}"]
    if plan.spice.startswith("unix:"):
        argv += [f"spice:host={plan.spice[5:]}", "spice:port=0"]
    else:
        host_, port = plan.spice.rsplit(":", 1)
        argv += [f"spice:host={host_}", f"spice:port={port}"]
    if spec.spice.password_file:
        argv += [f"spice:passwordFile={spec.spice.password_file}"]
    if spec.audio.kind == "scream-ivshmem":
        argv += [f"audio:scream=ivshmem:{spec.audio.path}"]
    elif spec.audio.kind == "scream-network":
        argv += [f"audio:scream={spec.audio.target}"]
        if spec.audio.interface:
            argv += [f"audio:interface={spec.audio.interface}"]
    elif spec.audio.kind == "spice":
        argv += ["audio:spice=yes"]
    return argv


def describe(plan: Plan) -> str:
    """The ``--dry-run`` text: the command lines and every file it would create."""
    lines = ["# acceleration: " + f"{plan.accel.upper()} ({plan.accel_why})"]
    if plan.disk_argv:
        lines += ["# disk image", shlex.join(plan.disk_argv)]
    lines += ["# QEMU", " \\\n    ".join(_grouped(plan.argv))]
    lines += ["# files it would create"]
    lines += [f"{path}  ({show_bytes(size)}, mode 0660)" for path, size in plan.shm_files]
    lines += [f"{f}" for f in plan.runtime_files()]
    if plan.viewers:
        lines += ["# viewers"] + [shlex.join(v) for v in plan.viewers]
    lines += [f"# SPICE: {plan.spice}"]
    return "\n".join(lines) + "\n"


def _grouped(argv: list[str]) -> list[str]:
    """Flag and value on one line each, quoted as a shell would need."""
    out, i = [shlex.quote(argv[0])], 1
    while i < len(argv):
        if i + 1 < len(argv) and argv[i].startswith("-") and not argv[i + 1].startswith("-"):
            out.append(f"{argv[i]} {shlex.quote(argv[i + 1])}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out

