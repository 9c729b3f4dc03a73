"""Decode real Looking Glass B7 host memory dumps (shared/fixtures/lg-b7) and check every answer.

The dumps were written by the real B7 host (XCB capture) while a real B7 client read them; their JSON
files hold the values a correct parser must find.
"""

from __future__ import annotations

import gzip
import json
import time

from kvmfr_client.core.formats import FrameType
from tests.core.lg_dumps import check_cursor, check_frame_header, check_pixels, fixtures, snapshot_fixtures

FIXTURES, DUMPS = fixtures("lg-b7", "Looking Glass B7")


pattern_rgb, dump = snapshot_fixtures(FIXTURES, DUMPS)


def test_fixtures_present():
    assert len(DUMPS) == 5, DUMPS


def test_header_and_kvmfr_records(dump):
    snap, exp = dump
    hdr, kv = exp["lgmp_header"], exp["kvmfr"]
    assert snap.host.session_id == hdr["sessionID"] == 1881673511
    assert snap.host.lgmp_version == hdr["version"] == 6
    assert snap.host.kvmfr_version == kv["version"] == 20
    assert snap.host.hostver == kv["hostver"]
    assert snap.host.features == kv["features"]
    vminfo = next(r for r in kv["records"] if r["name"] == "VMINFO")
    osinfo = next(r for r in kv["records"] if r["name"] == "OSINFO")
    assert snap.host.capture == vminfo["capture"]
    assert (snap.host.cpus, snap.host.cores, snap.host.sockets) == (vminfo["cpus"], vminfo["cores"], vminfo["sockets"])
    assert snap.host.model == vminfo["model"]
    assert snap.host.uuid.hex() == vminfo["uuid_hex"]
    assert snap.host.os == osinfo["os"]
    assert snap.host.os_name == osinfo["osName"]


def test_queue_table(dump):
    snap, exp = dump
    for q in exp["queues"]:
        ours = snap.queues[q["queueID"]]
        assert ours["num_messages"] == q["numMessages"]
        assert ours["position"] == q["position"]
        assert ours["start"] == q["start"]
        assert ours["count"] == q["count"]
        assert ours["subs"] == int(q["subs"], 16)
        assert ours["new_sub_count"] == q["newSubCount"]


def _newest(dump, ours: str, theirs: str):
    """(our snapshot's ``ours``, the reference dump's ``theirs``, the whole reference); both None when the
    reference has none, after checking that we have none either."""
    snap, exp = dump
    mine, latest = getattr(snap, ours), exp[theirs]
    if latest is None:
        assert mine is None
        return None, None, exp
    assert mine is not None
    return mine, latest, exp


def test_newest_frame(dump, pattern_rgb):
    frame, latest, exp = _newest(dump, "newest_frame", "frame_queue_latest")
    if latest is None:
        return
    block = next(b for b in exp["frames"] if b["block_offset"] == latest["offset"])
    check_frame_header(frame, latest, block)
    check_pixels(frame, block, pattern_rgb)


def test_newest_cursor(dump):
    cur, latest, _ = _newest(dump, "newest_cursor", "cursor_latest")
    if latest is None:
        return
    check_cursor(cur, latest)


def test_our_producer_lays_out_memory_like_the_b7_host(tmp_path):
    """Same host description and size as the real B7 host of the dumps -> the same bytes and offsets.

    This is what a real Looking Glass B7 client relies on when it reads our guest agent.
    """
    import numpy as np

    from kvmfr_client.core.native import lib
    from kvmfr_client.core.formats import encode
    from guest_agent.producer import HostDescription, Producer
    from tests.support.shm import FRAME, HEADER, MESSAGE, QUEUE, Region, off, queue_base

    exp = json.loads((FIXTURES / "01_live_a.json").read_text())
    raw = gzip.decompress((FIXTURES / "01_live_a.bin.gz").read_bytes())
    vm = next(r for r in exp["kvmfr"]["records"] if r["name"] == "VMINFO")
    osr = next(r for r in exp["kvmfr"]["records"] if r["name"] == "OSINFO")
    host = HostDescription(hostver="B7", capture=vm["capture"], os=osr["os"], os_name=osr["osName"], features=0,
                           cpus=vm["cpus"], cores=vm["cores"], sockets=vm["sockets"], model=vm["model"])
    path = tmp_path / "ours"
    with Producer(str(path), create_size=exp["shm_size"], host=host) as prod:
        r = Region(str(path))
        udata_size = r.u32(off(HEADER, "udataSize"))
        assert udata_size == exp["lgmp_header"]["udataSize"] == 197
        ours = bytearray(r.mm[lib.LGMP_UDATA_OFFSET: lib.LGMP_UDATA_OFFSET + udata_size])
        theirs = bytearray(raw[lib.LGMP_UDATA_OFFSET: lib.LGMP_UDATA_OFFSET + udata_size])
        for rec in exp["kvmfr"]["records"]:   # record-header padding is leftover garbage in B7
            pad = rec["record_offset_in_udata"] + 1
            ours[pad:pad + 3] = theirs[pad:pad + 3] = b"\0\0\0"
        assert ours == theirs
        assert r.u32(off(HEADER, "numQueues")) == 2 and r.u32(off(HEADER, "version")) == 6
        for q in exp["queues"]:
            base = queue_base(q["index"])
            for field in ("queueID", "numMessages", "maxTime", "messagesOffset", "cMsgAvail"):
                assert r.u32(base + off(QUEUE, field)) == q[field], (q["index"], field)

        # A subscriber appears, then one 640x480 BGRA frame and one cursor shape, as in the dump.
        from kvmfr_client import open as open_session
        with open_session(str(path), wait=5):
            time.sleep(0.05)
            rows = encode(np.zeros((480, 640, 4), np.uint8), FrameType.BGRA)
            prod.post_frame(1, FrameType.BGRA, rows, 640, 480)
            from guest_agent.cursor_animation import color_arrow
            prod.post_cursor(293, 193, shape=color_arrow())
            fmsg = r.newest_message(2)
            latest = exp["frame_queue_latest"]
            frame_blocks = [b["block_offset"] for b in exp["frames"]]
            assert r.u32(fmsg + off(MESSAGE, "size")) == latest["size"] == 15200256
            assert r.u32(fmsg + off(MESSAGE, "offset")) in frame_blocks
            payload = r.u32(fmsg + off(MESSAGE, "offset"))
            assert r.u32(payload + off(FRAME, "offset")) == 4092
            cmsg = r.newest_message(1)
            cur = exp["cursor_latest"]
            assert r.u32(cmsg + off(MESSAGE, "size")) == cur["msg_size"]
            assert r.u32(cmsg + off(MESSAGE, "offset")) == cur["offset"] == 6824
            assert r.u32(cmsg + off(MESSAGE, "udata")) == cur["flags"]
        r.close()
