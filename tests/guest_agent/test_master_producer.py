"""The producer's LGMP 12 host rules in master mode, read back from raw memory.

The test plays the master client at the words a client owns (subscriber bits, client ids, client
messages) and checks what a Looking Glass master client would see the host do.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from guest_agent.agent import Agent, AgentOptions
from guest_agent.producer import HostDescription, Producer, stage_timings
from kvmfr_client.core import errors
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.native import ffi, lib
from tests.guest_agent.master_region import (FRAME_INDEX, HEADER, POINTER_INDEX, MasterRegion, off,
                                             window_size_message)

SIZE = 4 << 20
W, H = 64, 48


@pytest.fixture
def master(tmp_path):
    path = tmp_path / "shm"
    prod = Producer(str(path), create_size=SIZE, host=HostDescription(protocol="master"), tick_ms=0)
    region = MasterRegion(str(path))
    yield prod, region
    region.close()
    prod.close()


def _rows(value: int = 0x40) -> np.ndarray:
    return np.full((H, W * 4), value, np.uint8)


def _post(prod: Producer, serial: int, timeout: float = 0.2, timings=None) -> None:
    assert prod.begin_frame(serial, FrameType.BGRA, W, H, timeout=timeout)
    prod.write_rows(_rows(serial & 0xFF))
    prod.end_frame(timings)


def test_the_frame_ring_fills_without_a_spare_slot(master):
    prod, r = master
    r.subscribe(0, 1)
    _post(prod, 1)
    _post(prod, 2)
    assert r.qu32(FRAME_INDEX, "count") == 2 == r.qu32(FRAME_INDEX, "numMessages")
    assert r.qu32(FRAME_INDEX, "position") == r.qu32(FRAME_INDEX, "start") == 0
    with pytest.raises(errors.KvmfrTimeout):
        _post(prod, 3, timeout=0.1)
    prod.tick()   # a full ring is consistent: no re-initialisation
    assert prod.reinits == 0 and r.qu32(FRAME_INDEX, "count") == 2


def test_post_marks_active_subscribers_pending_and_never_bad_ones(master):
    prod, r = master
    r.subscribe(0, 1)
    r.subscribe(1, 2)
    r.subscribe(2, 3)
    r.set_q(FRAME_INDEX, "subs", r.qu32(FRAME_INDEX, "subs") | (1 << 1))   # slot 1 kicked (BAD)
    _post(prod, 1)
    assert r.message(FRAME_INDEX, 0)["pendingSubs"] == 0b101


def test_only_eight_subscriber_slots_exist(master):
    prod, r = master
    # A guest claims all 16 bit positions: slots 8..15 are not LGMP 12 slots and get nothing.
    r.set_q(FRAME_INDEX, "subs", 0xFFFF0000)
    _post(prod, 1)
    assert r.message(FRAME_INDEX, 0)["pendingSubs"] == 0xFF
    prod.tick()
    assert r.qu32(FRAME_INDEX, "subs") >> 16 == 0xFF


def test_heartbeat_is_published_at_most_every_250_ms_while_ticks_run_every_10(master):
    prod, r = master
    seen = [(time.monotonic(), r.u64(off(HEADER, "timestamp")))]
    end = time.monotonic() + 1.2
    while time.monotonic() < end:
        prod.tick()
        ts = r.u64(off(HEADER, "timestamp"))
        if ts != seen[-1][1]:
            seen.append((time.monotonic(), ts))
        time.sleep(0.01)
    steps = [b[1] - a[1] for a, b in zip(seen, seen[1:])]
    assert len(steps) >= 3, steps                      # it still moves (clients time out after 1000 ms)
    assert all(250 <= s < 400 for s in steps), steps


def test_a_client_that_times_out_on_one_queue_is_bad_on_every_queue(master):
    prod, r = master
    r.subscribe(2, 7, queues=(FRAME_INDEX,))
    r.subscribe(3, 7, queues=(POINTER_INDEX,))        # same client id, another slot
    r.subscribe(0, 8, queues=(POINTER_INDEX,))        # someone else, not kicked
    _post(prod, 1)                                    # never finished by client 7
    end = time.monotonic() + 1.6
    while time.monotonic() < end and not r.qu32(FRAME_INDEX, "subs") & (1 << 2):
        prod.tick()
        time.sleep(0.01)
    assert r.qu32(FRAME_INDEX, "subs") & (1 << 2), "slot 2 of the frame queue was never kicked"
    assert r.qu32(POINTER_INDEX, "subs") & (1 << 3), "client 7 is still active on the pointer queue"
    assert not r.qu32(POINTER_INDEX, "subs") & (1 << 0)


def test_client_messages_from_non_subscribers_are_discarded_and_acknowledged(master):
    prod, r = master
    r.subscribe(0, 1)
    r.send(0, 99, window_size_message(800, 600))      # no such subscriber
    r.send(1, 1, window_size_message(1024, 768))      # the subscriber's
    prod.tick()
    assert r.qu32(POINTER_INDEX, "cMsgRSerial") == 1 and prod.discarded_messages == 1
    assert prod.next_message() == window_size_message(1024, 768)
    assert prod.next_message() is None
    assert r.qu32(POINTER_INDEX, "cMsgRSerial") == 2 and r.qu32(POINTER_INDEX, "cMsgAvail") == lib.LGMP12_MSGS_MAX


def test_timings_are_published_after_the_copy_for_that_frame(master):
    prod, r = master
    r.subscribe(0, 1)
    assert prod.begin_frame(41, FrameType.BGRA, W, H)
    blk = r.message(FRAME_INDEX, 0)["offset"]
    assert r.frame_u32(blk, "timingValid") == 0         # posted, not yet written: not to be trusted
    assert r.frame_u32(blk, "sdrWhiteLevel") == lib.KVMFR_SDR_WHITE_LEVEL_DEFAULT
    prod.write_rows(_rows())
    prod.end_frame(stage_timings(capture_ns=1234, copy_ns=56789))
    assert r.frame_u32(blk, "timingValid") == 1 and r.frame_u32(blk, "timingSerial") == 41
    assert (r.frame_u64(blk, "captureTime"), r.frame_u64(blk, "postProcessTime"), r.frame_u64(blk, "copyTime")) == \
        (1234, 0, 56789)
    # The next frame in that block starts untrusted again, whatever the previous one published.
    _post(prod, 42)
    prod.tick()
    r.set_q(FRAME_INDEX, "count", 0)
    r.set_q(FRAME_INDEX, "start", r.qu32(FRAME_INDEX, "position"))
    for slot in (0, 1):
        at = r.qu32(FRAME_INDEX, "messagesOffset") + slot * 32 + off("struct lgmp12_header_message", "pendingSubs")
        r.set_u32(at, 0)
    assert prod.begin_frame(43, FrameType.BGRA, W, H)
    assert r.frame_u32(blk, "timingValid") == 0


def test_new_subscribers_get_the_current_frame_and_cursor_with_visible_valid(master):
    prod, r = master
    r.subscribe(0, 1)
    _post(prod, 5)
    prod.post_cursor(10, 20, shape=(0, 2, 2, 8, 0, 0, bytes(16)))
    r.set_q(FRAME_INDEX, "newSubCount", 0)
    r.set_q(POINTER_INDEX, "newSubCount", 0)
    before = (r.qu32(FRAME_INDEX, "position"), r.qu32(POINTER_INDEX, "position"))
    r.subscribe(1, 2)
    prod.tick()
    assert r.qu32(FRAME_INDEX, "position") == (before[0] + 1) % 2
    assert r.qu32(POINTER_INDEX, "position") == before[1] + 1
    cur = r.message(POINTER_INDEX, before[1])
    assert cur["udata"] & lib.CURSOR_FLAG_VISIBLE_VALID and cur["udata"] & lib.CURSOR_FLAG_SHAPE


def test_window_size_request_resizes_the_test_pattern(tmp_path, caplog):
    opts = AgentOptions(shm=str(tmp_path / "shm"), source="testpattern", width=320, height=240, fps=30,
                        ftype=FrameType.BGRA, frames=0, cursor=False, idle_without_clients=False, protocol="master")
    agent = Agent(opts)
    try:
        r = MasterRegion(opts.shm)
        udata = lib.LGMP12_UDATA_OFFSET
        features = r.u32(udata + off("struct kvmfr_header", "features"))
        assert features & lib.KVMFR_FEATURE_WINDOWSIZE and features & lib.KVMFR_FEATURE_SETCURSORPOS
        assert r.u32(udata + off("struct kvmfr_header", "version")) == 34
        r.subscribe(0, 1)
        time.sleep(0.05)
        r.send(0, 1, window_size_message(400, 300))
        r.send(1, 1, window_size_message(0, 300))        # not sane: logged, ignored
        r.send(2, 1, window_size_message(16384, 16384))  # does not fit 32 MiB: logged, ignored
        with caplog.at_level(logging.INFO):
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and prod_messages_left(r):
                time.sleep(0.01)
            agent._handle_messages()
        assert (agent.opts.width, agent.opts.height) == (400, 300)
        assert sum("ignored" in rec.getMessage() for rec in caplog.records) == 2
        agent.serial += 1
        agent.source.post(agent.producer, agent.serial)
        blk = r.message(FRAME_INDEX, (r.qu32(FRAME_INDEX, "position") - 1) % 2)["offset"]
        assert (r.frame_u32(blk, "frameWidth"), r.frame_u32(blk, "frameHeight")) == (400, 300)
        assert r.frame_u32(blk, "formatVer") == 1                  # a new format, like a guest mode change
        assert r.frame_u32(blk, "timingValid") == 1 and r.frame_u64(blk, "copyTime") > 0
        r.close()
    finally:
        agent.close()


def prod_messages_left(r: MasterRegion) -> bool:
    return r.qu32(POINTER_INDEX, "cMsgAvail") < lib.LGMP12_MSGS_MAX


def test_an_unknown_lgmp_version_is_refused_with_a_clear_error(tmp_path):
    from kvmfr_client.core.native import new_error
    prod = Producer(str(tmp_path / "shm"), create_size=SIZE, start=False)
    info = HostDescription().to_native()
    info.lgmp_version = 10
    err = new_error()
    assert lib.kv_producer_start(prod._p, info, err) == lib.LGMP_ERR_INVALID_VERSION
    assert ffi.string(err.message).decode() == "the producer speaks LGMP 6 (B7) or 12 (master), not 10"
    prod.close()


def test_switching_protocols_on_one_file_leaves_no_old_magic(tmp_path):
    """A B7 session replaced by a master one and back, like a host upgrade or downgrade: a client probing
    either magic finds only the running session's."""
    path = str(tmp_path / "shm")
    b7_magic_at = ffi.offsetof("struct lgmp_header", "magic")
    for protocol in ("b7", "master", "b7"):
        prod = Producer(path, create_size=SIZE, host=HostDescription(protocol=protocol), tick_ms=0)
        r = MasterRegion(path)
        at_b7, at_master = r.u32(b7_magic_at), r.u32(lib.LGMP12_MAGIC_OFFSET)
        r.close()
        prod.close()
        if protocol == "b7":
            assert at_b7 == lib.LGMP_PROTOCOL_MAGIC and at_master != lib.LGMP_PROTOCOL_MAGIC
        else:
            assert at_master == lib.LGMP_PROTOCOL_MAGIC and at_b7 != lib.LGMP_PROTOCOL_MAGIC


