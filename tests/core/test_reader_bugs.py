"""Reader bugs a hostile host could use: a refused subscribe leaks no slot, and a frame message at a
misaligned offset is refused before any atomic access to its write pointer."""

from __future__ import annotations

import threading
import time

import numpy as np

import kvmfr_client
from guest_agent.producer import Producer
from kvmfr_client.core.formats import FrameType, encode
from kvmfr_client.core.native import ffi, lib, new_error
from tests.support.shm import HEADER, MESSAGE, Q_FRAME, Region, off

ROWS = encode(np.full((48, 64, 4), 90, np.uint8), FrameType.BGRA)


def test_refused_subscribe_leaves_no_slot_behind(shm_path):
    """A queue whose write position is garbage refuses every subscribe; retrying 100 times must not
    take 100 subscriber slots (there are only 32), and must leave no client id behind."""
    with Producer(str(shm_path), create_size=16 << 20) as prod:
        region = Region(str(shm_path))
        try:
            # A host that means it: our producer would repair the position at its next tick (new
            # session), so only the heartbeat is kept moving.
            prod.stop_ticker()
            beat = threading.Event()
            ts_at = off(HEADER, "timestamp")

            def heartbeat():
                while not beat.wait(0.002):
                    region.mm[ts_at:ts_at + 8] = time.monotonic_ns().to_bytes(8, "little")
            threading.Thread(target=heartbeat, daemon=True).start()
            region.set_u32(region.queue_field(Q_FRAME, "position"), 999)
            refused = 0
            for _ in range(100):
                c = ffi.gc(lib.kv_client_new(), lib.kv_client_free)
                err = new_error()
                assert lib.kv_client_open(c, str(shm_path).encode(), err) == lib.LGMP_OK
                lib.kv_client_init(c)
                time.sleep(0.012)
                info = ffi.new("struct kv_host_info *")
                assert lib.kv_client_session_init(c, info, err) == lib.LGMP_OK, ffi.string(err.message)
                rc = lib.kv_client_subscribe(c, Q_FRAME, err)
                assert rc == lib.KV_ERR_BAD_FIELD and ffi.string(err.field) == b"queue.position"
                refused += 1
            subs = region.u64(region.queue_field(Q_FRAME, "subs"))
            ids = [region.u32(region.queue_field(Q_FRAME, "clientID") + 4 * i) for i in range(32)]
            assert refused == 100
            assert subs == 0, f"subscriber bits left behind: {subs:#x}"
            assert ids == [0] * 32
            beat.set()
            # And once the host is sane again a reader gets a slot and frames.
            prod.start()
            with kvmfr_client.open(str(shm_path), wait=5) as s:
                time.sleep(0.05)
                prod.post_frame(1, FrameType.BGRA, ROWS, 64, 48)
                assert s.next_frame(timeout=2) is not None
        finally:
            region.close()


def test_misaligned_frame_message_is_refused_and_reading_goes_on(shm_path):
    """A frame message 2 bytes off a 4-byte boundary would put the write pointer off its alignment:
    the frame is refused by name, nothing crashes, and the next good frame arrives."""
    with Producer(str(shm_path), create_size=16 << 20) as prod:
        region = Region(str(shm_path))
        try:
            with kvmfr_client.open(str(shm_path), wait=5) as s:
                time.sleep(0.05)
                prod.post_frame(1, FrameType.BGRA, ROWS, 64, 48)
                msg = region.newest_message(Q_FRAME)
                region.set_u32(msg + off(MESSAGE, "offset"), region.u32(msg + off(MESSAGE, "offset")) + 2)
                assert s.next_frame(timeout=0.5) is None
                assert s.last_error is not None and s.last_error.field == "message.offset"
                assert "misaligned" in s.last_error.message
                assert s.state is kvmfr_client.SessionState.CONNECTED
                prod.post_frame(2, FrameType.BGRA, ROWS, 64, 48)
                good = s.next_frame(timeout=2)
                assert good is not None and good.serial == 2 and np.array_equal(good.pixels, ROWS)
        finally:
            region.close()
