"""Finding this guest's IVSHMEM device by itself: the display's (or Scream's) shared memory, by its label.

Every IVSHMEM device is PCI 1af4:1110. ``kvmfr-vm`` labels each one (an SMBIOS type 41 record, shown by Linux
as ``/sys/bus/pci/devices/<addr>/label``): ``kvmfr-display-<n>`` for display n, ``kvmfr-scream`` for Scream
(:mod:`kvmfr_client.core.ivshmem_ids`). ``auto`` picks the device with the display's label. In a VM whose devices
carry no label (made by hand or by libvirt), a display device is one whose shared memory is larger than a
Scream ring (2 MiB): exactly one such device is display 0; several are an error that lists them, and
``--device ADDRESS`` chooses.

The device's memory is BAR2. It is used through the kvmfr module's ``/dev/kvmfrN`` when that module drives
the device, else through sysfs (``resource2``, root's; the device's memory decoding is switched on first,
as the kernel leaves it off until a driver asks). uio is not used: ``uio_pci_generic`` exposes no memory map.

Only the kernel's own sysfs files are read here, each with a size limit; standard library only, since
``agent:shmFile``'s default (inside a VM: ``auto``) is computed when the options load.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kvmfr_client.core.ivshmem_ids import (IVSHMEM_DEVICE, IVSHMEM_VENDOR, LABEL_PREFIX, SCREAM_IVSHMEM_SIZE,
                                           SCREAM_LABEL, display_label)

SYSFS = "/sys"
AUTO = "auto"
PCI_ADDRESS = re.compile(r"(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")


class DeviceError(Exception):
    """No usable device, or several where one was wanted: one line saying what to do."""


@dataclass(frozen=True)
class IvshmemDevice:
    address: str          # 0000:00:10.0
    folder: Path          # its sysfs folder
    label: str            # "" when the VM gave it none
    size: int             # bytes of BAR2 (the shared memory)

    def describe(self) -> str:
        return f"{self.address} ({self.label + ', ' if self.label else ''}{_mib(self.size)})"


def _mib(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size} bytes"


def _read(path: Path, limit: int = 4096) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("ascii", "replace").strip()
    except OSError:
        return ""


def _bar2_size(folder: Path) -> int:
    """From sysfs ``resource``: one ``start end flags`` line per BAR, in hex."""
    lines = _read(folder / "resource", 16384).splitlines()
    try:
        start, end = (int(v, 16) for v in lines[2].split()[:2])
    except (IndexError, ValueError):
        return 0
    return end - start + 1 if end > start else 0


def scan(sysfs: str = SYSFS) -> list[IvshmemDevice]:
    """Every IVSHMEM device (PCI 1af4:1110) of this machine, by address."""
    root = Path(sysfs) / "bus" / "pci" / "devices"
    try:
        folders = sorted(root.iterdir())
    except OSError:
        return []
    found = []
    for folder in folders:
        try:
            vendor, device = int(_read(folder / "vendor"), 16), int(_read(folder / "device"), 16)
        except ValueError:
            continue
        if (vendor, device) == (IVSHMEM_VENDOR, IVSHMEM_DEVICE):
            label = _read(folder / "label", 256)
            found.append(IvshmemDevice(folder.name, folder, label if label.isprintable() else "", _bar2_size(folder)))
    return found


def has_ivshmem(sysfs: str = SYSFS) -> bool:
    """Whether this machine has an IVSHMEM device: then it is a VM that shares memory with its host."""
    return bool(scan(sysfs))


def _no_device() -> DeviceError:
    return DeviceError("no IVSHMEM device (PCI 1af4:1110) in this machine: give the VM an ivshmem-plain device "
                       "(kvmfr-vm does), or give --shm a shared-memory file")


def _by_label(devices: list[IvshmemDevice], label: str, what: str) -> IvshmemDevice:
    hits = [d for d in devices if d.label == label]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise DeviceError(f"{len(hits)} IVSHMEM devices are labelled {label} ({', '.join(d.address for d in hits)}): "
                          "choose one with --device ADDRESS")
    raise DeviceError(f"no IVSHMEM device is labelled {label} for {what}; this VM has "
                      f"{', '.join(d.describe() for d in devices)}: check the VM's displays, or choose one with "
                      "--device ADDRESS")


def find_display(n: int, sysfs: str = SYSFS) -> IvshmemDevice:
    """Display n's device: the one labelled ``kvmfr-display-<n>``, or, without labels, the one device larger
    than a Scream ring (display 0 only)."""
    devices = scan(sysfs)
    if not devices:
        raise _no_device()
    if any(d.label.startswith(LABEL_PREFIX) for d in devices):
        return _by_label(devices, display_label(n), f"display {n}")
    displays = [d for d in devices if d.size > SCREAM_IVSHMEM_SIZE]
    if n == 0 and len(displays) == 1:
        return displays[0]
    if not displays:
        raise DeviceError(f"no IVSHMEM device here is larger than a Scream ring ({_mib(SCREAM_IVSHMEM_SIZE)}), as a "
                          f"display's is ({', '.join(d.describe() for d in devices)}): give the VM a display device, "
                          "or choose one with --device ADDRESS")
    raise DeviceError(f"{len(displays)} IVSHMEM devices could be display {n} and none carries a kvmfr-vm label "
                      f"({', '.join(d.describe() for d in displays)}): choose one with --device ADDRESS")


def find_scream(sysfs: str = SYSFS) -> IvshmemDevice:
    """Scream's device: the one labelled ``kvmfr-scream``, or, without labels, the one of at most 2 MiB."""
    devices = scan(sysfs)
    if not devices:
        raise _no_device()
    if any(d.label.startswith(LABEL_PREFIX) for d in devices):
        return _by_label(devices, SCREAM_LABEL, "Scream")
    small = [d for d in devices if 0 < d.size <= SCREAM_IVSHMEM_SIZE]
    if len(small) == 1:
        return small[0]
    raise DeviceError(f"{'no' if not small else len(small)} IVSHMEM devices of at most {_mib(SCREAM_IVSHMEM_SIZE)} "
                      "(a Scream ring) here "
                      f"({', '.join(d.describe() for d in devices)}): choose one with --ivshmem ADDRESS")


