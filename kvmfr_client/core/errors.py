"""Exceptions for everything that can go wrong between us and the host.

``str(exc)`` is one sentence in the user's words (what is wrong, and what to do where there is
something to do). Each also carries the wire field that was wrong, the value read and the limit it
broke (``field``, ``value``, ``limit``; all three in :attr:`KvmfrError.detail`), for the debug log.
"""

from __future__ import annotations


class KvmfrError(Exception):
    """Base class. ``code`` is the LGMP status or the native helper's own error code."""

    def __init__(self, message: str, code: int = 0, field: str = "", value: int = 0, limit: int = 0):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.value = value
        self.limit = limit

    def __str__(self) -> str:
        return self.message

    @property
    def detail(self) -> str:
        """The message with the refused field, value and limit: for debug logs, not for users."""
        if self.field:
            return f"{self.message} [{self.field} = {self.value}, limit {self.limit}, code {self.code}]"
        return f"{self.message} [code {self.code}]"


class ShmError(KvmfrError):
    """The shared memory cannot be opened, sized or mapped."""


class ShmTooSmall(ShmError):
    """The shared memory is smaller than the layout needs; ``limit`` is the size needed."""


class ShmNotUsable(ShmError):
    """The path is no shared-memory file: a directory, a FIFO, /dev/null, a /proc file, unreadable..."""


class ShmLost(ShmError):
    """The file shrank or was removed under the mapping; ``value`` is the native KV_LOST_* reason,
    ``limit`` the file's size now. The mapping was dropped and the file is waited for again."""


class HostNotRunning(KvmfrError):
    """No LGMP header, or its heartbeat is not moving: start the host application in the guest."""


class IncompatibleHost(KvmfrError):
    """The host speaks another LGMP or KVMFR version (``remote_lgmp`` / ``remote_kvmfr``)."""

    remote_lgmp: int = 0
    remote_kvmfr: int = 0


class ProtocolError(KvmfrError):
    """A value in shared memory failed validation (hostile or corrupt guest data)."""


class FrameError(ProtocolError):
    """A frame message was refused; it was skipped and the session goes on."""


class CursorError(ProtocolError):
    """A cursor message was refused; it was skipped and the session goes on."""


class WritePointerStall(FrameError):
    """The host stopped advancing the frame's write pointer before the frame was complete."""


class SessionLost(KvmfrError):
    """The host restarted (new session id), stopped its heartbeat, or removed its header."""


class QueueError(KvmfrError):
    """The host dropped our subscription, or a queue is full."""


class KvmfrTimeout(KvmfrError):
    """Something the host should have done in time did not happen."""
