"""The VM description (``vm.yaml``): read with PyYAML's ``safe_load``, checked key by key into plain data.

Every problem is a :class:`SpecError` naming the key (``displays[1].resolution``) and what is allowed; the
whole file is checked and all problems are reported, one line each. Only what the file itself says is checked
here; what the host has (the ISO, the kernel, a PCI device, hugepages) is :mod:`kvmfr_client.vm.host`'s.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvmfr_client.config.registry import size_within

from kvmfr_client.core.ivshmem_ids import MAX_DISPLAYS, SCREAM_IVSHMEM_SIZE

MAX_SIDE = 16384          # as win:size and the agent: no frame is larger
MiB = 1 << 20
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
PCI_RE = re.compile(r"(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")
_SIZE_RE = re.compile(r"(\d+)\s*([KMGT]?)(?:i?B)?", re.I)
_UNITS = {"": MiB, "K": 1 << 10, "M": MiB, "G": 1 << 30, "T": 1 << 40}
AUDIO_KINDS = ("none", "scream-ivshmem", "scream-network", "spice")
VIDEO_KINDS = ("none", "vga", "qxl", "virtio")
ACCELS = ("auto", "kvm", "tcg")


class SpecError(ValueError):
    """One problem in the VM description: ``key`` (a dotted path) and what is wrong or allowed."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class SpecErrors(ValueError):
    """All the problems found in one file."""

    def __init__(self, errors: list[SpecError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Display:
    index: int
    width: int
    height: int
    hdr: bool
    size: int                 # bytes of the ivshmem region
    path: str                 # backing file (/dev/shm/<name>-<n>) or /dev/kvmfrN

    @property
    def is_kvmfr_device(self) -> bool:
        return self.path.startswith("/dev/kvmfr")


@dataclass(frozen=True)
class Passthrough:
    index: int
    kind: str                 # "vfio", "mdev", "sriov-vf"
    address: str = ""         # vfio: the PCI address; mdev: the parent; sriov-vf: the physical function
    mdev_type: str = ""
    uuid: str = ""
    vf: int = 0

    def describe(self) -> str:
        if self.kind == "vfio":
            return f"PCI device {self.address}"
        if self.kind == "mdev":
            return f"mediated device type {self.mdev_type} on {self.address}"
        return f"virtual function {self.vf} of {self.address}"


@dataclass(frozen=True)
class Share:
    """A host folder the guest mounts over virtio-9p (``mount -t 9p -o trans=virtio TAG /mnt``)."""

    path: str
    tag: str
    readonly: bool = True


@dataclass(frozen=True)
class Spice:
    socket: str = ""          # UNIX socket path; "" = the runtime folder's spice.sock
    port: int = 0             # TCP port (0: UNIX socket)
    address: str = "127.0.0.1"
    allow_remote: bool = False
    password_file: str = ""


@dataclass(frozen=True)
class Audio:
    kind: str = "none"
    path: str = ""            # scream-ivshmem: backing file
    size: int = SCREAM_IVSHMEM_SIZE
    target: str = "udp://239.255.77.77:4010"   # scream-network: what the viewer listens to
    interface: str = ""


@dataclass(frozen=True)
class VmSpec:
    name: str
    source: Path              # the YAML file
    cpus: int = 2
    memory: int = 4096 * MiB
    hugepages: bool = False
    cpu_pinning: tuple[int, ...] = ()
    numa_node: int | None = None
    accel: str = "auto"
    machine: str = "q35"
    video: str = "vga"
    network: str = "user"
    disk: str = ""
    disk_format: str = "qcow2"
    kernel: str = ""
    initrd: str = ""
    append: str = ""
    displays: tuple[Display, ...] = ()
    audio: Audio = field(default_factory=Audio)
    spice: Spice = field(default_factory=Spice)
    vdagent: bool = True
    passthrough: tuple[Passthrough, ...] = ()
    shares: tuple[Share, ...] = ()


def parse_bytes(value: Any, default_unit: int = MiB) -> int:
    """``512M``, ``4G``, ``100GiB``, or a bare number (in ``default_unit``) -> bytes."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value * default_unit
    m = _SIZE_RE.fullmatch(str(value).strip())
    if not m:
        raise ValueError
    unit = _UNITS[m.group(2).upper()] if m.group(2) else default_unit
    return int(m.group(1)) * unit


def show_bytes(size: int) -> str:
    """Bytes as QEMU takes them: ``32M``, ``4G``."""
    for suffix, unit in (("T", 1 << 40), ("G", 1 << 30), ("M", MiB), ("K", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


class _Reader:
    """Walks the parsed YAML, collecting one :class:`SpecError` per problem."""

    def __init__(self, base: Path):
        self.base = base
        self.errors: list[SpecError] = []

    def fail(self, key: str, message: str) -> None:
        self.errors.append(SpecError(key, message))

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping of {', '.join(allowed)}, got {_kind(value)}")
            return {}
        for name in value:
            if name not in allowed:
                near = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                where = f"{key}.{name}" if key else str(name)
                self.fail(where, f"unknown key{hint}; allowed here: {', '.join(allowed)}")
        return value

    def integer(self, m: dict, key: str, where: str, low: int, high: int, default: int) -> int:
        value = m.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"must be a whole number {low}..{high}, got {value!r}")
            return default
        return value

    def boolean(self, m: dict, key: str, where: str, default: bool) -> bool:
        value = m.get(key, default)
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, got {value!r}")
            return default
        return value

    def choice(self, m: dict, key: str, where: str, allowed: tuple[str, ...], default: str) -> str:
        value = m.get(key, default)
        if value not in allowed:
            self.fail(where, f"must be one of {', '.join(allowed)}, got {value!r}")
            return default
        return value

    def text(self, m: dict, key: str, where: str, default: str = "") -> str:
        value = m.get(key, default)
        if value is None:
            return default
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.fail(where, f"must be text, got {_kind(value)}")
            return default
        return str(value)

    def path(self, m: dict, key: str, where: str) -> str:
        """A file path; relative paths are relative to the YAML file's folder."""
        value = self.text(m, key, where)
        if not value:
            return ""
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (self.base / p))

    def size(self, m: dict, key: str, where: str, default: int, low: int, high: int) -> int:
        value = m.get(key)
        if value is None:
            return default
        try:
            size = parse_bytes(value)
        except ValueError:
            self.fail(where, f"must be a size such as 512M or 4G, got {value!r}")
            return default
        if not low <= size <= high:
            self.fail(where, f"must be {show_bytes(low)}..{show_bytes(high)}, got {value}")
            return default
        return size

    def pci(self, value: Any, where: str) -> str:
        text = str(value) if value is not None else ""
        if not PCI_RE.fullmatch(text):
            self.fail(where, f"must be a PCI address such as 0000:01:00.0, got {value!r}")
            return ""
        return text.lower() if text.count(":") == 2 else f"0000:{text.lower()}"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "true/false", type(None): "nothing"}.get(type(value), type(value).__name__)


