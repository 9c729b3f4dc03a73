"""Our producer in master mode (LGMP 12 / KVMFR 34) lays memory out as the real Looking Glass master host.

The reference is shared/fixtures/lg-master: dumps of a master host (8cb6a687) with a 640x480 BGRA XCB
capture on 32 MiB. Given the same host description, our region must hold the same bytes where the
host's are deterministic (everything but the heartbeat, the random session id and the leftover bytes in
the KVMFR record headers), and after a frame and a cursor the same message slots, blocks and fields.
A real master client reading our agent relies on exactly this.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from guest_agent.producer import HostDescription, Producer, stage_timings
from kvmfr_client.core.cursor import CursorType
from kvmfr_client.core.formats import FrameType
from kvmfr_client.core.native import ffi, lib
from tests.guest_agent.master_region import (CURSOR, FRAME, FRAME_INDEX, HEADER, POINTER_INDEX, MasterRegion,
                                             off)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "lg-master"
if not FIXTURES.is_dir():
    pytest.fail(f"Looking Glass master fixtures not found at {FIXTURES} (shared/ must sit beside the checkout)",
                pytrace=False)


def _load(name: str):
    return (json.loads((FIXTURES / f"{name}.json").read_text()),
            gzip.decompress((FIXTURES / f"{name}.bin.gz").read_bytes()))


def _host(exp) -> HostDescription:
    vm = next(r for r in exp["kvmfr"]["records"] if r["name"] == "VMINFO")
    osr = next(r for r in exp["kvmfr"]["records"] if r["name"] == "OSINFO")
    return HostDescription(hostver=exp["kvmfr"]["hostver"], capture=vm["capture"], os=osr["os"],
                           os_name=osr["osName"], features=exp["kvmfr"]["features"], cpus=vm["cpus"],
                           cores=vm["cores"], sockets=vm["sockets"], model=vm["model"], protocol="master")


def _mask_nondeterministic(buf: bytearray, exp) -> None:
    """Heartbeat, session id, and the record headers' leftover padding: the host's own, not layout."""
    buf[0:8] = bytes(8)
    at = off(HEADER, "sessionID")
    buf[at:at + 4] = bytes(4)
    for rec in exp["kvmfr"]["records"]:
        pad = lib.LGMP12_UDATA_OFFSET + rec["record_offset_in_udata"] + 1
        buf[pad:pad + 3] = bytes(3)


def _first_difference(a: bytes, b: bytes) -> int | None:
    x = np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8)
    return int(np.argmax(x)) if x.any() else None


def test_fresh_master_session_is_byte_for_byte_the_master_hosts(tmp_path):
    exp, raw = _load("00_host_only")
    path = tmp_path / "shm"
    with Producer(str(path), create_size=exp["shm_size"], host=_host(exp), tick_ms=0):
        r = MasterRegion(str(path))
        assert r.u32(lib.LGMP12_MAGIC_OFFSET) == lib.LGMP_PROTOCOL_MAGIC
        assert r.u32(off(HEADER, "version")) == 12 and r.u32(off(HEADER, "sessionID")) != 0
        assert r.u32(off(HEADER, "udataSize")) == exp["lgmp_header"]["udataSize"] == 197
        for q in exp["queues"]:
            for field in ("queueID", "numMessages", "messagesOffset", "maxTime", "cMsgAvail", "position", "start",
                          "count"):
                assert r.qu32(q["index"], field) == q[field], (q["index"], field)
        ours, theirs = bytearray(r.mm[:]), bytearray(raw)
        _mask_nondeterministic(ours, exp)
        _mask_nondeterministic(theirs, exp)
        assert len(ours) == len(theirs)
        where = _first_difference(bytes(ours), bytes(theirs))
        assert where is None, f"first difference at offset {where}"
        r.close()


def _pattern_bgrx() -> np.ndarray:
    from PIL import Image
    rgb = np.asarray(Image.open(FIXTURES / "pattern_640x480.png").convert("RGB"))
    bgrx = np.zeros((480, 640, 4), np.uint8)
    bgrx[..., 0], bgrx[..., 1], bgrx[..., 2] = rgb[..., 2], rgb[..., 1], rgb[..., 0]
    return bgrx.reshape(480, 640 * 4)


def _their_shape(exp, raw) -> tuple:
    cur = exp["cursor_latest_with_shape"]
    at = cur["offset"] + ffi.sizeof(CURSOR)
    shape = raw[at: at + cur["height"] * cur["pitch"]]
    return (CursorType.COLOR, cur["width"], cur["height"], cur["pitch"], cur["hx"], cur["hy"], shape)


def test_frames_and_cursor_land_where_the_master_host_puts_them(tmp_path):
    """Dump 03: a subscribed client, a full frame ring (two frames, one per block), a cursor shape."""
    exp, raw = _load("03_live_c")
    path = tmp_path / "shm"
    with Producer(str(path), create_size=exp["shm_size"], host=_host(exp), tick_ms=0) as prod:
        r = MasterRegion(str(path))
        r.subscribe(0, 1)
        prod.tick()
        rows = _pattern_bgrx()
        blocks = exp["derived_layout"]["frame_blocks"]
        for blk in (0, 1):
            f = next(f for f in exp["frames"] if f["block_index"] == blk)
            assert prod.begin_frame(f["frameSerial"], FrameType.BGRA, 640, 480, format_ver=f["formatVer"])
            prod.write_rows(rows)
            prod.end_frame(stage_timings(capture_ns=150, copy_ns=1_600_000))
        cur = exp["cursor_latest_with_shape"]
        prod.post_cursor(cur["x"], cur["y"], shape=_their_shape(exp, raw))

        # The frame queue: full ring without a spare slot, both messages pending for slot 0.
        fq = next(q for q in exp["queues"] if q["index"] == FRAME_INDEX)
        assert (r.qu32(FRAME_INDEX, "position"), r.qu32(FRAME_INDEX, "start"), r.qu32(FRAME_INDEX, "count")) == \
            (fq["position"], fq["start"], fq["count"]) == (0, 0, 2)
        for slot in fq["ring"]:
            m = r.message(FRAME_INDEX, slot["slot"])
            assert (m["udata"], m["size"], m["offset"]) == (slot["udata"], slot["size"], slot["offset"])
            assert m["pendingSubs"] == 1
        ring = fq["messagesOffset"]
        assert r.mm[ring: ring + 64] == raw[ring: ring + 64]   # the whole ring, byte for byte

        for f in exp["frames"]:
            blk = blocks[f["block_index"]]
            head = ffi.sizeof(FRAME)
            timing = (off(FRAME, "captureTime"), off(FRAME, "timingSerial"))
            # Every header byte but the host's own stage durations matches the master host's.
            assert r.mm[blk: blk + timing[0]] == raw[blk: blk + timing[0]]
            assert r.mm[blk + timing[1]: blk + head] == raw[blk + timing[1]: blk + head]
            assert r.frame_u32(blk, "offset") == 4092 and r.frame_u32(blk, "sdrWhiteLevel") == 203
            assert r.frame_u32(blk, "timingSerial") == f["frameSerial"] and r.frame_u32(blk, "timingValid") == 1
            assert r.frame_u64(blk, "copyTime") == 1_600_000
            data = blk + 4096
            assert r.u32(data - 4) == f["framebuffer"]["wp"] == 640 * 480 * 4
            assert r.mm[data: data + 640 * 480 * 4] == raw[data: data + 640 * 480 * 4]

        # The cursor: flags 23 (VISIBLE_VALID always), shape block 0, 28-byte struct with sdrWhiteLevel.
        m = r.message(POINTER_INDEX, 0)
        assert (m["udata"], m["size"], m["offset"]) == (cur["flags"], cur["msg_size"], cur["offset"]) == \
            (23, 1048604, 11968)
        assert r.mm[cur["offset"]: cur["offset"] + 28].hex() == cur["struct_hex"]
        n = cur["height"] * cur["pitch"]
        assert r.mm[cur["offset"] + 28: cur["offset"] + 28 + n] == raw[cur["offset"] + 28: cur["offset"] + 28 + n]
        r.close()
