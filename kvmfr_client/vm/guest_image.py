"""The tiny Linux guest of ``kvmfr-vm demo`` (and of the VM tests): a Debian kernel and an initramfs, built
from Debian's own packages through apt, cached under ``$XDG_CACHE_HOME/kvmfr-client/guest``.

Each step is done once per cache:
  1. ``apt-get download`` the kernel package ``linux-image-amd64`` depends on (no installation); unpack its
     kernel image and the few modules the guest loads (input, virtio, 9p);
  2. cut the xz-compressed ELF vmlinux out of the bzImage and decompress it: QEMU boots it through its PVH note,
     skipping real mode and the in-guest decompression (3-4x faster under TCG);
  3. pack busybox (``busybox-static``), the modules and :data:`INIT` into a newc cpio.

The guest runs nothing of ours from the image: it mounts the host's root read-only over virtio-9p (the VM's
``shares`` entry with tag ``hostroot``) and runs the command of kernel parameter ``guestcmd=`` (spaces written
as ``+``) chrooted there, so the agent it runs is this installation's. A second cpio appended to the initrd
(the kernel reads concatenated archives) may add programs; each executable ``/init.d/*`` starts first.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import lzma
import os
import re
import shutil
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .runtime import VmError

log = logging.getLogger(__name__)

# Modules the guest loads, with their dependencies (read from each module's .modinfo): evdev for
# /dev/input (keys from SPICE arrive on the built-in AT keyboard), psmouse, the ACPI power button (so
# `kvmfr-vm stop`'s power-down reaches the guest), virtio for the 9p share.
MODULES = ("evdev", "psmouse", "button", "virtio-pci", "9pnet_virtio", "9p")
_WANTED = re.compile(r"^\./(boot/vmlinuz-|lib/modules/[^/]+/kernel/(drivers/(input|virtio|acpi/button)|"
                     r"fs/(9p|netfs|fscache)|net/9p)/?)")
APPLETS = ("sh", "mount", "insmod", "cat", "echo", "sleep", "ls", "poweroff", "chroot", "mkdir", "tr")
SHARE_TAG = "hostroot"

# psmouse: ExplorerPS/2 (wheel, 5 buttons) without slow probing.
MODULE_PARAMS = {"psmouse": "proto=exps"}

# The start of every PID 1 built here (this guest's and the tests' guests): kernel file systems, then the
# modules of /modules.list and, when an appended cpio brings it, /modules-more.list (:func:`modules_list`).
INIT_BOOT = """#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
cat /modules.list /modules-more.list 2>/dev/null | while read -r module params; do
    insmod "/modules/$module" $params
done
"""

INIT = INIT_BOOT + f"""# PID 1 of kvmfr-vm's tiny guest (kvmfr_client/vm/guest_image.py): after INIT_BOOT, the host's root
# read-only over 9p at /host, then the command of kernel parameter guestcmd= (spaces as +) chrooted there.
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose {SHARE_TAG} /host \\
    || echo "GUEST no 9p share named {SHARE_TAG}: nothing to run"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
