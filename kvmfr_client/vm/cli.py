"""``kvmfr-vm``: one YAML file to a running VM with IVSHMEM displays, SPICE, Scream and passthrough wired.

    kvmfr-vm create vm.yaml --iso INSTALLER.iso --disk-size 100G [--no-viewer] [--dry-run]
    kvmfr-vm start vm.yaml [--preinstall ISO] [--no-viewer] [--dry-run]
    kvmfr-vm stop NAME|vm.yaml [--grace S]
    kvmfr-vm status [NAME|vm.yaml] [--json]
    kvmfr-vm list [--json]
    kvmfr-vm demo [--no-viewer] [--seconds N] [--size WxH] [--fps N]

Exit statuses (kvmfr_client.config.exits): 0 done; 1 QEMU did not start or answer, the VM is not running
(status) or already running (start); 2 a bad command line or VM description, a missing ISO/kernel, a
passthrough device or placement this host does not have (one line per problem); 3 a shared-memory file or
the runtime folder cannot be used.
"""

from __future__ import annotations

import sys

from kvmfr_client.startup import run_program

PROG = "kvmfr-vm"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_program(lambda: _main(argv), _stopped)


def _stopped(name: str, status: int) -> int:
    print(f"{PROG}: stopped by {name}", file=sys.stderr)
    return status


def build_parser():
    import argparse

    from kvmfr_client.config.flags import Parser, _PrintAndExit, checked, version_text
    from kvmfr_client.config.registry import number, size_within

    from .demo import NAME as demo_name
    p = Parser(prog=PROG, description="Create, start, stop and list VMs described by a YAML file, with "
               "Looking Glass displays, SPICE and Scream wired.", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--version", action=_PrintAndExit, text=lambda: version_text(PROG),
                   help="print the version and the wire format, and exit")
    common = argparse.ArgumentParser(add_help=False)   # -v after the command too
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in ("create", "start"):
        s = sub.add_parser(name, parents=[common], help="make the disk and boot the installer" if name == "create" else "start the VM")
        s.add_argument("yaml", help="the VM description")
        if name == "create":
            s.add_argument("--iso", required=True, help="installer ISO, booted once")
            s.add_argument("--disk-size", required=True, metavar="SIZE", help="disk image size, e.g. 100G")
        else:
            s.add_argument("--preinstall", metavar="ISO", help="attach this ISO and boot it once")
        s.add_argument("--no-viewer", action="store_true", help="start no kvmfr-view windows; return once QMP answers")
        s.add_argument("--dry-run", action="store_true", help="print the QEMU command line and the files it "
                       "would create; touch nothing")
        s.add_argument("--timeout", type=checked(number(float, 1, 600, "seconds")), default=60,
                       help="seconds to wait for QEMU's QMP socket, 1..600 (default 60)")
    # -- issue 16 item 4: kvmfr-vm demo
    s = sub.add_parser("demo", parents=[common], help="boot a tiny Linux guest whose own agent draws the test "
                       "pattern and plays a tone, with the viewer attached")
    s.add_argument("--no-viewer", action="store_true", help="start no window (kvmfr-view -f /dev/shm/NAME-0 shows it)")
    s.add_argument("--seconds", type=checked(number(float, 0, 86400, "seconds")), default=0,
                   help="stop the VM after this long, 0..86400 (default 0: when stopped, or the window closes)")
    s.add_argument("--size", type=checked(size_within(16384, "a frame")), default=(1280, 720), metavar="WxH",
                   help="the guest's picture (default 1280x720)")
    s.add_argument("--fps", type=checked(number(float, 1, 240, "frames per second")), default=30,
                   help="the guest agent's frames per second, 1..240 (default 30)")
    s.add_argument("--name", default=demo_name, type=checked(_vm_name), help=f"the VM's name (default {demo_name})")
    s.add_argument("--timeout", type=checked(number(float, 1, 600, "seconds")), default=60,
                   help="seconds to wait for QEMU's QMP socket, 1..600 (default 60)")
    # --
    s = sub.add_parser("stop", parents=[common], help="power the VM down (quit after --grace), remove its sockets and files")
    s.add_argument("vm", metavar="NAME|vm.yaml")
    s.add_argument("--grace", type=checked(number(float, 0, 600, "seconds")), default=30,
                   help="seconds to wait for the guest to power down before QMP quit, 0..600 (default 30)")
    s = sub.add_parser("status", parents=[common], help="what QMP says about one VM (or all)")
    s.add_argument("vm", metavar="NAME|vm.yaml", nargs="?")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("list", parents=[common], help="one line per VM with a runtime folder")
    s.add_argument("--json", action="store_true")
    return p


