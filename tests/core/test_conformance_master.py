"""Decode real Looking Glass master host memory dumps (shared/fixtures/lg-master: LGMP 12 / KVMFR 34) and
check every answer, as test_conformance_b7.py does for B7.

The dumps were written by a Looking Glass master host (XCB capture) while a master client read them;
their JSON files hold the values a correct parser must find. The same reader decodes both protocols:
it tells them apart by the memory alone.
"""

from __future__ import annotations

from pathlib import Path

from kvmfr_client.core.cursor import CursorFlags
from kvmfr_client.core.native import lib
from kvmfr_client.core.snapshot import read_snapshot
from tests.core import lg_dumps
from tests.core.lg_dumps import check_cursor, check_frame_header, check_pixels, fixtures, snapshot_fixtures

FIXTURES, DUMPS = fixtures("lg-master", "Looking Glass master")


def load(name, tmp_path):
    return lg_dumps.load(FIXTURES, name, tmp_path)


pattern_rgb, dump = snapshot_fixtures(FIXTURES, DUMPS)


def test_fixtures_present():
    assert len(DUMPS) == 5, DUMPS


def test_header_and_kvmfr_records(dump):
    snap, exp = dump
    hdr, kv = exp["lgmp_header"], exp["kvmfr"]
    assert hdr["offset0_old_layout_magic_check"] is False   # no B7 magic at 0: found by the LGMP 12 layout
    assert snap.host.session_id == hdr["sessionID"] == 95766817
    assert snap.host.lgmp_version == hdr["version"] == 12
    assert snap.host.kvmfr_version == kv["version"] == 34
    assert snap.host.protocol == {"lgmp": 12, "kvmfr": 34} and snap.host.protocol_name == "master"
    assert snap.host.hostver == kv["hostver"] == "B7-master-8cb6a687"
    assert snap.host.features == kv["features"] and not snap.host.can_set_window_size
    vminfo = next(r for r in kv["records"] if r["name"] == "VMINFO")
    osinfo = next(r for r in kv["records"] if r["name"] == "OSINFO")
    assert snap.host.capture == vminfo["capture"] == "XCB"
    assert (snap.host.cpus, snap.host.cores, snap.host.sockets) == (vminfo["cpus"], vminfo["cores"], vminfo["sockets"])
    assert snap.host.model == vminfo["model"]
    assert snap.host.uuid.hex() == vminfo["uuid_hex"]
    assert snap.host.os == osinfo["os"]
    assert snap.host.os_name == osinfo["osName"]


def test_queue_table(dump):
    snap, exp = dump
    assert len(exp["queues"]) == 2
    for q in exp["queues"]:
        ours = snap.queues[q["queueID"]]
        assert ours["num_messages"] == q["numMessages"] == {1: 32, 2: 2}[q["queueID"]]
        assert ours["position"] == q["position"]
        assert ours["start"] == q["start"]
        assert ours["count"] == q["count"]
        assert ours["subs"] == int(q["subs_raw"], 16)     # u32: ON = bits 31..16, BAD = 15..0
        assert ours["new_sub_count"] == q["newSubCount"]


def test_newest_frame(dump, pattern_rgb):
    snap, exp = dump
    frame, latest = snap.newest_frame, exp["frame_queue_latest"]
    if latest is None:
        assert frame is None and snap.newest_frame_incomplete is None
        return
    block = next(b for b in exp["frames"] if b["block_offset"] == latest["offset"])
    check_frame_header(frame, latest, block)
    assert (frame.width, frame.height) == (640, 480)
    assert frame.sdr_white_level == block["sdrWhiteLevel"] == 203
    assert frame.hdr_metadata is None     # no HDR_METADATA flag; the fields are all 0
    assert (block["scheduleGeneration"], block["scheduleEpoch"], block["scheduleDeadlineSerial"]) == (0, 0, 0)
    timings = frame.host_timings
    if not block["timing_trusted"]:
        assert timings is None
    else:
        assert timings is not None
        assert [getattr(timings, s + "_ns") for s in timings.STAGES] == [
            block[n + "_ns"] for n in ("captureTime", "postProcessTime", "copyTime", "readyTime", "holdTime",
                                       "readyLeadTime")]
        assert timings.phase_valid == bool(block["timingFlags"] & 1)
    if not block["framebuffer"]["complete"]:
        # Posted, but the host had not written it: no pixels, and said so.
        assert block["framebuffer"]["wp"] == 0
        assert frame.pixels.shape[0] == 0
        assert "stopped writing the frame at byte 0" in snap.newest_frame_incomplete
        return
    assert snap.newest_frame_incomplete is None
    check_pixels(frame, block, pattern_rgb)


def test_newest_cursor(dump):
    snap, exp = dump
    cur, latest = snap.newest_cursor, exp["cursor_latest"]
    if latest is None:
        assert cur is None
        return
    check_cursor(cur, latest)
    assert int(cur.flags) == 23 and cur.flags & CursorFlags.VISIBLE_VALID and cur.visible
    assert cur.sdr_white_level == latest["sdrWhiteLevel"] == 203


def test_in_progress_frame_is_untrusted(tmp_path):
    """01: message 11927 is posted, but its write pointer is 0 and timingValid 0."""
    path, exp = load("01_live_a", tmp_path)
    snap = read_snapshot(str(path))
    assert snap.newest_frame.serial == 11927
    assert snap.newest_frame.host_timings is None
    assert snap.newest_frame.pixels.size == 0 and snap.newest_frame_incomplete