def find_address(text: str, sysfs: str = SYSFS) -> IvshmemDevice:
    m = PCI_ADDRESS.fullmatch(text.strip())
    if m is None:
        raise DeviceError(f"{text!r} is not a PCI address such as 0000:00:10.0")
    address = f"{(m[1] or '0000').lower()}:{m[2].lower()}:{m[3].lower()}.{m[4]}"
    devices = scan(sysfs)
    for d in devices:
        if d.address == address:
            return d
    if (Path(sysfs) / "bus" / "pci" / "devices" / address).exists():
        raise DeviceError(f"PCI device {address} is not an IVSHMEM device (1af4:1110)"
                          + (f"; those are {', '.join(d.describe() for d in devices)}" if devices else ""))
    raise DeviceError(f"there is no PCI device {address}"
                      + (f"; the IVSHMEM devices are {', '.join(d.describe() for d in devices)}" if devices else ""))


def memory_path(dev: IvshmemDevice, need: int = 0, what: str = "") -> str:
    """The file that maps ``dev``'s shared memory: ``/dev/kvmfrN`` when the kvmfr module drives it, else its
    sysfs ``resource2`` (memory decoding switched on first). ``need``: bytes the frames need (``what``)."""
    if need and dev.size and dev.size < need:
        raise DeviceError(f"the IVSHMEM device {dev.describe()} is too small: {what} frames need {_mib(need)}; give "
                          "the display more memory (kvmfr-vm: displays[n].size) or lower --size")
    try:
        kvmfr = sorted(p.name for p in (dev.folder / "kvmfr").iterdir())
    except OSError:
        kvmfr = []
    if kvmfr:
        return f"/dev/{kvmfr[0]}"
    enable = dev.folder / "enable"
    if _read(enable) == "0":
        try:
            enable.write_text("1")
        except OSError as exc:
            raise DeviceError(f"cannot switch on the IVSHMEM device {dev.address} ({exc.strerror}): its memory is "
                              "root's through sysfs; run the agent as root (kvmfr-agent install-service --system) "
                              "or load the kvmfr module") from None
    resource = dev.folder / "resource2"
    if not os.access(resource, os.R_OK | os.W_OK):
        raise DeviceError(f"{resource} is not readable and writable by this user: run the agent as root "
                          "(kvmfr-agent install-service --system) or load the kvmfr module")
    return str(resource)


def resolve_display(target: str, display: int, need: int = 0, what: str = "", sysfs: str = SYSFS) -> str:
    """``agent:shmFile`` -> the file to write: ``auto`` (display ``display``'s device), a PCI address, or a
    path as it is."""
    if target == AUTO:
        return memory_path(find_display(display, sysfs), need, what)
    if PCI_ADDRESS.fullmatch(target.strip()):
        return memory_path(find_address(target, sysfs), need, what)
    return target


def resolve_scream(target: str, sysfs: str = SYSFS) -> str:
    """``kvmfr-agent audio --ivshmem``: ``auto`` (the Scream device), a PCI address, or a path as it is."""
    if target == AUTO:
        return memory_path(find_scream(sysfs))
    if PCI_ADDRESS.fullmatch(target.strip()):
        return memory_path(find_address(target, sysfs))
    return target