for f in /init.d/*; do [ -x "$f" ] && "$f" & done
echo "GUEST ready"
for arg in $(cat /proc/cmdline); do case "$arg" in guestcmd=*) cmd="${{arg#guestcmd=}}";; esac; done
chroot /host /bin/sh -c "$(echo $cmd | tr '+' ' ')"
echo "GUEST command exited $?"
poweroff -f
"""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    kernel_version: str


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kvmfr-client" / "guest"


def guest_command(*commands: str) -> str:
    """The kernel parameter that makes the guest run ``commands`` side by side (in the host's tree)."""
    shell = " & ".join(commands) + " & wait"
    if "+" in shell:
        raise ValueError(f"a guest command cannot hold '+' (it stands for a space): {shell}")
    return "guestcmd=" + shell.replace(" ", "+")


def _fail(message: str) -> VmError:
    return VmError(f"cannot build the guest image: {message}", 1)


def _run(argv: list[str], cwd: Path | None = None, what: str = "") -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise _fail(f"{argv[0]} is not installed (needed to {what})") from None
    except subprocess.TimeoutExpired:
        raise _fail(f"`{' '.join(argv)}` took more than 10 minutes") from None
    return proc


def kernel_package() -> str:
    """The versioned package linux-image-amd64 depends on (fetching apt's lists once when there are none)."""
    for attempt in range(2):
        proc = _run(["apt-cache", "depends", "linux-image-amd64"], what="find Debian's kernel (a Debian host)")
        m = re.search(r"Depends:\s*(linux-image-[\w.+-]+-amd64)", proc.stdout)
        if m:
            return m.group(1)
        if attempt == 0:
            _apt_update()
    raise _fail("apt-cache does not know which kernel linux-image-amd64 depends on (is this Debian, with its "
                "package lists? apt-get update)")


def _apt_update() -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    _run(sudo + ["apt-get", "update", "-q"], what="update apt's package lists")


def download(package: str, work: Path) -> Path:
    """The .deb of ``package`` in ``work``, downloaded with ``apt-get download`` unless already there."""
    for attempt in range(2):
        debs = list(work.glob(f"{package}_*.deb"))
        if debs:
            return debs[0]
        proc = _run(["apt-get", "download", package], cwd=work, what=f"download {package}")
        if proc.returncode and attempt == 0:
            _apt_update()   # stale lists point at a version the mirror no longer has
        elif proc.returncode:
            raise _fail(f"apt-get download {package} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    debs = list(work.glob(f"{package}_*.deb"))
    if not debs:
        raise _fail(f"apt-get download {package} produced no .deb in {work}")
    return debs[0]


def ar_member(path: Path, prefix: str) -> io.BufferedReader:
    """The first member of a Debian package (an ar archive) whose name starts with ``prefix``."""
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise _fail(f"{path} is not a Debian package (no ar header)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                raise _fail(f"{path} has no {prefix}* member")
            name = header[:16].decode(errors="replace").strip().rstrip("/")
            try:
                size = int(header[48:58])
            except ValueError:
                raise _fail(f"{path}: a damaged ar header") from None
            if name.startswith(prefix):
                return io.BufferedReader(io.BytesIO(f.read(size)))
            f.seek(size + (size & 1), os.SEEK_CUR)


def unpack(deb: Path, dest: Path, wanted: re.Pattern = _WANTED) -> None:
    """The files of a Debian package whose path matches ``wanted``, unpacked into ``dest`` (made at once)."""
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=ar_member(deb, "data.tar"), mode="r:*") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and wanted.match(m.name)]
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def extract_vmlinux(bzimage: Path, out: Path) -> None:
    """The bzImage holds the ELF vmlinux as an xz stream after its setup code: find it, decompress it."""
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise _fail(f"{bzimage}: no xz stream inside (kernel not xz-compressed?)")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    if elf[:4] != b"\x7fELF":
        raise _fail(f"{bzimage}: the xz stream is not an ELF vmlinux")
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
            raise _fail(f"kernel module {name} is not in the kernel package (built in? renamed?)")
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


def busybox() -> Path:
    """The host's static busybox (the guest's shell and tools)."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.exists() and _is_static_elf(path):
            return path
    raise _fail("a static busybox is needed: apt-get install busybox-static")


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (name, mode, data) entries; a symlink's data is its target."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        out += b"070701" + b"".join(b"%08X" % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0))
        out += encoded + b"\0" * (-(110 + len(encoded)) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return bytes(out)


def unpacked_kernel(cache: Path, wanted: re.Pattern = _WANTED, tag: str = "vm2",
                    say=lambda text: None) -> tuple[Path, str, dict[str, Path]]:
    """The kernel package's files matching ``wanted``, unpacked once under ``cache/kernel-VERSION-TAG`` (bump
    ``tag`` when ``wanted`` changes): returns that folder, the kernel version and {module name: .ko path}."""
    package = kernel_package()
    version = package[len("linux-image-"):]
    unpacked = cache / f"kernel-{version}-{tag}"
    if not unpacked.is_dir():   # made by one rename, so a folder that is there is complete
        say(f"downloading {package} (once, about 70 MB) into {cache}")
        deb = download(package, cache)
        unpack(deb, unpacked, wanted)
        deb.unlink()   # only the unpacked pieces are kept
    return unpacked, version, {p.name[:-3]: p for p in (unpacked / "lib").rglob("*.ko")}


def vmlinux(cache: Path, unpacked: Path, version: str, say=lambda text: None) -> Path:
    """The uncompressed kernel of an :func:`unpacked_kernel` folder, extracted once into ``cache``."""
    out = cache / f"vmlinux-{version}"
    if not out.exists():
        say("extracting the uncompressed kernel (once)")
        extract_vmlinux(unpacked / "boot" / f"vmlinuz-{version}", out)
    return out


def modules_list(modules: list[Path], params: dict[str, str] = MODULE_PARAMS) -> bytes:
    """/modules.list (or /modules-more.list) for INIT_BOOT: a module file and its parameters a line."""
    return "".join(f"{m.name} {params.get(m.name[:-3], '')}".rstrip() + "\n" for m in modules).encode()


def initrd_entries(init: bytes, modules: list[Path], params: dict[str, str] = MODULE_PARAMS,
                   applets=APPLETS) -> list[tuple[str, int, bytes]]:
    """The cpio entries of a guest: folders, busybox and its ``applets``, ``init`` as /init, the modules."""
    box = busybox()
    entries: list[tuple[str, int, bytes]] = [(d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys", "modules",
                                                                          "init.d")]
    entries.append(("bin/busybox", 0o100755, box.read_bytes()))
    entries += [(f"bin/{applet}", 0o120777, b"busybox") for applet in applets]
    entries.append(("init", 0o100755, init))
    entries += [(f"modules/{m.name}", 0o100644, m.read_bytes()) for m in modules]
    entries.append(("modules.list", 0o100644, modules_list(modules, params)))
    return entries


def write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name, so a reader sees the whole file or none."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(path)


def build(cache: Path | None = None, say=lambda text: None) -> GuestImage:
    """Kernel and initramfs, built once and cached (safe across processes: one builds, the others wait)."""
    cache = cache or cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return _build(cache, say)
    except OSError as exc:
        raise _fail(f"{exc.filename or cache}: {exc.strerror}") from None


def _build(cache: Path, say) -> GuestImage:
    unpacked, version, available = unpacked_kernel(cache, say=say)
    kernel = vmlinux(cache, unpacked, version, say)
    modules = module_load_order(available)
    key = hashlib.sha256(INIT.encode() + version.encode() + " ".join(MODULES).encode()
                         + str(busybox().stat().st_size).encode()).hexdigest()[:16]
    initrd = cache / f"initrd-{key}.cpio"
    if not initrd.exists():
        write_new(initrd, cpio_newc(initrd_entries(INIT.encode(), modules)))
    return GuestImage(kernel, initrd, version)
