"""What the window says: the status screen, the too-small banner and the title, as pure functions of the
session's state and the frame on screen (no GL, no window), so they can be tested and reused as text.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmfr_client.core.formats import FrameFlags, FrameType
from kvmfr_client.core.native import lib
from kvmfr_client.core.session import (TYPICAL_HEIGHT, TYPICAL_WIDTH, HostInfo, HostTimings, SessionState,
                                       recommended_shm_size, recommended_shm_size_for)

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
                 has_frame: bool, file_size: int | None = -1) -> list[str]:
    """The centre status screen, first line the headline; empty while frames are shown.

    ``file_size``: while the session has not mapped the file, the size of the regular file at
    ``shm_path`` in bytes (0: empty), None when it does not exist; -1 when not known or not a regular
    file (a kvmfr device). ``shm_path`` is shown exactly as the user typed it."""
    if state is SessionState.CONNECTED and has_frame:
        return []     # the common case, asked at every redraw: nothing computed for it
    where = f"Shared memory: {shm_path}"
    need = recommended_shm_size(TYPICAL_WIDTH, TYPICAL_HEIGHT) // MIB
    if state is SessionState.CONNECTED:
        lines = ["Connected - waiting for the first frame", host.describe() if host else "",
                 protocol_text(host) if host else ""]
    elif state is SessionState.WAITING and file_size is None:
        lines = ["The shared-memory file does not exist", where,
                 "Start the VM: its ivshmem device (or the kvmfr module) makes it.",
                 "If the VM is running, check the path (app:shmFile)."]
    elif state is SessionState.WAITING and file_size == 0:
        lines = ["The shared-memory file is empty", where,
                 f"Set its size to {need} MiB for a {TYPICAL_WIDTH}x{TYPICAL_HEIGHT} desktop",
                 "(the VM's ivshmem size, or the size in its tmpfiles.d rule)."]
    elif state is SessionState.WAITING and file_size is not None and file_size > 0 and "sized" in message:
        lines = ["The shared-memory file is too small", where,
                 f"It is {_size_text(file_size)}; set it to {need} MiB for a {TYPICAL_WIDTH}x{TYPICAL_HEIGHT} desktop",
                 "(the VM's ivshmem size, or the size in its tmpfiles.d rule)."]
    elif state is SessionState.WAITING:
        lines = ["Waiting for the host", where,
                 "No Looking Glass host is running in the guest: start it (B7 or master)."]
    elif state is SessionState.INCOMPATIBLE:
        lines = ["The host speaks another version", *wrap(message, 70), *SPOKEN]
    elif state is SessionState.LOST:
        lines = ["Host lost - reconnecting", *wrap(message, 70)]
    else:
        lines = [state.value[:1].upper() + state.value[1:]]
    return [line for line in lines if line]


SPICE_WORDS = {
    "off": "off (spice:enable=no): keyboard and mouse stay here",
    "connecting": "connecting",
    "connected": "connected",
    "retrying": "retrying: no SPICE server answers yet",
    "lost": "lost: reconnecting",
    "failed": "failed (see the terminal): keyboard and mouse do not reach the VM",
}


def spice_line(state: str) -> str:
    """The SPICE line of the status screen: "SPICE (keyboard and mouse): connected"."""
    return f"SPICE (keyboard and mouse): {SPICE_WORDS.get(state, state)}"


def audio_line(stats: dict | None) -> str:
    """The audio line of the status screen, from :meth:`kvmfr_client.audio.AudioService.stats` (None: no
    audio service)."""
    if stats is None:
        return "Audio: off (audio:scream and audio:spice are off)"
    if not stats.get("packets") and not stats.get("chunks"):
        return "Audio: waiting for sound from the guest"
    line = f"Audio: playing, {stats.get('queued_ms', 0):.0f} ms queued (target {stats.get('target_ms', 0):.0f} ms)"
    if stats.get("underruns"):
        line += f", {stats['underruns']} underruns"
    return line


def spice_alert(old: str, new: str) -> str | None:
    """The alert for a SPICE state change, or None (a retry after a retry says nothing new)."""
    if new == "connected" and old != "connected":
        return "SPICE connected: keyboard and mouse reach the VM"
    if new == "lost":
        return "SPICE lost: keyboard and mouse do not reach the VM"
    if new == "failed":
        return "SPICE failed: see the terminal"
    return None


def _size_text(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB and size % MIB == 0 else f"{size} bytes"


# The protocols this viewer speaks, as the "another version" screen says them.
SPOKEN = (f"This viewer speaks Looking Glass B7 (LGMP {lib.LGMP_PROTOCOL_VERSION} / KVMFR {lib.KVMFR_VERSION})",
          f"and Looking Glass master (LGMP {lib.LGMP12_PROTOCOL_VERSION} / KVMFR {lib.KVMFR34_VERSION}).")


def protocol_text(host: HostInfo) -> str:
    """The protocol spoken with the host: "Looking Glass master (LGMP 12 / KVMFR 34)"."""
    return f"Looking Glass {host.protocol_name} (LGMP {host.lgmp_version} / KVMFR {host.kvmfr_version})"


def banner_lines(state: SessionState, meta: FrameMeta | None, shm_size: int) -> list[str]:
    """The bottom banner: says how big the shared memory must be when the host truncates frames."""
    if meta is None or not meta.truncated or state is not SessionState.CONNECTED:
        return []
    need = recommended_shm_size_for(meta.width, meta.height, meta.type) // MIB
    return [f"Shared memory too small: only {meta.data_height} of {meta.height} rows fit",
            f"Set the ivshmem size to {need} MiB (now {shm_size // MIB} MiB)"]


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
