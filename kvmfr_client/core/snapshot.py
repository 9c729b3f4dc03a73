"""Decode a still copy of a shared-memory region (a dump file) through the same checked native reader.

A dump has no moving heartbeat, so this skips the liveness wait of a live session; everything else
(header, version, KVMFR records, queue table, frame and cursor validation) is the live code path.
Either protocol the reader speaks: B7 (LGMP 6 / KVMFR 20) and master (LGMP 12 / KVMFR 34), told apart
by the memory itself. Used by `kvmfr-view --inspect FILE` and by the conformance tests against real
Looking Glass B7 and master dumps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import errors
from .native import check, ffi, lib, new_error
from .cursor import CursorEvent, CursorFlags, CursorShape, CursorType
from .session import Frame, HostInfo, check_shm_file, open_error


@dataclass
class Snapshot:
    host: HostInfo
    queues: dict[int, dict[str, int]]
    newest_frame: Frame | None
    newest_cursor: CursorEvent | None
    # The newest frame was posted but its pixels were not (all) written when the copy was taken: why
    # (newest_frame then holds its header, with no pixel rows).
    newest_frame_incomplete: str | None = None


def _queue_stats(c, queue_id: int) -> dict[str, int]:
    st = ffi.new("struct kv_queue_stats *")
    lib.kv_client_queue_stats(c, queue_id, st)
    return {k: int(getattr(st, k)) for k in ("position", "start", "count", "num_messages", "subs", "new_sub_count")}


def read_snapshot(path: str) -> Snapshot:
    """Decode the region in ``path``. The file is modified only by our own subscription bits."""
    path = str(path)
    if check_shm_file(path) is None:
        raise errors.ShmNotUsable(f"{path} does not exist", field="path")
    c = ffi.gc(lib.kv_client_new(), lib.kv_client_free)
    err = new_error()
    rc = lib.kv_client_open(c, path.encode(), err)
    if rc == lib.KV_ERR_SHM_TOO_SMALL:
        raise errors.ShmTooSmall(f"{path} is {int(err.value)} bytes: too small to be a copy of a shared-memory "
                                 f"region (those are at least {lib.LGMP_HEADER_SIZE} bytes)", code=rc,
                                 field="shm.size", value=int(err.value), limit=int(err.limit))
    if rc:
        raise open_error(path, err)
    info = ffi.new("struct kv_host_info *")
    check(lib.kv_client_session_init(c, info, err), err)
    host = HostInfo.from_native(info)
    queues = {q: _queue_stats(c, q) for q in (lib.LGMP_Q_FRAME, lib.LGMP_Q_POINTER)}
    frame = cursor = incomplete = None

    fq = queues[lib.LGMP_Q_FRAME]
    check(lib.kv_client_subscribe(c, lib.LGMP_Q_FRAME, err), err)
    newest = (fq["position"] + fq["num_messages"] - 1) % fq["num_messages"]
    check(lib.kv_client_set_read_pos(c, lib.LGMP_Q_FRAME, newest, err), err)
    fi = ffi.new("struct kv_frame_info *")
    if _slot_written(lib.kv_client_frame_peek(c, fi, err), err):
        out = np.empty((fi.data_height, fi.pitch), np.uint8)
        rc = lib.kv_client_frame_copy(c, fi, ffi.from_buffer("uint8_t[]", out, require_writable=True),
                                      out.nbytes, fi.pitch, lib.KV_COPY_FULL, err)
        if rc == lib.KV_ERR_WP_STALL:   # a still copy: the host was writing this frame when it was taken
            incomplete, out = ffi.string(err.message).decode(errors="replace"), out[:0]
        else:
            check(rc, err, frame=True)
        frame = Frame.from_native(fi, out)
    pq = queues[lib.LGMP_Q_POINTER]
    check(lib.kv_client_subscribe(c, lib.LGMP_Q_POINTER, err), err)
    newest = (pq["position"] + pq["num_messages"] - 1) % pq["num_messages"]
    check(lib.kv_client_set_read_pos(c, lib.LGMP_Q_POINTER, newest, err), err)
    ci = ffi.new("struct kv_cursor_info *")
    shape_buf = ffi.new("uint8_t[]", lib.KVMFR_CURSOR_SHAPE_MAX)
    if _slot_written(lib.kv_client_cursor_next(c, ci, shape_buf, lib.KVMFR_CURSOR_SHAPE_MAX, err), err):
        flags = CursorFlags(ci.flags)
        shape = None
        if flags & CursorFlags.SHAPE:
            ctype = CursorType(ci.type)
            shape = CursorShape(type=ctype, width=int(ci.width),
                                height=int(ci.height) // (2 if ctype == CursorType.MONOCHROME else 1),
                                hx=int(ci.hx), hy=int(ci.hy), pitch=int(ci.pitch),
                                data=bytes(ffi.buffer(shape_buf, ci.shape_size)))
        # KVMFR 34: VISIBLE means something only with VISIBLE_VALID (else: not shown, as a new Session).
        visible = bool(flags & CursorFlags.VISIBLE) and (
            host.kvmfr_version != lib.KVMFR34_VERSION or bool(flags & CursorFlags.VISIBLE_VALID))
        cursor = CursorEvent(flags=flags, x=int(ci.x), y=int(ci.y), visible=visible, shape=shape,
                             sdr_white_level=int(ci.sdr_white_level))
    return Snapshot(host=host, queues=queues, newest_frame=frame, newest_cursor=cursor,
                    newest_frame_incomplete=incomplete)


def _slot_written(rc: int, err) -> bool:
    """A ring slot that was never written (all zero) means the queue never carried a message."""
    if rc == lib.KV_ERR_BAD_FIELD and ffi.string(err.field) == b"message.size" and err.value == 0:
        return False
    check(rc, err)
    return True
