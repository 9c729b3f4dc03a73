"""Start QEMU for the SPICE tests: a bare machine whose input layer is traced, or a real guest.

QEMU's trace points ``input_event_*`` log every key (as a qcode), button and motion event the SPICE
server delivered, so the bare machine proves what reached QEMU without any guest at all.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.process import stop_process

QEMU = "qemu-system-x86_64"

_TRACE_RE = re.compile(
    r"input_event_(?:"
    r"key_qcode con -?\d+, key qcode (?P<qcode>\S+), down (?P<kdown>\d)"
    r"|btn con -?\d+, button (?P<button>\S+), down (?P<bdown>\d)"
    r"|rel con -?\d+, axis (?P<raxis>\w+), value (?P<rvalue>-?\d+)"
    r"|abs con -?\d+, axis (?P<aaxis>\w+), value (?P<avalue>-?\d+)"
    r")")


def free_port(udp: bool = False) -> int:
    """A TCP (or UDP) port on 127.0.0.1 that nothing uses right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_binary() -> str:
    exe = shutil.which(QEMU)
    if exe is None:
        pytest.fail(f"{QEMU} is not installed: run `scripts/setup.sh test` (apt-get install qemu-system-x86)")
    return exe


def accel() -> str:
    """TCG unless the CPU really has hardware virtualization (a software KVM cannot run a stock kernel)."""
    flags = Path("/proc/cpuinfo").read_text()
    if re.search(r"\b(vmx|svm)\b", flags) and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "kvm"
    return "tcg"


def parse_trace(text: str) -> list[tuple]:
    """QEMU input trace lines -> ("key", qcode, down) / ("btn", name, down) / ("rel"|"abs", axis, value)."""
    events = []
    for m in _TRACE_RE.finditer(text):
        if m["qcode"]:
            events.append(("key", m["qcode"], m["kdown"] == "1"))
        elif m["button"]:
            events.append(("btn", m["button"], m["bdown"] == "1"))
        elif m["raxis"]:
            events.append(("rel", m["raxis"], int(m["rvalue"])))
        else:
            events.append(("abs", m["aaxis"], int(m["avalue"])))
    return events


@dataclass
class TraceLog:
    """QEMU's input trace file, read incrementally: :meth:`take` returns events since the last call."""

    path: Path
    _offset: int = 0

    def _read_new(self) -> str:
        if not self.path.exists():
            return ""
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        # Only whole lines: QEMU may be in the middle of writing the last one.
        end = data.rfind(b"\n") + 1
        self._offset += end
        return data[:end].decode(errors="replace")

    def mark(self) -> None:
        self._read_new()

    def take(self, count: int | None = None, timeout: float = 5.0, settle: float = 0.15,
             kinds: tuple[str, ...] = ("key", "btn", "rel", "abs")) -> list[tuple]:
        """Events logged since the last call: wait for ``count`` of them (or until the log has been quiet
        for ``settle`` seconds when ``count`` is None)."""
        return gather(lambda: [e for e in parse_trace(self._read_new()) if e[0] in kinds],
                      lambda: time.sleep(0.02), count, timeout, settle)


def gather(take_new, pause, count: int | None, timeout: float, settle: float) -> list:
    """Call ``take_new()`` (then ``pause()``) until ``count`` items have come, or, when ``count`` is None,
    until none has come for ``settle`` seconds after the first; at most ``timeout`` seconds."""
    items: list = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    while True:
        new = take_new()
        if new:
            items += new
            last_new = time.monotonic()
        now = time.monotonic()
        if count is not None and len(items) >= count:
            return items
        if count is None and items and now - last_new >= settle:
            return items
        if now >= deadline:
            return items
        pause()


