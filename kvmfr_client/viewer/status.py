"""What the window says: the status screen, the too-small banner and the title, as pure functions of the
session's state and the frame on screen (no GL, no window), so they can be tested and reused as text.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmfr_client.core.formats import FrameFlags, FrameType
from kvmfr_client.core.native import lib
from kvmfr_client.core.session import HostInfo, HostTimings, SessionState, recommended_shm_size_for

MIB = 1024 * 1024


@dataclass
class FrameMeta:
    """The frame last uploaded into the texture: what the status texts, stats and timings need of it."""

    serial: int
    width: int
    height: int
    type: FrameType
    flags: FrameFlags
    screen: tuple[int, int]
    data_height: int
    t_capture_us: int | None
    t_ns: tuple[int, int, int, int]   # seen, copy start, copy end, uploaded (CLOCK_MONOTONIC ns)
    pending: bool = True              # uploaded but not yet shown by a swap
    host_timings: HostTimings | None = None   # the host's own stage durations (KVMFR 34)

    @classmethod
    def of(cls, frame, t_capture_us: int | None, t_uploaded_ns: int) -> "FrameMeta":
        """From a :class:`kvmfr_client.core.session.Frame` (its type and flags are already typed)."""
        return cls(serial=frame.serial, width=frame.width, height=frame.height, type=frame.type,
                   flags=frame.flags, screen=(frame.screen_width, frame.screen_height),
                   data_height=frame.data_height, t_capture_us=t_capture_us,
                   t_ns=(frame.t_seen_ns, frame.t_copy_start_ns, frame.t_copy_end_ns, t_uploaded_ns),
                   host_timings=frame.host_timings)

    @property
    def truncated(self) -> bool:
        """The host could not fit the whole frame into the shared memory."""
        return bool(self.flags & FrameFlags.TRUNCATED)


def status_lines(state: SessionState, host: HostInfo | None, shm_path: str, message: str,
                 has_frame: bool) -> list[str]:
    """The centre status screen; empty while frames are shown."""
    if state is SessionState.CONNECTED and has_frame:
        lines: list[str] = []
    elif state is SessionState.CONNECTED:
        lines = ["CONNECTED - WAITING FOR THE FIRST FRAME", host.describe() if host else "",
                 protocol_text(host).upper() if host else ""]
    elif state is SessionState.WAITING:
        lines = ["WAITING FOR THE HOST", f"SHARED MEMORY: {shm_path}",
                 "START THE LOOKING GLASS HOST (B7 OR MASTER) IN THE GUEST"]
    elif state is SessionState.INCOMPATIBLE:
        lines = ["THE HOST SPEAKS ANOTHER VERSION", *wrap(message, 60), *SPOKEN]
    elif state is SessionState.LOST:
        lines = ["HOST LOST - RECONNECTING", *wrap(message, 60)]
    else:
        lines = [state.value.upper()]
    return [line for line in lines if line]


# The protocols this viewer speaks, as the "another version" screen says them.
SPOKEN = (f"THIS VIEWER SPEAKS LOOKING GLASS B7 (LGMP {lib.LGMP_PROTOCOL_VERSION} / KVMFR {lib.KVMFR_VERSION})",
          f"AND LOOKING GLASS MASTER (LGMP {lib.LGMP12_PROTOCOL_VERSION} / KVMFR {lib.KVMFR34_VERSION})")


def protocol_text(host: HostInfo) -> str:
    """The protocol spoken with the host: "Looking Glass master (LGMP 12 / KVMFR 34)"."""
    return f"Looking Glass {host.protocol_name} (LGMP {host.lgmp_version} / KVMFR {host.kvmfr_version})"


def banner_lines(state: SessionState, meta: FrameMeta | None, shm_size: int) -> list[str]:
    """The bottom banner: says how big the shared memory must be when the host truncates frames."""
    if meta is None or not meta.truncated or state is not SessionState.CONNECTED:
        return []
    need = recommended_shm_size_for(meta.width, meta.height, meta.type) // MIB
    return [f"SHARED MEMORY TOO SMALL: ONLY {meta.data_height} OF {meta.height} ROWS FIT",
            f"SET THE IVSHMEM SIZE TO {need} MIB (NOW {shm_size // MIB} MIB)"]


def window_title(prefix: str, state: SessionState, host: HostInfo | None) -> str:
    if host is not None and state is SessionState.CONNECTED:
        return f"{prefix} - {host.os_name or 'guest'} (host {host.hostver or '?'}) - {protocol_text(host)}"
    return f"{prefix} - {state.value}"


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap to lines of at most ``width`` characters (longer words stand alone)."""
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    if line:
        lines.append(line)
    return lines
