"""The agent guest of the VM tests: the product's own tiny guest (kvmfr_client/vm/guest_image.py, the one
``kvmfr-vm demo`` boots) with a second cpio appended (the kernel reads concatenated archives): the test
guest's event printer (tests/support/guest/evprint.c, started from ``/init.d``), so a test can see keys
arrive in the guest's evdev on its serial console. The agent itself is not copied in: the guest mounts the
host's root read-only over 9p and runs it from this checkout, so the code under test is the code in the tree.
Cached in .cache/kvmfr-client/guest, shared with the demo test (XDG_CACHE_HOME=.cache)."""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
from pathlib import Path

import pytest

from kvmfr_client.vm import guest_image
from kvmfr_client.vm.runtime import VmError

REPO = Path(__file__).resolve().parents[2]
CACHE_HOME = REPO / ".cache"
CACHE = CACHE_HOME / "kvmfr-client" / "guest"
EVPRINT = REPO / "tests" / "support" / "guest" / "evprint.c"
EVPRINT_START = b"#!/bin/sh\nexec /bin/evprint\n"   # input events on the serial console: EV dev type code value


def build_agent_guest(cache: Path = CACHE) -> guest_image.GuestImage:
    try:
        base = guest_image.build(cache)
    except VmError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh test installs what it needs)")
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        source = EVPRINT.read_bytes()
        key = hashlib.sha256(base.initrd.name.encode() + source + EVPRINT_START).hexdigest()[:16]
        initrd = cache / f"initrd-agent-{key}.cpio"
        if not initrd.exists():
            evprint = cache / f"evprint-{key}"
            proc = subprocess.run(["gcc", "-O2", "-static", "-Wall", "-o", str(evprint), str(EVPRINT)],
                                  capture_output=True, text=True)
            if proc.returncode:
                pytest.fail(f"cannot compile the guest's evprint (apt-get install gcc libc6-dev):\n{proc.stderr}")
            extra = guest_image.cpio_newc([("bin/evprint", 0o100755, evprint.read_bytes()),
                                           ("init.d/evprint", 0o100755, EVPRINT_START)])
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(base.initrd.read_bytes() + extra)
            tmp.rename(initrd)
        return guest_image.GuestImage(base.kernel, initrd, base.kernel_version)