class SerialLog:
    """The guest's serial console (QEMU's stdout), read on a thread; each line kept with its arrival time
    (``time.perf_counter``) so benchmarks can time guest events from the host side."""

    def __init__(self, stream):
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._pos = 0
        self._thread = threading.Thread(target=self._read, args=(stream,), name="serial", daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            now = time.perf_counter()
            with self._cond:
                self.lines.append((now, raw.decode(errors="replace").rstrip("\r\n")))
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match | None:
        """First line (after those already consumed) matching ``pattern``; consumes up to it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._pos < len(self.lines):
                    line = self.lines[self._pos][1]
                    self._pos += 1
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def take_events(self, count: int | None = None, timeout: float = 5.0, settle: float = 0.3) -> list[tuple]:
        """``EV`` lines printed by the guest's evprint since the last call: (device, type, code, value)."""
        with self._cond:
            return gather(self._new_events, lambda: self._cond.wait(0.05), count, timeout, settle)

    def _new_events(self) -> list[tuple]:
        events = []
        while self._pos < len(self.lines):
            parts = self.lines[self._pos][1].split()
            self._pos += 1
            if len(parts) == 5 and parts[0] == "EV":
                events.append(tuple(int(p) for p in parts[1:]))
        return events

    def take_events_until(self, done, timeout: float = 10.0) -> list[tuple]:
        """Take ``EV`` events until ``done(events)`` holds (or the timeout passes); returns them all."""
        events: list[tuple] = []
        deadline = time.monotonic() + timeout
        while True:
            events += self.take_events(timeout=0.2, settle=0.05)
            if done(events) or time.monotonic() >= deadline:
                return events

    def text(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)


def take_until(trace: "TraceLog", done, timeout: float = 10.0, **kw) -> list[tuple]:
    """Take trace events until ``done(events)`` holds (or the timeout passes); returns them all."""
    events: list[tuple] = []
    deadline = time.monotonic() + timeout
    while True:
        events += trace.take(timeout=0.2, settle=0.05, **kw)
        if done(events) or time.monotonic() >= deadline:
            return events


@dataclass
class Qemu:
    """A running QEMU; :meth:`stop` kills it (fixtures call it in their finalizers)."""

    proc: subprocess.Popen
    port: int
    log_path: Path
    trace: TraceLog
    host: str = "127.0.0.1"
    unix_path: Path | None = None
    serial: SerialLog | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def spice(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        # The serial console's thread reads QEMU's stdout.
        stop_process(self.proc, sig=sig, read_output=False)

    def output(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if self.serial is not None:
            text += "\n--- serial console ---\n" + self.serial.text()[-3000:]
        return text


def start_qemu(workdir: Path, *, port: int | None = None, password: str | None = None,
               unix: bool = False, extra: list[str] | None = None, name: str = "qemu",
               ready_timeout: float = 15.0, serial: bool = False) -> Qemu:
    """Start QEMU with a SPICE server on 127.0.0.1 (or a UNIX socket) and its input layer traced.

    The machine runs (no ``-S``): QEMU drops input while it is paused.
    """
    exe = qemu_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    trace_path = workdir / f"{name}-input.trace"
    trace_path.unlink(missing_ok=True)
    out_path = workdir / f"{name}.out"
    unix_path = workdir / f"{name}.sock" if unix else None
    if port is None:
        port = 0 if unix else free_port()
    spice = f"unix=on,addr={unix_path}" if unix else f"port={port},addr=127.0.0.1"
    argv = [exe, "-machine", f"q35,accel={accel()}", "-nodefaults", "-m", "128", "-display", "none",
            "-monitor", "none", "-nic", "none", "-no-user-config",
            "-trace", "input_event_*", "-D", str(trace_path)]
    if password is not None:
        argv += ["-object", f"secret,id=spicepw,data={password}",
                 "-spice", f"{spice},password-secret=spicepw"]
    else:
        argv += ["-spice", f"{spice},disable-ticketing=on"]
    if serial:
        argv += ["-chardev", "stdio,id=serial0,signal=off", "-serial", "chardev:serial0"]
    argv += extra or []
    out = open(out_path, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if serial else out,
                            stderr=out if serial else subprocess.STDOUT, start_new_session=True)
    out.close()
    qemu = Qemu(proc, port, out_path, TraceLog(trace_path), unix_path=unix_path, argv=argv,
                serial=SerialLog(proc.stdout) if serial else None)
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"QEMU exited with status {proc.returncode} before its SPICE server listened:\n"
                        f"{' '.join(argv)}\n{qemu.output()[-2000:]}")
        if _listening(qemu):
            return qemu
        if time.monotonic() > deadline:
            qemu.stop(signal.SIGKILL)
            pytest.fail(f"QEMU's SPICE server did not listen within {ready_timeout} s:\n{' '.join(argv)}\n"
                        f"{qemu.output()[-2000:]}")
        time.sleep(0.05)


def _listening(qemu: Qemu) -> bool:
    family = socket.AF_UNIX if qemu.unix_path else socket.AF_INET
    target = str(qemu.unix_path) if qemu.unix_path else (qemu.host, qemu.port)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(target)
        except OSError:
            return False
    return True


def start_guest(workdir: Path, image, *, tablet: bool = False, agent_text: str | None = None,
                name: str = "guest", append: str = "", **kw) -> Qemu:
    """Boot the test guest (kernel + initramfs from tests.support.guest) with SPICE and a serial console.

    With ``tablet`` a USB tablet and one display device are added, so SPICE offers client (absolute)
    mouse mode once the guest's HID driver polls the tablet. With ``agent_text`` the guest runs a stand-in
    SPICE agent (virtio port com.redhat.spice.0) whose clipboard holds that text (no spaces). ``append``:
    more kernel parameters (e.g. another ``rdinit=``).
    """
    append = f"console=ttyS0 quiet panic=-1 i8042.nopnp {append}".rstrip()
    if agent_text is not None:
        append += f" agenttext={agent_text}"
    extra = ["-kernel", str(image.kernel), "-initrd", str(image.initrd),
             "-append", append, "-smp", "1", "-no-reboot"]
    if agent_text is not None:
        extra += ["-device", "virtio-serial-pci", "-chardev", "spicevmc,id=vdagent,name=vdagent",
                  "-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0"]
    if tablet:
        extra += ["-device", "VGA", "-device", "qemu-xhci", "-device", "usb-tablet"]
    return start_qemu(workdir, extra=extra + kw.pop("extra", []), name=name, serial=True, **kw)
