"""Hostile LGMP 12 / KVMFR 34 memory: a real Looking Glass master dump (shared/fixtures/lg-master, 03:
full frame ring, two frames, cursor) with one bad value per case. Each gives its specific error (class,
field) and no crash; then the LGMP 12 queue rules a live peer relies on (targeted posts, done under
the lock, 8 subscriber slots, the recovery region).

The master producer lives in another branch; the live two-process cases come with it.
"""

from __future__ import annotations

import gzip
import mmap
from pathlib import Path

import pytest

from kvmfr_client.core import errors
from kvmfr_client.core.native import check, ffi, lib, new_error
from kvmfr_client.core.snapshot import read_snapshot

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "lg-master"
if not (FIXTURES / "03_live_c.bin.gz").is_file():
    pytest.skip(f"Looking Glass master fixtures not found at {FIXTURES}", allow_module_level=True)

SIZE = 32 << 20
QUEUE = ffi.sizeof("struct lgmp12_header_queue")
MSG = ffi.sizeof("struct lgmp12_header_message")
FRAME_Q, POINTER_Q = 0, 1                 # descriptor index of each queue in the dumps
FRAME_RING, POINTER_RING = 9984, 10048
FRAME_BLOCKS = (3158016, 18354176)       # 03: ring slot 0 -> block 0 (15530), slot 1 -> block 1 (15533)
SHAPE_BLOCK = 11968
UDATA = lib.LGMP12_UDATA_OFFSET


def hoff(field: str) -> int:
    return ffi.offsetof("struct lgmp12_header", field)


def qoff(index: int, field: str) -> int:
    return hoff("queues") + QUEUE * index + ffi.offsetof("struct lgmp12_header_queue", field)


def moff(ring: int, slot: int, field: str) -> int:
    return ring + MSG * slot + ffi.offsetof("struct lgmp12_header_message", field)


def foff(block: int, field: str) -> int:
    return block + ffi.offsetof("struct kvmfr34_frame", field)


def coff(field: str) -> int:
    return SHAPE_BLOCK + ffi.offsetof("struct kvmfr34_cursor", field)


_RAW: dict[str, bytes] = {}


@pytest.fixture
def region(tmp_path):
    """A writable copy of dump 03 and a function that sets a u32 in it."""
    if "03" not in _RAW:
        _RAW["03"] = gzip.decompress((FIXTURES / "03_live_c.bin.gz").read_bytes())
    path = tmp_path / "region"
    path.write_bytes(_RAW["03"])
    f = open(path, "r+b")
    mm = mmap.mmap(f.fileno(), 0)

    def u32(at: int, value: int | None = None) -> int:
        if value is not None:
            mm[at:at + 4] = value.to_bytes(4, "little")
        return int.from_bytes(mm[at:at + 4], "little")
    u32.path, u32.mm = path, mm
    yield u32
    mm.close()
    f.close()


