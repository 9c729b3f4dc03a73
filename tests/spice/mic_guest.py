"""The SPICE tests' guest with a sound card: the test guest (tests.support.guest) with a second cpio
appended to its initramfs (the kernel reads concatenated archives): the AC'97 driver's modules, micrec
(a static reader of the capture device, tests/spice/guest/micrec.c) and ``/init-mic``, chosen with
``rdinit=/init-mic``. QEMU gives the card ``-audiodev spice``, so its capture device is fed by the SPICE
client's record channel."""

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

HERE = Path(__file__).resolve().parent / "guest"
MODULES_SND = ("snd-intel8x0",)
QEMU_SOUND = ["-audiodev", "spice,id=snd0", "-device", "AC97,audiodev=snd0"]
RDINIT = "rdinit=/init-mic"


def _modules_snd(work: Path) -> dict[str, Path]:
    """The sound modules from the kernel package, unpacked once."""
    package = _kernel_package()
    dest = work / f"{package}-snd"
    if not dest.is_dir():
        if not list(work.glob(f"{package}_*.deb")):
            proc = subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True, text=True)
            if proc.returncode:
                pytest.fail(f"apt-get download {package} failed: {proc.stderr[-500:]}")
        deb = next(work.glob(f"{package}_*.deb"))
        wanted = re.compile(r"^\./lib/modules/[^/]+/kernel/sound/")
        tmp = dest.with_suffix(".tmp")
        with tarfile.open(fileobj=_ar_member(deb, "data.tar"), mode="r:*") as tar:
            tar.extractall(tmp, members=[m for m in tar.getmembers() if m.isfile() and wanted.match(m.name)],
                           filter="data")
        tmp.rename(dest)
        deb.unlink()
    return {p.name[:-3]: p for p in dest.rglob("*.ko")}


def build_mic_guest(cache: Path = CACHE) -> GuestImage:
    base = build_guest(cache)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        init = (HERE / "init_mic.sh").read_bytes()
        source = (HERE / "micrec.c").read_bytes()
        key = hashlib.sha256(base.initrd.name.encode() + init + source
                             + " ".join(MODULES_SND).encode()).hexdigest()[:16]
        initrd = cache / f"initrd-mic-{key}.cpio"
        if not initrd.exists():
            order = module_load_order(_modules_snd(cache), MODULES_SND)
            micrec = cache / f"micrec-{key}"
            proc = subprocess.run(["gcc", "-O2", "-static", "-Wall", "-o", str(micrec), str(HERE / "micrec.c"),
                                   "-lm"], capture_output=True, text=True)
            if proc.returncode:
                pytest.fail(f"could not compile the guest's micrec (apt-get install gcc libc6-dev):\n{proc.stderr}")
            entries = [("modules", 0o040755, b"")]
            entries += [(f"modules/{m.name}", 0o100644, m.read_bytes()) for m in order]
            entries.append(("modules-snd.list", 0o100644, "\n".join(m.name for m in order).encode() + b"\n"))
            entries.append(("bin/micrec", 0o100755, micrec.read_bytes()))
            entries.append(("init-mic", 0o100755, init))
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(base.initrd.read_bytes() + _cpio_newc(entries))
            tmp.rename(initrd)
        return GuestImage(base.kernel, initrd, base.kernel_version)