@pytest.mark.parametrize("protocol", ["b7", "master"])
def test_hdr_test_formats_carry_hdr_metadata_only_in_master_frames(tmp_path, protocol):
    from guest_agent.sources.synthetic import HDR_TEST_METADATA, PatternSource
    from kvmfr_client.core.testpattern import PatternKind
    path = str(tmp_path / "shm")
    with Producer(path, create_size=32 << 20, host=HostDescription(protocol=protocol), tick_ms=0) as prod:
        r = MasterRegion(path)
        if protocol == "master":
            r.subscribe(0, 1)
            PatternSource(256, 128, FrameType.RGBA16F, PatternKind.MOVING).post(prod, 1)
            blk = r.message(FRAME_INDEX, 0)["offset"]
            flags = r.frame_u32(blk, "flags")
            assert flags & lib.FRAME_FLAG_HDR_METADATA and flags & lib.FRAME_FLAG_HDR
            assert r.frame_u32(blk, "hdrMaxDisplayLuminance") == HDR_TEST_METADATA.max_luminance == 1000
            assert r.frame_u32(blk, "hdrMinDisplayLuminance") == 50               # 0.005 nits in 0.0001 units
            assert r.frame_u32(blk, "hdrMaxContentLightLevel") == 1000
            assert r.frame_u32(blk, "hdrMaxFrameAverageLightLevel") == 400
            assert r.u32(blk + off("struct kvmfr34_frame", "hdrWhitePoint")) & 0xFFFF == 15635   # D65 x / 0.00002
        else:
            from tests.support.shm import Region
            b7 = Region(path)
            b7.set_u32(b7.queue_field(lib.LGMP_Q_FRAME, "subs") + 4, 1)             # one B7 subscriber (ON)
            PatternSource(256, 128, FrameType.RGBA16F, PatternKind.MOVING).post(prod, 1)
            m = b7.newest_message(lib.LGMP_Q_FRAME)
            blk = b7.u32(m + ffi.offsetof("struct lgmp_header_message", "offset"))
            flags = b7.u32(blk + ffi.offsetof("struct kvmfr_frame", "flags"))
            assert flags == lib.FRAME_FLAG_HDR                                       # no KVMFR 34 bit on B7
            b7.close()
        r.close()
