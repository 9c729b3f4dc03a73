"""Every problem in a VM description, or on this host, is one line on stderr naming the key and what is
allowed, with exit status 2, and nothing is started or created."""

from __future__ import annotations

import os

import pytest

from tests.vm.conftest import kvmfr_vm

CASES = {
    "malformed YAML": ("name: a\ncpus: [1\n", ("start",), "not valid YAML: line 3"),
    "not a mapping": ("- just\n- a list\n", ("start",), "must be a mapping of keys"),
    "unknown key": ("name: a\ncpu: 2\n", ("start",), "cpu: unknown key (did you mean cpus?)"),
    "no name": ("cpus: 2\n", ("start",), "name: is required"),
    "cpus out of range": ("name: a\ncpus: 0\n", ("start",), "cpus: must be a whole number 1..256, got 0"),
    "display too large for its memory": ("name: a\ndisplays:\n  - {resolution: 3840x2160, hdr: true, size: 64M}\n",
                                         ("start",), "displays[0].size: 64M is too small for 3840x2160 HDR: "
                                                     "Looking Glass's rule needs 256M"),
    "display larger than any frame": ("name: a\ndisplays: [{resolution: 20000x100}]\n", ("start",),
                                      "displays[0].resolution: 20000x100 is larger than a display can be"),
    "size not a power of two": ("name: a\ndisplays: [{resolution: 800x600, size: 48M}]\n", ("start",),
                                "displays[0].size: must be a power of two"),
    "SPICE on a public address": ("name: a\nspice: {port: 5900, address: 0.0.0.0}\n", ("start",),
                                  "spice.address: 0.0.0.0 is reachable from other machines"),
    "pinning count": ("name: a\ncpus: 2\ncpu_pinning: [0]\n", ("start",),
                      "cpu_pinning: must list one host CPU per vCPU: 2 wanted, 1 given"),
    "missing kernel": ("name: a\nkernel: /nonexistent/vmlinux\n", ("start",),
                       "kernel: /nonexistent/vmlinux does not exist or is not a file"),
    "missing ISO": ("name: a\ndisk: a.qcow2\n", ("create", "--iso", "/nonexistent/win.iso", "--disk-size", "100G"),
                    "--iso: /nonexistent/win.iso does not exist or is not a file"),
    "missing preinstall ISO": ("name: a\n", ("start", "--preinstall", "/nonexistent/win.iso"),
                               "--preinstall: /nonexistent/win.iso does not exist"),
    "absent VFIO device": ("name: a\npassthrough:\n  - vfio: 0000:7f:1f.7\n", ("start",),
                           "passthrough[0].vfio: no PCI device 0000:7f:1f.7 on this host"),
    "absent mediated-device parent": ("name: a\npassthrough:\n  - mdev: {parent: 0000:7f:1f.6, type: nvidia-63}\n",
                                      ("start",), "passthrough[0].mdev.parent: no PCI device 0000:7f:1f.6"),
    "absent SR-IOV function": ("name: a\npassthrough:\n  - sriov_vf: {pf: 0000:7f:1f.5, vf: 3}\n", ("start",),
                               "passthrough[0].sriov_vf.pf: no PCI device 0000:7f:1f.5"),
    "absent NUMA node": ("name: a\nnuma_node: 999\n", ("start",), "numa_node: this host has no NUMA node 999"),
    "create without a disk": ("name: a\n", ("create", "--iso", "{iso}", "--disk-size", "1G"),
                              "disk: is required by create"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_per_problem(case, tmp_path, vm_env):
    text, command, expected = CASES[case]
    path = tmp_path / "vm.yaml"
    path.write_text(text)
    (tmp_path / "ok.iso").write_bytes(b"")
    args = [command[0], str(path), *(a.replace("{iso}", str(tmp_path / "ok.iso")) for a in command[1:])]
    result = kvmfr_vm(vm_env, *args)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"kvmfr-vm: {path}: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    # nothing made: no shared-memory file of VM "a", no runtime folder
    assert not [f for f in os.listdir("/dev/shm") if f.startswith("a-")] and not any((tmp_path / "run").iterdir())


def test_several_problems_one_line_each(tmp_path, vm_env):
    path = tmp_path / "vm.yaml"
    path.write_text("name: a\ncpu: 2\nvideo: cirrus\ndisplays: [{resolution: 1920x1080, hdr: maybe}]\n")
    result = kvmfr_vm(vm_env, "start", str(path), "--dry-run")
    assert result.returncode == 2
    assert sorted(line.split(": ", 2)[2].split(":")[0] for line in result.stderr.splitlines()) == \
        ["cpu", "displays[0].hdr", "video"]


def test_unreadable_file_and_bad_flags(tmp_path, vm_env):
    result = kvmfr_vm(vm_env, "start", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "cannot read" in result.stderr
    (tmp_path / "vm.yaml").write_text("name: a\ndisk: a.qcow2\n")
    result = kvmfr_vm(vm_env, "create", str(tmp_path / "vm.yaml"), "--iso", str(tmp_path / "vm.yaml"),
                      "--disk-size", "lots")
    assert result.returncode == 2 and "--disk-size: must be a size such as 100G" in result.stderr
    result = kvmfr_vm(vm_env, "stop", "nothing-here")
    assert result.returncode == 1 and result.stderr.strip() == \
        "kvmfr-vm: no VM named nothing-here is running (kvmfr-vm list shows those that are)"
    # kvmfr-vm demo: bad values are one line each (2); without QEMU on PATH, one line saying what to install (1)
    for bad in (["--size", "0x0"], ["--seconds", "-1"], ["--fps", "0"], ["--name", "a b"]):
        result = kvmfr_vm(vm_env, "demo", "--no-viewer", *bad)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and bad[0] in result.stderr, (bad, result)
    result = kvmfr_vm(dict(vm_env, PATH=str(tmp_path)), "demo", "--no-viewer")
    assert result.returncode == 1 and result.stderr.startswith("kvmfr-vm: the demo needs QEMU: apt-get install "
                                                               "qemu-system-x86"), result.stderr
    assert result.stderr.count("\n") == 1


def test_a_vm_gone_without_stop_is_listed_as_gone_and_stop_cleans_up(tmp_path, vm_env):
    """QEMU ended (killed, crashed) without ``stop``: ``list`` and ``status`` say so, ``stop`` removes the
    shared-memory file it had created and its runtime folder. No QEMU needed: the state is written here."""
    import json
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = f"kvg{os.getpid()}"
    shm = f"/dev/shm/{name}-0"
    open(shm, "wb").close()
    rundir = tmp_path / "run" / "kvmfr-vm" / name
    rundir.mkdir(parents=True)
    (rundir / "state.json").write_text(json.dumps({"name": name, "pid": dead.pid, "accel": "tcg", "files": [shm],
                                                   "spice": f"unix:{rundir}/spice.sock"}))
    try:
        listed = json.loads(kvmfr_vm(vm_env, "list", "--json").stdout)
        assert [(r["name"], r["alive"]) for r in listed] == [(name, False)]
        status = kvmfr_vm(vm_env, "status", name)
        assert status.returncode == 1 and f"{name}: gone" in status.stdout and f"kvmfr-vm stop {name}" in status.stdout
        stopped = kvmfr_vm(vm_env, "stop", name)
        assert stopped.returncode == 0 and "was not running" in stopped.stdout
        assert not os.path.exists(shm) and not rundir.exists()
    finally:
        if os.path.exists(shm):
            os.unlink(shm)
