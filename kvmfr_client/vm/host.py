"""What this host offers a VM: acceleration, the files the description names, passthrough devices in sysfs,
hugepages, NUMA nodes and CPUs. Each check returns problems as one-line messages naming the key."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .spec import Passthrough, VmSpec, show_bytes

SYS_PCI = Path("/sys/bus/pci/devices")
SYS_MDEV = Path("/sys/bus/mdev/devices")


def accel(spec: VmSpec, cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str]:
    """(``kvm`` or ``tcg``, why). KVM only when the CPU has vmx or svm: a software KVM (kvm_pvm) also
    provides /dev/kvm but cannot run a stock guest kernel (docs/vm.md)."""
    if spec.accel != "auto":
        return spec.accel, f"accel: {spec.accel} in {spec.source.name}"
    try:
        flags = cpuinfo.read_text()
    except OSError:
        flags = ""
    if re.search(r"\b(vmx|svm)\b", flags):
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
            return "kvm", "this CPU has hardware virtualisation (vmx/svm)"
        return "tcg", "this CPU has vmx/svm but /dev/kvm is not usable by this user (add yourself to group kvm)"
    return "tcg", "this CPU has no hardware virtualisation (no vmx/svm in /proc/cpuinfo): QEMU emulates, slowly"


def missing_files(spec: VmSpec, iso: str | None, flag: str = "--iso") -> list[str]:
    """Files the description (or --iso / --preinstall) names that are not there."""
    problems = []
    for key, path in (("kernel", spec.kernel), ("initrd", spec.initrd), ("spice.password_file", spec.spice.password_file)):
        if path and not Path(path).is_file():
            problems.append(f"{key}: {path} does not exist or is not a file")
    if iso is not None and not Path(iso).is_file():
        problems.append(f"{flag}: {iso} does not exist or is not a file")
    for n, sh in enumerate(spec.shares):
        if not Path(sh.path).is_dir():
            problems.append(f"shares[{n}].path: {sh.path} is not a folder")
    if spec.spice.socket and not Path(spec.spice.socket).parent.is_dir():
        problems.append(f"spice.socket: the folder {Path(spec.spice.socket).parent} does not exist")
    return problems


def device_problems(spec: VmSpec) -> list[str]:
    """/dev/kvmfrN displays whose device is not on this host (``--dry-run`` only notes them)."""
    problems = []
    for d in spec.displays:
        if d.is_kvmfr_device:
            try:
                if not stat.S_ISCHR(os.stat(d.path).st_mode):
                    problems.append(f"displays[{d.index}].path: {d.path} is not a character device")
            except OSError:
                problems.append(f"displays[{d.index}].path: {d.path} does not exist (load the kvmfr module: "
                                "modprobe kvmfr static_size_mb=...)")
    return problems


def vf_path(p: Passthrough) -> Path:
    return SYS_PCI / p.address / f"virtfn{p.vf}"


def passthrough_problems(spec: VmSpec) -> list[str]:
    """Passthrough entries whose device is not on this host (or not usable through VFIO)."""
    problems = []
    for p in spec.passthrough:
        key = f"passthrough[{p.index}]"
        if p.kind == "vfio":
            dev = SYS_PCI / p.address
            if not dev.exists():
                problems.append(f"{key}.vfio: no PCI device {p.address} on this host (lspci -D lists them)")
            elif _driver(dev) != "vfio-pci":
                problems.append(f"{key}.vfio: {p.address} is bound to {_driver(dev) or 'no driver'}, not vfio-pci "
                                "(bind it: driverctl set-override " + p.address + " vfio-pci)")
        elif p.kind == "mdev":
            types = SYS_PCI / p.address / "mdev_supported_types"
            if not (SYS_PCI / p.address).exists():
                problems.append(f"{key}.mdev.parent: no PCI device {p.address} on this host")
            elif not types.is_dir():
                problems.append(f"{key}.mdev.parent: {p.address} offers no mediated devices "
                                "(no mdev_supported_types: GVT-g needs i915.enable_gvt=1, vGPU the vendor's driver)")
            elif not (types / p.mdev_type).is_dir():
                have = ", ".join(sorted(t.name for t in types.iterdir())) or "none"
                problems.append(f"{key}.mdev.type: {p.address} has no type {p.mdev_type} (it has: {have})")
            elif not (SYS_MDEV / p.uuid).exists() and _int(types / p.mdev_type / "available_instances") == 0:
                problems.append(f"{key}.mdev.type: no {p.mdev_type} instance left on {p.address}")
        else:
            if not (SYS_PCI / p.address).exists():
                problems.append(f"{key}.sriov_vf.pf: no PCI device {p.address} on this host")
            elif not vf_path(p).exists():
                total = _int(SYS_PCI / p.address / "sriov_numvfs")
                problems.append(f"{key}.sriov_vf.vf: {p.address} has no virtual function {p.vf} "
                                f"({total if total is not None else 'no'} enabled; "
                                f"echo N > /sys/bus/pci/devices/{p.address}/sriov_numvfs)")
    return problems


def placement_problems(spec: VmSpec) -> list[str]:
    """CPU pinning, NUMA node and hugepages the host cannot give."""
    problems = []
    usable = os.sched_getaffinity(0)
    for cpu in spec.cpu_pinning:
        if cpu not in usable:
            problems.append(f"cpu_pinning: host CPU {cpu} is not available (this host offers {_ranges(usable)})")
    if spec.numa_node is not None and not Path(f"/sys/devices/system/node/node{spec.numa_node}").is_dir():
        nodes = sorted(p.name[4:] for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
        problems.append(f"numa_node: this host has no NUMA node {spec.numa_node} (it has {', '.join(nodes) or 'none'})")
    if spec.hugepages:
        free = hugepages_free()
        if not Path("/dev/hugepages").is_dir():
            problems.append("hugepages: /dev/hugepages is not mounted (mount -t hugetlbfs none /dev/hugepages)")
        elif free < spec.memory:
            problems.append(f"hugepages: {show_bytes(spec.memory)} of memory wanted, {show_bytes(free)} of hugepages "
                            f"free (raise vm.nr_hugepages)")
    return problems


def hugepages_free(meminfo: Path = Path("/proc/meminfo")) -> int:
    text = meminfo.read_text()
    pages = re.search(r"HugePages_Free:\s+(\d+)", text)
    size = re.search(r"Hugepagesize:\s+(\d+) kB", text)
    return int(pages.group(1)) * int(size.group(1)) * 1024 if pages and size else 0


def create_mdev(p: Passthrough) -> bool:
    """Create the mediated device; False when it existed already (then stop leaves it)."""
    if (SYS_MDEV / p.uuid).exists():
        return False
    (SYS_PCI / p.address / "mdev_supported_types" / p.mdev_type / "create").write_text(p.uuid)
    return True


def remove_mdev(uuid: str) -> None:
    remove = SYS_MDEV / uuid / "remove"
    if remove.exists():
        remove.write_text("1")


def _driver(dev: Path) -> str:
    link = dev / "driver"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else ""


def _int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _ranges(cpus: set[int]) -> str:
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
        else:
            if run:
                out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)
