"""Build the test guest: a Debian kernel (uncompressed, for fast direct boot under TCG) and an initramfs
with busybox, the input modules and our event printer. Everything is cached under ``.cache/guest``.

Set-up steps, each done once per cache:
  1. ``apt-get download`` the kernel package ``linux-image-amd64`` depends on; unpack the kernel image and
     the few input modules from it (no installation);
  2. cut the xz-compressed vmlinux out of the bzImage and decompress it (QEMU boots the ELF through its
     PVH note, skipping real mode and in-guest decompression: 3-4x faster under TCG);
  3. compile ``evprint.c`` statically and pack init, busybox, modules and evprint into a newc cpio.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import lzma
import os
import re
import shutil
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
CACHE = REPO / ".cache" / "guest"

# Input modules the guest loads (with their dependencies, found in each module's .modinfo): evdev for
# /dev/input, psmouse for the PS/2 mouse, xHCI + HID for the USB tablet (absolute positions), virtio
# console for the SPICE agent's port.
MODULES = ("evdev", "psmouse", "xhci-pci", "usbhid", "hid-generic", "virtio-pci", "virtio-console")
BUSYBOX_APPLETS = ("sh", "mount", "insmod", "cat", "echo", "sleep", "ls", "poweroff")


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    kernel_version: str


def _run(argv: list[str], cwd: Path | None = None, what: str = "") -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        pytest.fail(f"{argv[0]} is not installed (needed to {what}): run `scripts/setup.sh test`")
    if proc.returncode != 0:
        pytest.fail(f"could not {what}: `{' '.join(argv)}` failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def _kernel_package() -> str:
    for attempt in range(2):
        proc = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True)
        m = re.search(r"Depends:\s*(linux-image-[\w.+-]+-amd64)", proc.stdout)
        if m:
            return m.group(1)
        if attempt == 0:  # no package lists yet (a fresh or cleaned machine): fetch them once
            _apt_update()
    pytest.fail("apt-cache does not know which kernel linux-image-amd64 depends on (is this Debian with"
                f" its package lists?):\n{proc.stdout}{proc.stderr}")


def _apt_update() -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run(sudo + ["apt-get", "update", "-q"], capture_output=True, text=True, timeout=300)


def _fetch_kernel(work: Path) -> tuple[Path, str, dict[str, Path]]:
    """Download and unpack the kernel package; returns (bzImage, version, {module name: .ko path})."""
    package = _kernel_package()
    version = package[len("linux-image-"):]
    unpacked = work / f"kernel-{version}-2"  # bump the suffix when the set of extracted files changes
    bzimage = unpacked / "boot" / f"vmlinuz-{version}"
    if not bzimage.exists():
        debs = list(work.glob(f"{package}_*.deb"))
        if not debs:
            if subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True).returncode:
                _apt_update()  # stale lists point at a version the mirror no longer has
                _run(["apt-get", "download", package], cwd=work, what=f"download {package}")
            debs = list(work.glob(f"{package}_*.deb"))
        if not debs:
            pytest.fail(f"apt-get download {package} produced no .deb in {work}")
        _unpack_deb(debs[0], unpacked)
        for deb in debs:
            deb.unlink()  # 70 MB; only the unpacked pieces are kept
    modules = {p.name[:-3]: p for p in (unpacked / "lib").rglob("*.ko")}
    return bzimage, version, modules


def _unpack_deb(deb: Path, dest: Path) -> None:
    """Extract the kernel image and the input/USB/HID modules from a .deb (ar + data.tar.xz)."""
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    data = _ar_member(deb, "data.tar")
    wanted = re.compile(r"^\./(boot/vmlinuz-|lib/modules/[^/]+/kernel/drivers/(input|usb|hid|virtio|char/virtio_console)/?)")
    with tarfile.open(fileobj=data, mode="r:*") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and wanted.match(m.name)]
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _ar_member(path: Path, prefix: str) -> io.BufferedReader:
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            pytest.fail(f"{path} is not a Debian package (no ar header)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                pytest.fail(f"{path} has no {prefix}* member")
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58])
            if name.startswith(prefix):
                return io.BufferedReader(io.BytesIO(f.read(size)))
            f.seek(size + (size & 1), os.SEEK_CUR)


def extract_vmlinux(bzimage: Path, out: Path) -> None:
    """The bzImage holds the ELF vmlinux as an xz stream after its setup code: find it, decompress it."""
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        pytest.fail(f"{bzimage}: no xz stream inside (kernel not xz-compressed?)")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    if elf[:4] != b"\x7fELF":
        pytest.fail(f"{bzimage}: the xz stream is not an ELF vmlinux")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(elf)
    if shutil.which("strip"):
        subprocess.run(["strip", str(tmp)], check=False, capture_output=True)
    tmp.rename(out)


def _module_depends(path: Path) -> list[str]:
    m = re.search(rb"depends=([\w,-]*)\0", path.read_bytes())
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def module_load_order(available: dict[str, Path], wanted=MODULES) -> list[Path]:
    """Modules in ``wanted`` plus their dependencies, dependencies first (module names use - or _)."""
    norm = {name.replace("_", "-"): path for name, path in available.items()}
    order: list[Path] = []

    def visit(name: str) -> None:
        path = norm.get(name.replace("_", "-"))
        if path is None:
            pytest.fail(f"kernel module {name} is not in the kernel package (built in? renamed?)")
        for dep in _module_depends(path):
            visit(dep)
        if path not in order:
            order.append(path)

    for name in wanted:
        visit(name)
    return order


def _is_static_elf(path: Path) -> bool:
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))  # PT_INTERP


def _busybox() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.exists() and _is_static_elf(path):
            return path
    pytest.fail("a static busybox is needed for the test guest: apt-get install busybox-static")


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (name, mode, data) entries; a symlink's data is its target."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        out += b"070701" + b"".join(b"%08X" % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0))
        out += encoded + b"\0" * (-(110 + len(encoded)) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return bytes(out)


def _build_initrd(out: Path, modules: list[Path], evprint: Path, fakeagent: Path) -> None:
    busybox = _busybox()
    entries: list[tuple[str, int, bytes]] = [(d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys", "modules")]
    entries.append(("bin/busybox", 0o100755, busybox.read_bytes()))
    entries += [(f"bin/{applet}", 0o120777, b"busybox") for applet in BUSYBOX_APPLETS]
    entries.append(("bin/evprint", 0o100755, evprint.read_bytes()))
    entries.append(("bin/fakeagent", 0o100755, fakeagent.read_bytes()))
    entries.append(("init", 0o100755, (HERE / "init.sh").read_bytes()))
    entries += [(f"modules/{m.name}", 0o100644, m.read_bytes()) for m in modules]
    entries.append(("modules.list", 0o100644, "\n".join(m.name for m in modules).encode() + b"\n"))
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(_cpio_newc(entries))
    tmp.rename(out)


def build_guest(cache: Path = CACHE) -> GuestImage:
    """Kernel and initramfs for the test guest, built once and cached (safe across processes)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bzimage, version, modules = _fetch_kernel(cache)
        vmlinux = cache / f"vmlinux-{version}"
        if not vmlinux.exists():
            extract_vmlinux(bzimage, vmlinux)
        sources = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in ("evprint.c", "fakeagent.c", "init.sh"))
                                 + version.encode() + " ".join(MODULES).encode()).hexdigest()[:16]
        initrd = cache / f"initrd-{sources}.cpio"
        if not initrd.exists():
            programs = {}
            for name in ("evprint", "fakeagent"):
                programs[name] = cache / f"{name}-{sources}"
                _run(["gcc", "-O2", "-static", "-Wall", "-o", str(programs[name]), str(HERE / f"{name}.c")],
                     what=f"compile the guest's {name} (apt-get install gcc libc6-dev)")
            _build_initrd(initrd, module_load_order(modules), programs["evprint"], programs["fakeagent"])
        return GuestImage(vmlinux, initrd, version)