TOP_KEYS = ("name", "cpus", "memory", "hugepages", "cpu_pinning", "numa_node", "accel", "machine", "video",
            "network", "disk", "kernel", "initrd", "append", "displays", "audio", "spice", "vdagent",
            "passthrough", "shares")


def load(path: Path) -> VmSpec:
    """Read and check ``path``; raises :class:`SpecErrors` (every problem) or OSError (unreadable)."""
    import yaml
    text = Path(path).read_text()
    try:
        data = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecErrors([SpecError("", f"not valid YAML: {where}{problem}")]) from None
    return parse(data, Path(path))


def _loader():
    """PyYAML's SafeLoader without YAML 1.1's base-60 numbers, which would read the PCI address
    ``0000:42:00.0`` as the number 2520.0 (YAML 1.2 dropped them); everything else as ``safe_load``."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers
                if not (tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and ":" in rx.pattern)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    for tag, rx, first in (
            ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o?[0-7_]+)$", "-+0123456789"),
            ("tag:yaml.org,2002:float", r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+][0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$"
                                        r"|^\.(?:nan|NaN|NAN)$", "-+0123456789.")):
        Loader.add_implicit_resolver(tag, re.compile(rx), list(first))
    return Loader


def parse(data: Any, source: Path) -> VmSpec:
    """Check the parsed YAML ``data`` of file ``source``."""
    r = _Reader(source.resolve().parent)
    if not isinstance(data, dict):
        raise SpecErrors([SpecError("", f"must be a mapping of keys ({', '.join(TOP_KEYS)}), got {_kind(data)}")])
    m = r.mapping(data, "", TOP_KEYS)
    name = r.text(m, "name", "name")
    if not name:
        r.fail("name", "is required: the VM's name (letters, digits, . _ -)")
    elif not NAME_RE.fullmatch(name):
        r.fail("name", f"must be 1..63 letters, digits, '.', '_' or '-' (starting with a letter or digit), got {name!r}")
        name = "vm"
    cpus = r.integer(m, "cpus", "cpus", 1, 256, 2)
    memory = r.size(m, "memory", "memory", 4096 * MiB, 64 * MiB, 4 << 40)
    pinning: tuple[int, ...] = ()
    if m.get("cpu_pinning") is not None:
        value = m["cpu_pinning"]
        if (not isinstance(value, list) or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 4096
                                                    for c in value)):
            r.fail("cpu_pinning", f"must be a list of host CPU numbers, one per vCPU, got {value!r}")
        elif len(value) != cpus:
            r.fail("cpu_pinning", f"must list one host CPU per vCPU: {cpus} wanted, {len(value)} given")
        elif len(set(value)) != len(value):
            r.fail("cpu_pinning", f"lists a host CPU twice: {value}")
        else:
            pinning = tuple(value)
    numa = None
    if m.get("numa_node") is not None:
        numa = r.integer(m, "numa_node", "numa_node", 0, 1023, 0)
    displays = tuple(_displays(r, m.get("displays"), name))
    spec = VmSpec(
        name=name, source=source, cpus=cpus, memory=memory,
        hugepages=r.boolean(m, "hugepages", "hugepages", False), cpu_pinning=pinning, numa_node=numa,
        accel=r.choice(m, "accel", "accel", ACCELS, "auto"),
        machine=r.choice(m, "machine", "machine", ("q35",), "q35"),
        video=r.choice(m, "video", "video", VIDEO_KINDS, "vga"),
        network=_network(r, m), kernel=r.path(m, "kernel", "kernel"), initrd=r.path(m, "initrd", "initrd"),
        append=r.text(m, "append", "append"), displays=displays, audio=_audio(r, m.get("audio"), name),
        spice=_spice(r, m.get("spice")), vdagent=r.boolean(m, "vdagent", "vdagent", True),
        passthrough=tuple(_passthrough(r, m.get("passthrough"), name)), shares=tuple(_shares(r, m.get("shares"))),
        **_disk(r, m.get("disk")))
    if (spec.initrd or spec.append) and not spec.kernel:
        r.fail("kernel", "is required when initrd or append is given")
    shm_paths = [d.path for d in displays] + ([spec.audio.path] if spec.audio.kind == "scream-ivshmem" else [])
    for p in sorted({p for p in shm_paths if shm_paths.count(p) > 1}):
        r.fail("displays", f"two devices share the backing file {p}: each needs its own")
    if r.errors:
        raise SpecErrors(r.errors)
    return spec


def _shares(r: _Reader, value: Any):
    if value is None:
        return
    if not isinstance(value, list):
        r.fail("shares", f"must be a list of host folders (each with path, tag, readonly), got {_kind(value)}")
        return
    tags = set()
    for n, item in enumerate(value):
        key = f"shares[{n}]"
        e = r.mapping(item, key, ("path", "tag", "readonly"))
        if not isinstance(item, dict):
            continue
        path = r.path(e, "path", f"{key}.path")
        if not path:
            r.fail(f"{key}.path", "is required: the host folder to share")
        tag = r.text(e, "tag", f"{key}.tag", f"share{n}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,31}", tag) or tag in tags:
            r.fail(f"{key}.tag", f"must be a unique name of 1..31 letters, digits, _ or -, got {tag!r}")
        tags.add(tag)
        readonly = r.boolean(e, "readonly", f"{key}.readonly", True)
        if path:
            yield Share(path, tag, readonly)


def _network(r: _Reader, m: dict) -> str:
    value = r.text(m, "network", "network", "user")
    if value in ("none", "user") or re.fullmatch(r"bridge:[A-Za-z0-9_.-]{1,15}", value):
        return value
    r.fail("network", f"must be none, user or bridge:NAME, got {value!r}")
    return "user"


def _disk(r: _Reader, value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):
        value = {"path": value}
    d = r.mapping(value, "disk", ("path", "format"))
    path = r.path(d, "path", "disk.path")
    if not path:
        r.fail("disk.path", "is required: the disk image file")
    return {"disk": path, "disk_format": r.choice(d, "format", "disk.format", ("qcow2", "raw"), "qcow2")}


def _displays(r: _Reader, value: Any, vm: str):
    if value is None:
        return
    if not isinstance(value, list):
        r.fail("displays", f"must be a list of displays (each with resolution, hdr, size, path), got {_kind(value)}")
        return
    if len(value) > MAX_DISPLAYS:
        r.fail("displays", f"at most {MAX_DISPLAYS} displays, got {len(value)}")
        return
    from kvmfr_client.core.session import recommended_shm_size
    parse_res = size_within(MAX_SIDE, "a display")
    for n, item in enumerate(value):
        key = f"displays[{n}]"
        d = r.mapping(item, key, ("resolution", "hdr", "size", "path"))
        if not isinstance(item, dict):
            continue
        try:
            width, height = parse_res(str(d.get("resolution", "1920x1080")))
        except ValueError as exc:
            r.fail(f"{key}.resolution", str(exc))
            continue
        hdr = r.boolean(d, "hdr", f"{key}.hdr", False)
        need = recommended_shm_size(width, height, 8 if hdr else 4)
        size = r.size(d, "size", f"{key}.size", need, MiB, 1 << 40)
        if size & (size - 1):
            r.fail(f"{key}.size", f"must be a power of two (IVSHMEM's rule), got {show_bytes(size)}")
        elif size < need:
            r.fail(f"{key}.size", f"{show_bytes(size)} is too small for {width}x{height} {'HDR' if hdr else 'SDR'}: "
                                  f"Looking Glass's rule needs {show_bytes(need)} (leave size out to get it)")
        path = r.text(d, "path", f"{key}.path") or f"/dev/shm/{vm}-{n}"
        if not (re.fullmatch(r"/dev/kvmfr\d+", path) or path.startswith("/dev/shm/")):
            r.fail(f"{key}.path", f"must be a file in /dev/shm or a /dev/kvmfrN device, got {path!r}")
        yield Display(n, width, height, hdr, size, path)


def _audio(r: _Reader, value: Any, vm: str) -> Audio:
    if value is None:
        return Audio()
    if isinstance(value, str):
        value = {"kind": value}
    a = r.mapping(value, "audio", ("kind", "path", "size", "target", "interface"))
    kind = r.choice(a, "kind", "audio.kind", AUDIO_KINDS, "none")
    path = r.text(a, "path", "audio.path") or f"/dev/shm/{vm}-scream"
    if kind == "scream-ivshmem" and not path.startswith("/dev/shm/"):
        r.fail("audio.path", f"must be a file in /dev/shm, got {path!r}")
    size = r.size(a, "size", "audio.size", SCREAM_IVSHMEM_SIZE, MiB, 64 * MiB)
    if size & (size - 1):
        r.fail("audio.size", f"must be a power of two (IVSHMEM's rule), got {show_bytes(size)}")
    target = r.text(a, "target", "audio.target", Audio.target)
    if kind == "scream-network" and not re.fullmatch(r"udp://[^\s:/]+:\d{1,5}", target):
        r.fail("audio.target", f"must be udp://GROUP_OR_HOST:PORT, got {target!r}")
    return Audio(kind, path, size, target, r.text(a, "interface", "audio.interface"))


_LOCAL = ("127.0.0.1", "::1", "localhost")


def _spice(r: _Reader, value: Any) -> Spice:
    s = r.mapping(value, "spice", ("socket", "port", "address", "allow_remote", "password_file"))
    socket_path = r.path(s, "socket", "spice.socket")
    port = r.integer(s, "port", "spice.port", 0, 65535, 0)
    address = r.text(s, "address", "spice.address", "127.0.0.1")
    allow = r.boolean(s, "allow_remote", "spice.allow_remote", False)
    password = r.path(s, "password_file", "spice.password_file")
    if socket_path and port:
        r.fail("spice", "give socket or port, not both")
    if port and address not in _LOCAL and not allow:
        r.fail("spice.address", f"{address} is reachable from other machines: SPICE gives keyboard and mouse "
                                "to whoever connects; use 127.0.0.1 (or a UNIX socket), or set allow_remote: true")
    if port and address not in _LOCAL and allow and not password:
        r.fail("spice.password_file", "is required when SPICE listens on a remote address")
    return Spice(socket_path, port, address, allow, password)


def _passthrough(r: _Reader, value: Any, vm: str):
    if value is None:
        return
    if not isinstance(value, list):
        r.fail("passthrough", f"must be a list of vfio / mdev / sriov_vf entries, got {_kind(value)}")
        return
    import uuid
    for n, item in enumerate(value):
        key = f"passthrough[{n}]"
        e = r.mapping(item, key, ("vfio", "mdev", "sriov_vf"))
        if not isinstance(item, dict):
            continue
        if len(e) != 1:
            r.fail(key, "must hold exactly one of vfio, mdev, sriov_vf")
            continue
        kind, body = next(iter(e.items()))
        if kind == "vfio":
            address = r.pci(body, f"{key}.vfio")
            if address:
                yield Passthrough(n, "vfio", address)
        elif kind == "mdev":
            b = r.mapping(body, f"{key}.mdev", ("parent", "type", "uuid"))
            parent = r.pci(b.get("parent"), f"{key}.mdev.parent")
            mtype = r.text(b, "type", f"{key}.mdev.type")
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", mtype):
                r.fail(f"{key}.mdev.type", f"must name a type of {parent or 'the parent'}'s mdev_supported_types "
                                           f"(e.g. i915-GVTg_V5_4 or nvidia-63), got {mtype!r}")
            ident = r.text(b, "uuid", f"{key}.mdev.uuid") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"kvmfr-vm:{vm}:{n}"))
            try:
                ident = str(uuid.UUID(ident))
            except ValueError:
                r.fail(f"{key}.mdev.uuid", f"must be a UUID, got {ident!r}")
            if parent:
                yield Passthrough(n, "mdev", parent, mdev_type=mtype, uuid=ident)
        else:
            b = r.mapping(body, f"{key}.sriov_vf", ("pf", "vf"))
            pf = r.pci(b.get("pf"), f"{key}.sriov_vf.pf")
            vf = r.integer(b, "vf", f"{key}.sriov_vf.vf", 0, 255, 0)
            if pf:
                yield Passthrough(n, "sriov-vf", pf, vf=vf)
