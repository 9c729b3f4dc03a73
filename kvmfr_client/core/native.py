"""The native helper (built by cffi from native/) and the mapping of its error codes to exceptions."""

from __future__ import annotations

from . import errors

try:
    from ._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "the native helper kvmfr_client.core._native is not built: run `pip install .` "
        "(or scripts/setup.sh) in the source tree"
    ) from exc

if lib.LGMP_PROTOCOL_VERSION != 6 or lib.KVMFR_VERSION != 20:  # pragma: no cover
    raise ImportError("native helper was built for another wire version")


_BY_CODE: dict[int, type[errors.KvmfrError]] = {
    lib.KV_ERR_MAP: errors.ShmError,
    lib.KV_ERR_SHM_TOO_SMALL: errors.ShmTooSmall,
    lib.LGMP_ERR_INVALID_MAGIC: errors.HostNotRunning,
    lib.LGMP_ERR_INVALID_SESSION: errors.HostNotRunning,
    lib.LGMP_ERR_INVALID_VERSION: errors.IncompatibleHost,
    lib.KV_ERR_OTHER_LGMP: errors.IncompatibleHost,
    lib.KV_ERR_KVMFR_VERSION: errors.IncompatibleHost,
    lib.KV_ERR_KVMFR_MAGIC: errors.IncompatibleHost,
    lib.KV_ERR_BAD_FIELD: errors.ProtocolError,
    lib.LGMP_ERR_CORRUPTED: errors.ProtocolError,
    lib.KV_ERR_WP_STALL: errors.WritePointerStall,
    lib.KV_ERR_SESSION_LOST: errors.SessionLost,
    lib.LGMP_ERR_QUEUE_TIMEOUT: errors.QueueError,
    lib.LGMP_ERR_QUEUE_UNSUBSCRIBED: errors.QueueError,
    lib.LGMP_ERR_QUEUE_FULL: errors.QueueError,
    lib.LGMP_ERR_NO_SUCH_QUEUE: errors.QueueError,
    lib.KV_ERR_TIMEOUT: errors.KvmfrTimeout,
    lib.KV_ERR_SHM_LOST: errors.ShmLost,
}


def new_error():
    return ffi.new("struct kv_error *")


def to_exception(err, default: type[errors.KvmfrError] = errors.KvmfrError,
                 frame: bool = False, cursor: bool = False) -> errors.KvmfrError:
    """Turn a filled ``struct kv_error`` into the matching exception instance."""
    code = err.code
    cls = _BY_CODE.get(code, default)
    if cls is errors.ProtocolError and frame:
        cls = errors.FrameError
    elif cls is errors.ProtocolError and cursor:
        cls = errors.CursorError
    message = ffi.string(err.message).decode(errors="replace") or f"native error {code}"
    exc = cls(message, code=code, field=ffi.string(err.field).decode(errors="replace"),
              value=int(err.value), limit=int(err.limit))
    if isinstance(exc, errors.IncompatibleHost):
        if code == lib.KV_ERR_OTHER_LGMP:
            exc.remote_lgmp, exc.remote_kvmfr = int(err.value), int(err.limit)
        elif code == lib.LGMP_ERR_INVALID_VERSION:
            exc.remote_lgmp = int(err.value)
        elif code == lib.KV_ERR_KVMFR_VERSION:
            exc.remote_lgmp, exc.remote_kvmfr = int(err.limit), int(err.value)
    return exc


def check(rc: int, err, **kw) -> None:
    if rc != lib.LGMP_OK:
        if err.code != rc:
            err.code = rc
        raise to_exception(err, **kw)


def cstr(value) -> str:
    return ffi.string(value).decode("utf-8", errors="replace")


class BufferGuard:
    """A mapping registered with the native SIGBUS guard (see :func:`guard_buffer`)."""

    def __init__(self, buf) -> None:
        self._view = ffi.from_buffer(buf)   # holds the buffer: close() releases it
        self._id = int(lib.kv_guard_add(self._view, len(self._view)))
        if self._id < 0:
            ffi.release(self._view)
            raise errors.ShmError("too many shared-memory mappings are open at once (64 at most): close some",
                                  field="guard", limit=64)

    @property
    def lost(self) -> bool:
        """True once an access inside the buffer faulted because its file shrank or vanished; the
        buffer now reads zeros (and writes go nowhere). Stop using it and map the file again."""
        return self._id >= 0 and bool(lib.kv_guard_lost(self._id))

    def close(self) -> None:
        """Unregister (call before closing the mmap; the mmap cannot close while the guard holds it)."""
        if self._id >= 0:
            lib.kv_guard_remove(self._id)
            self._id = -1
            ffi.release(self._view)

    def __enter__(self) -> "BufferGuard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def guard_buffer(buf) -> BufferGuard:
    """Protect a mapping of a shared-memory file against the file shrinking or being removed.

    ``buf``: a readable or writable ``mmap.mmap`` (or any buffer; pass a whole mapping, since the guard
    covers whole pages). Without the guard, touching a page past the file's new end kills the process
    with SIGBUS. With it, the whole mapping is replaced by zero pages at the first such fault, the
    access completes, and ``guard.lost`` turns True: check it after reading (a frame or packet read
    while ``lost`` may be zeros), drop the mapping and wait for the file to be valid again. Faults
    outside every guarded mapping still reach Python's faulthandler or the default action.

        guard = guard_buffer(mm)
        ...
        if guard.lost: ...
        guard.close(); mm.close()
    """
    return BufferGuard(buf)
