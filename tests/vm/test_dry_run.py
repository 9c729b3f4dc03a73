"""``kvmfr-vm start --dry-run``: the QEMU command line, the files and the viewers for a description with
every kind of entry, compared with a golden file (paths normalised); on this host none of the passthrough
hardware exists, and the command line is still shown, with one note per missing device."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.vm.conftest import kvmfr_vm

HERE = Path(__file__).resolve().parent


def _normalise(text: str, tmp: Path) -> str:
    return text.replace(str(tmp / "run"), "<RUN>").replace(str(tmp), "<DIR>")


def test_dry_run_every_entry_matches_golden(tmp_path, vm_env):
    shutil.copy(HERE / "every_entry.yaml", tmp_path / "vm.yaml")
    for name in ("vmlinux", "initrd.cpio", "installer.iso"):
        (tmp_path / name).write_bytes(b"")
    before = set(os.listdir(tmp_path))
    result = kvmfr_vm(vm_env, "start", str(tmp_path / "vm.yaml"), "--preinstall", str(tmp_path / "installer.iso"),
                      "--dry-run")
    assert result.returncode == 0, result.stderr
    got = _normalise(result.stdout, tmp_path)
    golden = HERE / "every_entry.golden"
    if os.environ.get("KVMFR_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert got == golden.read_text(), f"dry-run output changed (KVMFR_UPDATE_GOLDEN=1 rewrites the golden file):\n{got}"
    # touches nothing: no shared-memory file, no runtime folder, no disk image
    assert set(os.listdir(tmp_path)) == before
    assert not [f for f in os.listdir("/dev/shm") if f.startswith("golden-")]
    assert not any((tmp_path / "run").iterdir())
    # the hardware this host lacks is noted, one line each, and the command line is still there
    notes = [line for line in result.stderr.splitlines() if "note:" in line]
    for key in ("passthrough[0].vfio", "passthrough[1].mdev", "passthrough[2].sriov_vf", "displays[2].path"):
        assert any(key in line for line in notes), (key, result.stderr)
    assert "vfio-pci,host=0000:42:00.0" in got and "virtfn2" in got and "/sys/bus/mdev/devices/" in got


def test_create_dry_run_shows_the_disk_and_boots_the_iso(tmp_path, vm_env):
    (tmp_path / "win.iso").write_bytes(b"")
    (tmp_path / "vm.yaml").write_text("name: win\ndisk: win.qcow2\ndisplays: [{resolution: 2560x1440}]\n")
    result = kvmfr_vm(vm_env, "create", str(tmp_path / "vm.yaml"), "--iso", str(tmp_path / "win.iso"),
                      "--disk-size", "100G", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = _normalise(result.stdout, tmp_path)
    assert "qemu-img create -q -f qcow2 <DIR>/win.qcow2 107374182400" in out
    assert "-drive file=<DIR>/win.iso,media=cdrom,readonly=on,if=ide,index=2" in out
    assert "-boot once=d" in out
    assert "/dev/shm/win-0  (64M, mode 0660)" in out      # 1440p SDR: Looking Glass's rule says 64 MiB
    assert not (tmp_path / "win.qcow2").exists()


def test_viewer_command_lines_are_what_kvmfr_view_reads(monkeypatch, tmp_path):
    """Each viewer line of the golden file parses as kvmfr-view's own command line, to the values meant."""
    import shlex

    from kvmfr_client.cli.view import parse_command_line
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))   # no user configuration file
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KVMFR_SYSCONFDIR", str(tmp_path / "etc"))
    lines = (HERE / "every_entry.golden").read_text().split("# viewers\n")[1].splitlines()
    viewers = [shlex.split(line)[1:] for line in lines if line.startswith("kvmfr-view ")]
    assert len(viewers) == 1, "one viewer process for all the displays"
    _, cfg = parse_command_line(viewers[0])
    assert cfg["app:displays"] == ("/dev/shm/golden-0", "/dev/shm/golden-1", "/dev/kvmfr0")
    assert cfg["win:title"] == "golden" and cfg["spice:enable"] and cfg["spice:port"] == 0
    assert cfg["spice:host"] == "<RUN>/kvmfr-vm/golden/spice.sock"
    assert cfg["audio:scream"] == "ivshmem:/dev/shm/golden-scream"
