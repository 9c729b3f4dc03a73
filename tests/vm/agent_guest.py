"""The agent guest: the project's tiny test guest (tests.support.guest) plus what runs our own agent inside
it. Its initramfs is the test guest's with a second cpio appended (the kernel reads concatenated archives):
the virtio-9p modules, a few more busybox links and ``/init-agent`` (tests/vm/init_agent.sh), chosen with
``rdinit=/init-agent``. The agent itself is not copied in: the guest mounts the host's root read-only over
9p and runs it from this checkout's virtual environment, so the code under test is the code in the tree."""

from __future__ import annotations

import fcntl
import hashlib
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.guest import CACHE, GuestImage, _ar_member, _cpio_newc, _kernel_package, build_guest, \
    module_load_order

HERE = Path(__file__).resolve().parent
MODULES_9P = ("9pnet_virtio", "9p")
APPLETS = ("chroot", "mkdir", "tr")


def _modules_9p(work: Path) -> dict[str, Path]:
    """The 9p modules (and their dependencies) from the kernel package, unpacked once."""
    package = _kernel_package()
    dest = work / f"{package}-9p"
    if not dest.is_dir():
        if not list(work.glob(f"{package}_*.deb")):
            proc = subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True, text=True)
            if proc.returncode:
                pytest.fail(f"apt-get download {package} failed: {proc.stderr[-500:]}")
        deb = next(work.glob(f"{package}_*.deb"))
        wanted = re.compile(r"^\./lib/modules/[^/]+/kernel/(fs/(9p|netfs|fscache)|net/9p|drivers/virtio)/")
        tmp = dest.with_suffix(".tmp")
        with tarfile.open(fileobj=_ar_member(deb, "data.tar"), mode="r:*") as tar:
            tar.extractall(tmp, members=[m for m in tar.getmembers() if m.isfile() and wanted.match(m.name)],
                           filter="data")
        tmp.rename(dest)
        deb.unlink()
    return {p.name[:-3]: p for p in dest.rglob("*.ko")}


def build_agent_guest(cache: Path = CACHE) -> GuestImage:
    base = build_guest(cache)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        init = (HERE / "init_agent.sh").read_bytes()
        key = hashlib.sha256(base.initrd.read_bytes()[:1 << 20] + init + " ".join(MODULES_9P).encode()).hexdigest()[:16]
        initrd = cache / f"initrd-agent-{key}.cpio"
        if not initrd.exists():
            order = module_load_order(_modules_9p(cache), MODULES_9P)
            entries = [("modules", 0o040755, b"")]
            entries += [(f"modules/{m.name}", 0o100644, m.read_bytes()) for m in order]
            entries.append(("modules-9p.list", 0o100644, "\n".join(m.name for m in order).encode() + b"\n"))
            entries += [(f"bin/{a}", 0o120777, b"busybox") for a in APPLETS]
            entries.append(("init-agent", 0o100755, init))
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(base.initrd.read_bytes() + _cpio_newc(entries))
            tmp.rename(initrd)
        return GuestImage(base.kernel, initrd, base.kernel_version)
