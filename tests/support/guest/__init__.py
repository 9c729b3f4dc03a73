"""Build the test guest: the product's tiny guest builder (kvmfr_client/vm/guest_image.py: Debian's kernel,
uncompressed for a fast direct boot under TCG, busybox, the initramfs) with the tests' own modules and
programs: the input, USB/HID and virtio-console modules, our event printer (evprint.c) and the stand-in SPICE
agent (fakeagent.c), and init.sh after the product's INIT_BOOT. Everything is cached under ``.cache/guest``.

A second cpio appended to the initramfs (the kernel reads concatenated archives) may add modules in
``/modules-more.list`` (loaded after ``/modules.list``) and programs in ``/init.d`` (started before evprint):
see :func:`more_programs` and tests/spice/mic_guest.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from kvmfr_client.vm import guest_image
from kvmfr_client.vm.guest_image import GuestImage
from kvmfr_client.vm.runtime import VmError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
CACHE = REPO / ".cache" / "guest"

# Input modules the guest loads (with their dependencies, found in each module's .modinfo): evdev for
# /dev/input, psmouse for the PS/2 mouse, xHCI + HID for the USB tablet (absolute positions), virtio
# console for the SPICE agent's port.
MODULES = ("evdev", "psmouse", "xhci-pci", "usbhid", "hid-generic", "virtio-pci", "virtio-console")
WANTED = re.compile(r"^\./(boot/vmlinuz-|lib/modules/[^/]+/kernel/drivers/(input|usb|hid|virtio|char/virtio_console)/?)")
KERNEL_TAG = "2"   # bump when WANTED changes


@contextlib.contextmanager
def product_steps():
    """The product builder's errors (a missing tool, a failed download) as one clear test failure."""
    try:
        yield
    except VmError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh test installs what it needs)")


def compile_static(source: Path, out: Path, *libs: str) -> Path:
    """A static build of a guest program (the guest has no C library)."""
    try:
        proc = subprocess.run(["gcc", "-O2", "-static", "-Wall", "-o", str(out), str(source), *libs],
                              capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        pytest.fail("gcc is not installed (needed to compile the guest's programs): run `scripts/setup.sh test`")
    if proc.returncode != 0:
        pytest.fail(f"could not compile the guest's {source.name} (apt-get install gcc libc6-dev):\n"
                    f"{proc.stderr[-2000:]}")
    return out


def kernel_modules(cache: Path, wanted: re.Pattern, tag: str, names) -> tuple[Path, str, list[Path]]:
    """The kernel package's files matching ``wanted`` unpacked once (folder, version) and the modules
    ``names`` with their dependencies, dependencies first."""
    with product_steps():
        unpacked, version, available = guest_image.unpacked_kernel(cache, wanted, tag)
        return unpacked, version, guest_image.module_load_order(available, names)


def more_programs(base: GuestImage, out: Path, modules: list[Path], params: dict[str, str],
                  programs: dict[str, bytes]) -> GuestImage:
    """``base`` with a cpio appended: ``modules`` (in /modules-more.list) and ``programs`` started from /init.d."""
    entries = [("modules", 0o040755, b""), ("init.d", 0o040755, b"")]
    entries += [(f"modules/{m.name}", 0o100644, m.read_bytes()) for m in modules]
    entries.append(("modules-more.list", 0o100644, guest_image.modules_list(modules, params)))
    entries += [(f"init.d/{name}", 0o100755, data) for name, data in programs.items()]
    guest_image.write_new(out, base.initrd.read_bytes() + guest_image.cpio_newc(entries))
    return GuestImage(base.kernel, out, base.kernel_version)


def build_guest(cache: Path = CACHE) -> GuestImage:
    """Kernel and initramfs for the test guest, built once and cached (safe across processes)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        unpacked, version, modules = kernel_modules(cache, WANTED, KERNEL_TAG, MODULES)
        with product_steps():
            kernel = guest_image.vmlinux(cache, unpacked, version)
        init = guest_image.INIT_BOOT.encode() + (HERE / "init.sh").read_bytes()
        sources = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in ("evprint.c", "fakeagent.c"))
                                 + init + version.encode() + " ".join(MODULES).encode()).hexdigest()[:16]
        initrd = cache / f"initrd-{sources}.cpio"
        if not initrd.exists():
            with product_steps():
                entries = guest_image.initrd_entries(init, modules)
            for name in ("evprint", "fakeagent"):
                program = compile_static(HERE / f"{name}.c", cache / f"{name}-{sources}")
                entries.append((f"bin/{name}", 0o100755, program.read_bytes()))
            guest_image.write_new(initrd, guest_image.cpio_newc(entries))
        return GuestImage(kernel, initrd, version)
