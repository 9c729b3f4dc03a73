"""The SPICE tests' guest with a sound card: the test guest (tests.support.guest) with a second cpio
appended to its initramfs (the kernel reads concatenated archives): the AC'97 driver's modules (in
/modules-more.list) and micrec (a static reader of the capture device, tests/spice/guest/micrec.c, started
from /init.d). QEMU gives the card ``-audiodev spice``, so its capture device is fed by the SPICE client's
record channel."""

from __future__ import annotations

import fcntl
import hashlib
import re
from pathlib import Path

from tests.support.guest import CACHE, GuestImage, build_guest, compile_static, kernel_modules, more_programs

HERE = Path(__file__).resolve().parent / "guest"
MODULES_SND = ("snd-intel8x0",)
MODULE_PARAMS_SND = {"snd-intel8x0": "ac97_clock=48000"}   # QEMU's clock: skip measuring it
WANTED_SND = re.compile(r"^\./lib/modules/[^/]+/kernel/sound/")
QEMU_SOUND = ["-audiodev", "spice,id=snd0", "-device", "AC97,audiodev=snd0"]


def build_mic_guest(cache: Path = CACHE) -> GuestImage:
    base = build_guest(cache)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        source = (HERE / "micrec.c").read_bytes()
        key = hashlib.sha256(base.initrd.name.encode() + source + " ".join(MODULES_SND).encode()
                             + repr(MODULE_PARAMS_SND).encode()).hexdigest()[:16]
        initrd = cache / f"initrd-mic-{key}.cpio"
        if initrd.exists():
            return GuestImage(base.kernel, initrd, base.kernel_version)
        _, _, modules = kernel_modules(cache, WANTED_SND, "snd", MODULES_SND)
        micrec = compile_static(HERE / "micrec.c", cache / f"micrec-{key}", "-lm")
        return more_programs(base, initrd, modules, MODULE_PARAMS_SND, {"micrec": micrec.read_bytes()})
