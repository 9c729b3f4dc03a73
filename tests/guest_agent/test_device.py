"""``kvmfr-agent --device``: the agent finds its IVSHMEM device by kvmfr-vm's label (a fake sysfs tree here;
tests/vm/test_lifecycle.py does it in a real guest), and says in one line why it cannot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guest_agent.device import DeviceError, find_display, find_scream, resolve_display, resolve_scream
from kvmfr_client.config import exits

MiB = 1 << 20


def fake_device(sysfs: Path, address: str, size: int, label: str | None = None, vendor: str = "0x1af4",
                device: str = "0x1110") -> Path:
    folder = sysfs / "bus" / "pci" / "devices" / address
    folder.mkdir(parents=True)
    (folder / "vendor").write_text(vendor + "\n")
    (folder / "device").write_text(device + "\n")
    if label is not None:
        (folder / "label").write_text(label + "\n")
    base = 0xfe000000
    bars = [(0xfebf1000, 0xfebf10ff), (0, 0), (base, base + size - 1)] + [(0, 0)] * 4
    (folder / "resource").write_text("".join(f"0x{s:016x} 0x{e:016x} 0x0000000000040200\n" for s, e in bars))
    (folder / "enable").write_text("0\n")
    (folder / "resource2").write_bytes(b"")
    return folder


def test_labelled_devices_are_found_by_label_not_order(tmp_path):
    # the Scream device first and display 1 before display 0: only the labels say which is which
    fake_device(tmp_path, "0000:00:03.0", 2 * MiB, "kvmfr-scream")
    fake_device(tmp_path, "0000:00:04.0", 64 * MiB, "kvmfr-display-1")
    d0 = fake_device(tmp_path, "0000:00:05.0", 32 * MiB, "kvmfr-display-0")
    fake_device(tmp_path, "0000:00:06.0", 4096, vendor="0x8086")
    assert find_display(0, str(tmp_path)).address == "0000:00:05.0"
    assert find_display(1, str(tmp_path)).address == "0000:00:04.0"
    assert find_scream(str(tmp_path)).address == "0000:00:03.0"
    # the path the producer opens is BAR2 through sysfs, with the device's memory switched on first
    assert resolve_display("auto", 0, sysfs=str(tmp_path)) == str(d0 / "resource2")
    assert (d0 / "enable").read_text() == "1"
    assert resolve_scream("auto", str(tmp_path)).endswith("0000:00:03.0/resource2")
    assert resolve_display("00:04.0", 0, sysfs=str(tmp_path)).endswith("0000:00:04.0/resource2")
    assert resolve_display("/dev/shm/x", 0, sysfs=str(tmp_path)) == "/dev/shm/x"    # a file stays a file
    # the kvmfr module's device is preferred when it drives the device
    (d0 / "kvmfr" / "kvmfr3").mkdir(parents=True)
    assert resolve_display("auto", 0, sysfs=str(tmp_path)) == "/dev/kvmfr3"


def test_unlabelled_and_refused_cases_are_one_line_each(tmp_path):
    with pytest.raises(DeviceError, match=r"^no IVSHMEM device \(PCI 1af4:1110\) in this machine"):
        find_display(0, str(tmp_path))
    # a VM made by hand: one device larger than a Scream ring is display 0; the 2 MiB one is Scream
    fake_device(tmp_path, "0000:00:03.0", 2 * MiB)
    fake_device(tmp_path, "0000:00:04.0", 32 * MiB)
    assert find_display(0, str(tmp_path)).address == "0000:00:04.0"
    assert find_scream(str(tmp_path)).address == "0000:00:03.0"
    with pytest.raises(DeviceError, match="too small: 3840x2160 frames need 128 MiB"):
        resolve_display("auto", 0, 128 * MiB, "3840x2160", sysfs=str(tmp_path))
    fake_device(tmp_path, "0000:00:05.0", 64 * MiB)
    with pytest.raises(DeviceError) as two:
        find_display(0, str(tmp_path))
    assert str(two.value) == ("2 IVSHMEM devices could be display 0 and none carries a kvmfr-vm label "
                              "(0000:00:04.0 (32 MiB), 0000:00:05.0 (64 MiB)): choose one with --device ADDRESS")
    with pytest.raises(DeviceError, match="no IVSHMEM device is labelled kvmfr-display-2"):
        fake_device(tmp_path, "0000:00:10.0", 32 * MiB, "kvmfr-display-0")
        find_display(2, str(tmp_path))
    with pytest.raises(DeviceError, match=r"there is no PCI device 0000:00:1f\.0"):
        resolve_display("00:1f.0", 0, sysfs=str(tmp_path))
    with pytest.raises(DeviceError, match="not a PCI address"):
        from guest_agent.device import find_address
        find_address("00:1f", str(tmp_path))


def test_agent_without_a_device_says_so_in_one_line():
    """On this host (no IVSHMEM device) ``--device auto`` is one line and status 3; a bad --display is 2."""
    run = [sys.executable, "-m", "guest_agent"]
    got = subprocess.run(run + ["--device", "auto", "--frames", "1"], capture_output=True, text=True, timeout=60)
    assert got.returncode == exits.SHM, got.stderr
    assert got.stderr == ("kvmfr-agent: no IVSHMEM device (PCI 1af4:1110) in this machine: give the VM an "
                          "ivshmem-plain device (kvmfr-vm does), or give --shm a shared-memory file\n")
    got = subprocess.run(run + ["--display", "9"], capture_output=True, text=True, timeout=60)
    assert got.returncode == exits.USAGE and got.stderr.count("\n") == 1 and "0..7" in got.stderr, got.stderr


def test_only_scream_sized_devices_name_the_one_size_rule(tmp_path):
    """Without labels a display is a device larger than a Scream ring (2 MiB): the refusal states that rule."""
    fake_device(tmp_path, "0000:00:03.0", 2 * MiB)
    with pytest.raises(DeviceError) as none:
        find_display(0, str(tmp_path))
    assert str(none.value).startswith("no IVSHMEM device here is larger than a Scream ring (2 MiB), as a display's is")
    assert "32 MiB" not in str(none.value)