def test_newest_message_not_newest_block(tmp_path):
    """02: block 1 holds serial 13721, newer than the newest message (slot 0 -> block 0, 13716): a reader
    goes by the message."""
    path, exp = load("02_live_b", tmp_path)
    assert max(b["frameSerial"] for b in exp["frames"]) == 13721
    assert read_snapshot(str(path)).newest_frame.serial == exp["frame_queue_latest"]["frameSerial"] == 13716


def test_full_ring_is_legal(tmp_path):
    """03: count == numMessages with position == start (no sentinel slot in LGMP 12)."""
    path, exp = load("03_live_c", tmp_path)
    snap = read_snapshot(str(path))
    fq = snap.queues[lib.LGMP_Q_FRAME]
    assert fq["count"] == fq["num_messages"] == 2 and fq["position"] == fq["start"] == 0
    assert snap.newest_frame.serial == 15533 and snap.newest_frame.host_timings is not None


def test_client_gone(tmp_path):
    """04: the master client was stopped: no subscribers, client ids cleared; we take slot 0."""
    path, exp = load("04_client_stopped", tmp_path)
    snap = read_snapshot(str(path))
    assert snap.queues[lib.LGMP_Q_FRAME]["subs"] == 0
    assert exp["queues"][0]["clientID_nonzero"] == {}
    assert snap.newest_frame.serial == 16167


def test_client_id_from_the_hosts_counter(tmp_path):
    """LGMP 12 client ids come from nextClientID (fetch-add, +1): after the master client's 1, ours is 2."""
    import mmap
    path, exp = load("04_client_stopped", tmp_path)
    assert exp["lgmp_header"]["nextClientID"] == 1
    read_snapshot(str(path))
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
        assert int.from_bytes(mm[8:12], "little") == 2
        q0 = exp["queues"][0]["descriptor_offset"]
        from kvmfr_client.core.native import ffi
        cid = q0 + ffi.offsetof("struct lgmp12_header_queue", "clientID")
        assert int.from_bytes(mm[cid:cid + 4], "little") == 2     # slot 0 now ours


class MasterHeartbeat:
    """A master host's heartbeat over a dump: `timestamp` (u64 at 0) moved by 250 ms every 250 ms, as an
    LGMP 12 host publishes it; with ``raw``, the dump is first written over whatever the file held."""

    def __init__(self, path: Path, exp: dict, raw: bytes | None = None):
        import threading
        self.path, self.ts, self.raw = path, exp["lgmp_header"]["timestamp"], raw
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import mmap
        with open(self.path, "r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
            if self.raw is not None:
                mm[:] = self.raw
            while not self.stop.wait(0.25):
                self.ts += 250
                mm[0:8] = self.ts.to_bytes(8, "little")

    def close(self):
        self.stop.set()
        self.thread.join()


def test_session_connects_and_keeps_a_250ms_heartbeat(tmp_path):
    """A live Session on master memory (dump 04, the heartbeat moved as a master host does: every 250 ms)
    says which protocol it speaks and does not take the slow heartbeat for a lost host."""
    import kvmfr_client
    from kvmfr_client.core.session import SessionState

    path, exp = load("04_client_stopped", tmp_path)
    beat = MasterHeartbeat(path, exp)
    try:
        s = kvmfr_client.open(str(path), wait=3)
        try:
            assert s.host.protocol == {"lgmp": 12, "kvmfr": 34}
            assert s.status_message.endswith("(Looking Glass master: LGMP 12 / KVMFR 34)"), s.status_message
            assert s.next_frame(timeout=1.5) is None          # nothing new is posted: no frame, no loss
            assert s.state is SessionState.CONNECTED and s.session_restarts == 0
        finally:
            s.close()
    finally:
        beat.close()


def test_inspect_decodes_a_master_dump(tmp_path):
    """`kvmfr-view --inspect FILE --json` on dump 01: the protocol, and the newest frame marked incomplete."""
    import json
    import subprocess
    import sys

    path, exp = load("01_live_a", tmp_path)
    out = subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--inspect", str(path), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["protocol"] == {"lgmp": 12, "kvmfr": 34} and data["protocol_name"] == "master"
    frame = data["newest_frame"]
    assert frame["serial"] == 11927 and frame["sdr_white_level"] == 203 and frame["host_timings_ms"] is None
    assert "stopped writing the frame at byte 0" in frame["incomplete"]
    assert data["newest_cursor"]["sdr_white_level"] == 203 and data["newest_cursor"]["visible"] is True


def test_host_that_changes_protocol_is_a_restart(tmp_path):
    """A B7 host (our agent) stops; a master host takes the same memory: the session is lost, then
    connects to the master host by itself, as after any restart."""
    import kvmfr_client
    from guest_agent.producer import Producer
    from kvmfr_client.core.session import SessionState

    _, exp = load("04_client_stopped", tmp_path)
    raw = (tmp_path / "region").read_bytes()
    path = tmp_path / "shm"
    beat = None
    prod = Producer(str(path), create_size=len(raw))
    s = kvmfr_client.open(str(path), wait=5)
    try:
        assert s.host.protocol == {"lgmp": 6, "kvmfr": 20}
        prod.close()
        beat = MasterHeartbeat(path, exp, raw)
        s.next_frame(timeout=2.0)
        host = s.wait_connected(5)
        assert host.protocol == {"lgmp": 12, "kvmfr": 34} and s.state is SessionState.CONNECTED
        assert s.session_restarts == 1 and host.session_id == 95766817
    finally:
        if beat is not None:
            beat.close()
        s.close()
        prod.close()