def _main(argv: list[str]) -> int:
    import logging

    from kvmfr_client.config import exits

    from .runtime import VmError
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=f"{PROG}: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except VmError as exc:
        if str(exc):
            print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.status
    except exits.Stopped:
        raise


def _load(path: str):
    from pathlib import Path

    from .runtime import VmError
    from .spec import SpecErrors, load
    try:
        return load(Path(path))
    except SpecErrors as exc:
        for e in exc.errors:
            print(f"{PROG}: {path}: {e}", file=sys.stderr)
        raise VmError("", 2) from None   # each problem said in its own line
    except (OSError, UnicodeDecodeError) as exc:
        raise VmError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", 2) from None


def _start(args) -> int:
    from . import command, host, runtime
    from .runtime import VmError
    from .spec import parse_bytes
    spec = _load(args.yaml)
    iso = getattr(args, "iso", None) or getattr(args, "preinstall", None)
    disk_size = None
    if args.command == "create":
        try:
            disk_size = parse_bytes(args.disk_size, default_unit=1 << 30)
        except ValueError:
            raise VmError(f"--disk-size: must be a size such as 100G, got {args.disk_size!r}", 2) from None
        if not spec.disk:
            raise VmError(f"{args.yaml}: disk: is required by create (the image file to make)", 2)
    problems = host.missing_files(spec, iso, "--iso" if args.command == "create" else "--preinstall")
    if args.command == "create" and not args.dry_run and spec.disk and _exists(spec.disk):
        problems.append(f"disk.path: {spec.disk} exists already: create makes a new disk (use start)")
    hardware = host.device_problems(spec) + host.passthrough_problems(spec) + host.placement_problems(spec)
    if not args.dry_run:
        problems += hardware
    for line in problems:
        print(f"{PROG}: {args.yaml}: {line}", file=sys.stderr)
    if problems:
        raise VmError("", 2)
    plan = command.build(spec, iso=iso, boot_iso=iso is not None, disk_size=disk_size, viewer=not args.no_viewer)
    if args.dry_run:
        for line in hardware:
            print(f"{PROG}: note: {line} (start would refuse)", file=sys.stderr)
        sys.stdout.write(command.describe(plan))
        return 0
    existing = runtime.load_state(spec.name)
    if existing is not None:
        if existing.alive():
            raise VmError(f"{spec.name} is already running (QEMU pid {existing.pid}): kvmfr-vm stop {spec.name}", 1)
        runtime.cleanup(existing)   # a VM that ended without stop: its leftovers
    print(f"{spec.name}: acceleration {plan.accel.upper()} ({plan.accel_why})", flush=True)
    if plan.disk_argv:
        _make_disk(plan.disk_argv)
    state = runtime.start(spec, plan, ready_timeout=args.timeout)
    print(f"{spec.name}: running, QEMU pid {state.pid}, QMP ready in {state.data['qmp_ready_s']:.2f} s "
          f"({state.rundir / 'qmp.sock'})")
    print(f"{spec.name}: SPICE {plan.spice}")
    for d in spec.displays:
        print(f"{spec.name}: display {d.index}: {d.path} ({d.size >> 20} MiB for {d.width}x{d.height} "
              f"{'HDR' if d.hdr else 'SDR'}), device kvmfr-{d.index} at PCI 00:{command.DISPLAY_SLOT + d.index:02x}.0, "
              f"label {command.display_label(d.index)}")
    if spec.audio.kind == "scream-ivshmem":
        print(f"{spec.name}: Scream: {spec.audio.path}, device scream at PCI 00:{command.SCREAM_SLOT:02x}.0, "
              f"label {command.SCREAM_LABEL}")
    sys.stdout.flush()
    if not plan.viewers:
        return 0
    return _supervise(spec, state, plan)


def _exists(path: str) -> bool:
    from pathlib import Path
    return Path(path).exists()


def _make_disk(argv: list[str]) -> None:
    import subprocess

    from .runtime import VmError
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise VmError("qemu-img is not installed (apt-get install qemu-utils)", 1) from None
    if proc.returncode:
        raise VmError(f"qemu-img could not create the disk: {(proc.stderr.strip().splitlines() or ['?'])[-1]}", 1)