# case -> (what to write: [(offset, u32)], error class, field)
CASES = {
    "lgmp_version": ([(hoff("version"), 11)], errors.IncompatibleHost, "lgmp.version"),
    "b7_magic_other_version": ([(0, lib.LGMP_PROTOCOL_MAGIC), (4, 7)], errors.IncompatibleHost, "lgmp.version"),
    "kvmfr_pairing": ([(UDATA + 8, lib.KVMFR_VERSION)], errors.IncompatibleHost, "kvmfr.version"),
    "session_id_zero": ([(hoff("sessionID"), 0)], errors.HostNotRunning, "lgmp.sessionID"),
    "num_queues": ([(hoff("numQueues"), 7)], errors.ProtocolError, "lgmp.numQueues"),
    "udata_size": ([(hoff("udataSize"), SIZE)], errors.ProtocolError, "lgmp.udataSize"),
    "ring_not_pow2": ([(qoff(FRAME_Q, "numMessages"), 3)], errors.ProtocolError, "queue[2].numMessages"),
    "ring_one_slot": ([(qoff(FRAME_Q, "numMessages"), 1)], errors.ProtocolError, "queue[2].numMessages"),
    "ring_over_udata": ([(qoff(FRAME_Q, "messagesOffset"), 9856)], errors.ProtocolError,
                        "queue[2].messagesOffset"),
    "ring_misaligned": ([(qoff(FRAME_Q, "messagesOffset"), FRAME_RING + 8)], errors.ProtocolError,
                        "queue[2].messagesOffset"),
    "ring_outside": ([(qoff(POINTER_Q, "messagesOffset"), SIZE - 512)], errors.ProtocolError,
                     "queue[1].messagesOffset"),
    "position": ([(qoff(FRAME_Q, "position"), 2)], errors.ProtocolError, "queue.position"),
    "subscribers_full": ([(qoff(FRAME_Q, "subs"), 0x00FF0000)], errors.QueueError, "queue.subs"),
    "message_size": ([(moff(FRAME_RING, 1, "size"), 1215)], errors.ProtocolError, "message.size"),
    "message_offset": ([(moff(FRAME_RING, 1, "offset"), SIZE - 4096)], errors.ProtocolError, "message.offset"),
    "frame_type": ([(foff(FRAME_BLOCKS[1], "type"), lib.FRAME_TYPE_MAX)], errors.ProtocolError, "frame.type"),
    "frame_offset": ([(foff(FRAME_BLOCKS[1], "offset"), 4094)], errors.ProtocolError, "frame.offset"),
    "frame_offset_in_header": ([(foff(FRAME_BLOCKS[1], "offset"), 1200)], errors.ProtocolError, "frame.offset"),
    "frame_rows": ([(foff(FRAME_BLOCKS[1], "frameHeight"), 16384), (foff(FRAME_BLOCKS[1], "dataHeight"), 16384)],
                   errors.ProtocolError, "frame.dataHeight"),
    "damage_count": ([(foff(FRAME_BLOCKS[1], "damageRectsCount"), 65)], errors.ProtocolError,
                     "frame.damageRectsCount"),
    "damage_rect": ([(foff(FRAME_BLOCKS[1], "damageRectsCount"), 1),
                     (foff(FRAME_BLOCKS[1], "damageRects") + 8, 641), (foff(FRAME_BLOCKS[1], "damageRects") + 12, 1)],
                    errors.ProtocolError, "frame.damageRects[0]"),
    "sdr_white_level": ([(foff(FRAME_BLOCKS[1], "sdrWhiteLevel"), 1_000_000)], errors.ProtocolError,
                        "frame.sdrWhiteLevel"),
    "hdr_max_luminance": ([(foff(FRAME_BLOCKS[1], "hdrMaxDisplayLuminance"), 65535)], errors.ProtocolError,
                          "frame.hdrMaxDisplayLuminance"),
    "hdr_min_over_max": ([(foff(FRAME_BLOCKS[1], "hdrMaxDisplayLuminance"), 1000),
                          (foff(FRAME_BLOCKS[1], "hdrMinDisplayLuminance"), 1000 * 10000 + 1)],
                         errors.ProtocolError, "frame.hdrMinDisplayLuminance"),
    "hdr_primary": ([(foff(FRAME_BLOCKS[1], "hdrDisplayPrimary"), 0xFFFF)], errors.ProtocolError,
                    "frame.hdrDisplayPrimary"),
    "cursor_width": ([(coff("width"), 513)], errors.ProtocolError, "cursor.width"),
    "cursor_sdr_white_level": ([(coff("sdrWhiteLevel"), 123456)], errors.ProtocolError, "cursor.sdrWhiteLevel"),
    "cursor_transform_does_not_fit": ([(moff(POINTER_RING, 1, "udata"), 23 | lib.CURSOR_FLAG_COLOR_TRANSFORM),
                                       (moff(POINTER_RING, 1, "size"), 28 + 1024 + 65591)],
                                      errors.ProtocolError, "cursor.colorTransform"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_gives_specific_error(case, region):
    writes, cls, field = CASES[case]
    for at, value in writes:
        region(at, value)
    with pytest.raises(errors.KvmfrError) as info:
        read_snapshot(str(region.path))
    exc = info.value
    assert isinstance(exc, cls), (type(exc), str(exc))
    assert exc.field == field, str(exc)
    assert "\n" not in str(exc) and str(exc)
    if cls is errors.IncompatibleHost and field.startswith("lgmp") or field == "kvmfr.version":
        assert "this client speaks B7 (LGMP 6 / KVMFR 20) and master (LGMP 12 / KVMFR 34)" in str(exc)


def test_kvmfr_pairing_names_both_versions(region):
    region(UDATA + 8, lib.KVMFR_VERSION)
    with pytest.raises(errors.IncompatibleHost) as info:
        read_snapshot(str(region.path))
    assert (info.value.remote_lgmp, info.value.remote_kvmfr) == (12, 20)
    assert "host speaks LGMP 12 / KVMFR 20" in str(info.value)


def test_colour_transform_that_fits_is_accepted(region):
    """COLOR_TRANSFORM: 65 592 bytes follow the shape; the dump's 1 MiB message holds them (not applied)."""
    region(moff(POINTER_RING, 1, "udata"), 23 | lib.CURSOR_FLAG_COLOR_TRANSFORM)
    cur = read_snapshot(str(region.path)).newest_cursor
    assert cur.flags & lib.CURSOR_FLAG_COLOR_TRANSFORM and cur.shape.width == 16


def test_heartbeat_offset_not_magic(region):
    """No LGMP magic at either offset: the host is not running (not a crash, not a version error)."""
    region(hoff("magic"), 0)
    with pytest.raises(errors.HostNotRunning):
        read_snapshot(str(region.path))


# ---- the LGMP 12 queue rules, through the native client on the dump --------------------------

class Client:
    def __init__(self, path: Path):
        self.c = ffi.gc(lib.kv_client_new(), lib.kv_client_free)
        self.err = new_error()
        check(lib.kv_client_open(self.c, str(path).encode(), self.err), self.err)
        self.info = ffi.new("struct kv_host_info *")

    def call(self, fn, *args) -> int:
        return getattr(lib, "kv_client_" + fn)(self.c, *args, self.err)

    def stats(self, queue_id: int = lib.LGMP_Q_FRAME) -> dict:
        st = ffi.new("struct kv_queue_stats *")
        lib.kv_client_queue_stats(self.c, queue_id, st)
        return {k: int(getattr(st, k)) for k in ("position", "start", "count", "subs", "slot")}

    def peek_serial(self) -> int | None:
        fi = ffi.new("struct kv_frame_info *")
        rc = self.call("frame_peek", fi)
        if rc == lib.LGMP_ERR_QUEUE_EMPTY:
            return None
        check(rc, self.err)
        return int(fi.serial)


def test_targeted_posts_and_done_under_the_lock(region):
    """The full frame ring of 03 (start 0, count 2); the master client holds slot 0, we take slot 1.
    A message is ours when it carries our bit: peek finds it wherever it sits; done dequeues only the
    oldest message, only when no one else still holds it, and only raises msgTimeout."""
    cl = Client(region.path)
    check(cl.call("session_init", cl.info), cl.err)
    check(cl.call("subscribe", lib.LGMP_Q_FRAME), cl.err)
    assert cl.stats()["slot"] == 1
    pend = [moff(FRAME_RING, i, "pendingSubs") for i in (0, 1)]
    assert region(pend[0]) & 2 == 0 and region(pend[1]) & 2 == 0     # subscribe cleared our bit everywhere
    assert cl.peek_serial() is None                                   # nothing for us, though the ring is full

    region(pend[1], 2)                                                # posted to us only, in slot 1
    assert cl.peek_serial() == 15533
    check(cl.call("frame_done"), cl.err)
    assert region(pend[1]) == 0
    assert cl.stats()["count"] == 2 and cl.stats()["start"] == 0      # not the oldest: stays

    timeout_at = qoff(FRAME_Q, "msgTimeout")
    old_timeout = int.from_bytes(region.mm[timeout_at:timeout_at + 8], "little")
    region(pend[0], 2)                                                # the oldest, ours alone
    assert cl.peek_serial() == 15530
    check(cl.call("frame_done"), cl.err)
    st = cl.stats()
    assert (st["start"], st["count"]) == (1, 1)                       # dequeued
    now = int.from_bytes(region.mm[0:8], "little")
    new_timeout = int.from_bytes(region.mm[timeout_at:timeout_at + 8], "little")
    assert new_timeout == max(old_timeout, now + 1000)

    region(pend[0], 1 | 2)                                            # the master client still holds it
    region(qoff(FRAME_Q, "start"), 0), region(qoff(FRAME_Q, "count"), 2)
    assert cl.peek_serial() == 15530
    check(cl.call("frame_done"), cl.err)
    assert region(pend[0]) == 1 and cl.stats()["count"] == 2          # our bit gone, message stays


def test_eight_slots_and_reclaiming_kicked_ones(region):
    """8 subscriber slots; a slot kicked (BAD) longer ago than its timeout is reclaimed."""
    region(qoff(FRAME_Q, "subs"), 0x00FF00FF)                         # all 8 ON and BAD, timeouts 0 (past)
    cl = Client(region.path)
    check(cl.call("session_init", cl.info), cl.err)
    check(cl.call("subscribe", lib.LGMP_Q_FRAME), cl.err)
    assert cl.stats()["slot"] == 0 and cl.stats()["subs"] == 0x00010000
    cid = qoff(FRAME_Q, "clientID")
    assert region(cid) == 2 and region(cid + 4) == 0                  # ours (nextClientID 1 -> 2); others freed

    region(qoff(FRAME_Q, "subs"), 0x00FF0000)
    other = Client(region.path)
    check(other.call("session_init", other.info), other.err)
    assert other.call("subscribe", lib.LGMP_Q_FRAME) == lib.LGMP_ERR_QUEUE_FULL
    assert "all 8 subscriber slots of queue 2 are taken" in ffi.string(other.err.message).decode()


def test_recovery_region_bounds_lgmp(region):
    """IDD hosts: a live recovery block (magic KVMFRRCV, ready 1) in the last 64 KiB keeps LGMP out of them."""
    rec = SIZE - lib.KVMFR_R_REGION_SIZE
    region(qoff(POINTER_Q, "messagesOffset"), rec + 1024)            # a ring inside the last 64 KiB
    region.mm[rec:rec + 8] = b"KVMFRRCV"
    region(rec + 60, 0)                                               # not ready: the whole mapping is LGMP's
    assert read_snapshot(str(region.path)).host.lgmp_version == 12
    region(rec + 60, 1)
    with pytest.raises(errors.ProtocolError) as info:
        read_snapshot(str(region.path))
    assert info.value.field == "queue[1].messagesOffset" and info.value.limit == rec


def test_window_size_message_is_stamped_with_our_client_id(region):
    """KVMFR 34 hosts with WINDOWSIZE get the request in the pointer queue's 80-byte client messages,
    stamped with our LGMP 12 client id (the host drops unstamped ones); without the feature it is refused."""
    features = UDATA + ffi.offsetof("struct kvmfr_header", "features")
    cl = Client(region.path)
    check(cl.call("session_init", cl.info), cl.err)
    check(cl.call("subscribe", lib.LGMP_Q_POINTER), cl.err)
    assert cl.call("set_window_size", 1920, 1080) == lib.KV_ERR_NOT_READY
    assert "WINDOWSIZE" in ffi.string(cl.err.message).decode()

    region(features, lib.KVMFR_FEATURE_WINDOWSIZE)
    cl = Client(region.path)
    check(cl.call("session_init", cl.info), cl.err)
    check(cl.call("subscribe", lib.LGMP_Q_POINTER), cl.err)
    check(cl.call("set_window_size", 1920, 1080), cl.err)
    msg = qoff(POINTER_Q, "cMsgs")
    cmsg = "struct lgmp12_client_message"
    assert region(msg + ffi.offsetof(cmsg, "size")) == ffi.sizeof("struct kvmfr_window_size")
    assert region(msg + ffi.offsetof(cmsg, "clientID")) == 3          # nextClientID 1 -> 2 (first), 3 (ours)
    data = msg + ffi.offsetof(cmsg, "data")
    assert [region(data + 4 * i) for i in range(3)] == [lib.KVMFR_MESSAGE_WINDOWSIZE, 1920, 1080]
    assert region(qoff(POINTER_Q, "cMsgAvail")) == lib.LGMP12_MSGS_MAX - 1
    assert region(qoff(POINTER_Q, "cMsgWSerial")) == 1 and region(qoff(POINTER_Q, "lock")) == 0