def _supervise(spec, state, plan) -> int:
    """Run the viewers until QEMU ends (then close them and clean up). A viewer the user closes leaves the
    VM running; Ctrl+C or SIGTERM here stops the VM."""
    import shutil
    import subprocess
    import time

    from kvmfr_client.config import exits

    from . import runtime
    exe = shutil.which("kvmfr-view")
    viewers = []
    for argv in plan.viewers:
        full = ([exe] if exe else [sys.executable, "-m", "kvmfr_client.cli.view"]) + argv[1:]
        viewers.append(subprocess.Popen(full, stdin=subprocess.DEVNULL, start_new_session=True))
    state.data["viewers"] = [v.pid for v in viewers]
    state.save()
    stop_requested: list[int] = []
    with exits.on_stop_signals(stop_requested.append):
        while not stop_requested and state.alive():
            for n, v in enumerate(viewers):
                if v is not None and v.poll() is not None:
                    print(f"{spec.name}: the viewer closed; the VM keeps running (kvmfr-vm stop {spec.name})",
                          flush=True)
                    viewers[n] = None
                    # forget its pid: once reused by another process, stop must not signal that one
                    state.data["viewers"] = [v.pid for v in viewers if v is not None]
                    try:
                        state.save()
                    except OSError:   # kvmfr-vm stop removed the runtime folder meanwhile
                        pass
            if all(v is None for v in viewers):
                return 0
            time.sleep(0.25)
    if stop_requested:
        print(f"{spec.name}: {runtime.stop(state)}", flush=True)
    else:
        print(f"{spec.name}: QEMU ended; closing the viewers", flush=True)
        runtime.cleanup(state)
    for v in viewers:
        if v is not None:
            v.wait()
    return 0


def _vm_name(text: str) -> str:
    from .spec import NAME_RE
    if not NAME_RE.fullmatch(text):
        raise ValueError(f"a VM name is letters, digits, . _ - (at most 63), got {text!r}")
    return text


def _demo(args) -> int:
    from . import demo
    return demo.run(args, _supervise)


def _name_of(text: str) -> str:
    """A VM name, or the name inside a YAML file."""
    from pathlib import Path
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return _load(text).name if Path(text).exists() else Path(text).stem
    return text


def _stop(args) -> int:
    from . import runtime
    from .runtime import VmError
    name = _name_of(args.vm)
    state = runtime.load_state(name)
    if state is None:
        raise VmError(f"no VM named {name} is running (kvmfr-vm list shows those that are)", 1)
    print(f"{name}: {runtime.stop(state, grace=args.grace)}; its sockets and shared-memory files removed")
    return 0


def _describe(state) -> dict:
    from . import runtime
    from .runtime import VmError
    info = {"name": state.name, "pid": state.pid, "accel": state.data.get("accel"),
            "spice": state.data.get("spice"), "files": state.data.get("files", []), "source": state.data.get("source")}
    if not state.alive():
        info["status"] = "gone"
        return info
    try:
        info["status"] = runtime.qmp(state, "query-status", timeout=2.0)["status"]
        spice = runtime.qmp(state, "query-spice", timeout=2.0)
        info["spice_clients"] = len({c.get("connection-id") for c in spice.get("channels", [])})
    except VmError:
        info["status"] = "not answering"
    return info


def _status(args) -> int:
    import json

    from . import runtime
    from .runtime import VmError
    if args.vm:
        state = runtime.load_state(_name_of(args.vm))
        if state is None:
            raise VmError(f"no VM named {_name_of(args.vm)} is running", 1)
        states = [state]
    else:
        states = runtime.all_states()
    infos = [_describe(s) for s in states]
    if not infos and not args.json:
        print("no VM is running (kvmfr-vm start vm.yaml starts one)")
    if args.json:
        print(json.dumps(infos[0] if args.vm else infos))
    else:
        for i in infos:
            print(f"{i['name']}: {i['status']}" + ("" if i["status"] == "gone" else
                  f", QEMU pid {i['pid']}, {str(i['accel']).upper()}, SPICE {i['spice']} "
                  f"({i.get('spice_clients', 0)} client{'s' if i.get('spice_clients') != 1 else ''}), "
                  f"shared memory {', '.join(i['files']) or 'none created'}")
                  + (f" (QEMU ended without stop: kvmfr-vm stop {i['name']} removes what it left)"
                     if i["status"] == "gone" else ""))
    return 0 if all(i["status"] == "running" for i in infos) else 1


def _list(args) -> int:
    import json

    from . import runtime
    rows = []
    for s in runtime.all_states():
        rows.append({"name": s.name, "pid": s.pid, "alive": s.alive(), "accel": s.data.get("accel"),
                     "source": s.data.get("source")})
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['name']}\t{'running' if r['alive'] else 'gone'}\t{r['pid']}\t{r['accel']}\t{r['source']}")
    return 0


COMMANDS = {"create": _start, "start": _start, "stop": _stop, "status": _status, "list": _list, "demo": _demo}


if __name__ == "__main__":
    sys.exit(main())
