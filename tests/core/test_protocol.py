"""Both protocols, B7 (LGMP 6 / KVMFR 20) and master (LGMP 12 / KVMFR 34), between a producer and clients
in separate processes: every test runs once for each (the ``protocol`` fixture).

The producer is the real guest agent (`python -m guest_agent --protocol ...`) or a Producer speaking that
protocol; the client is the Python API in the test process or in child processes that get killed. The
client never says which protocol to speak: it finds out from the memory.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import kvmfr_client
from kvmfr_client.core import errors
from kvmfr_client.core.native import lib
from kvmfr_client.core.cursor import CursorFlags, CursorType
from kvmfr_client.core.formats import FrameType, encode
from guest_agent.producer import HostDescription, Producer
from kvmfr_client.core.session import SessionState
from kvmfr_client.core.testpattern import Pattern, PatternKind, read_stored_code
from tests.support.process import stop_process

PY = sys.executable

PROTOCOLS = ("b7", "master")
# What the headless reader's JSON says for each (HostInfo.protocol).
WIRE = {"b7": {"lgmp": lib.LGMP_PROTOCOL_VERSION, "kvmfr": lib.KVMFR_VERSION},
        "master": {"lgmp": lib.LGMP12_PROTOCOL_VERSION, "kvmfr": lib.KVMFR34_VERSION}}
MAX_SUBS = {"b7": lib.LGMP_MAX_SUBS, "master": lib.LGMP12_MAX_SUBS}
# A queue's `subs` word holds the subscribers' ON bits in its high half and their BAD (kicked) bits in
# its low half: B7's u64 as ON << 32 | BAD, LGMP 12's u32 as ON << 16 | BAD (spec 2.3, 4.1).
SUBS_HALF = {"b7": 32, "master": 16}


def on_bits(subs: int, protocol: str) -> int:
    return subs >> SUBS_HALF[protocol]


def bad_bits(subs: int, protocol: str) -> int:
    return subs & ((1 << SUBS_HALF[protocol]) - 1)


@pytest.fixture(params=PROTOCOLS)
def protocol(request) -> str:
    """The protocol the producer speaks: ``kvmfr-agent --protocol`` / HostDescription.protocol."""
    return request.param


def start_agent(shm, protocol, *args, size="320x240", fps=60):
    return subprocess.Popen([PY, "-m", "guest_agent", "--shm", str(shm), "--size", size, "--fps", str(fps),
                             "--protocol", protocol, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def producer(shm, protocol, **kw) -> Producer:
    return Producer(shm, host=HostDescription(protocol=protocol), **kw)


def stop(proc):
    stop_process(proc)


def run_script(code: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def frames(session, n, timeout=10.0, **kw):
    """n frames, reading only the frame queue (the session finishes pointer messages nobody reads)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        f = session.next_frame(timeout=0.1, **kw)
        if f is not None:
            got.append(f)
    return got


def test_a_reader_of_frames_only_keeps_its_session(agent, shm_path, protocol):
    """An LGMP 12 host drops a client a second late on any queue from every queue; a B7 host from that one.
    A script that never calls next_cursor keeps its session all the same, and its first next_cursor gets
    what the pointer messages it did not read said, as one event."""
    agent(size="1280x720")
    with kvmfr_client.open(shm_path, wait=10) as s:
        got = frames(s, 1000, timeout=4.0)
        assert len(got) >= 60 and s.session_restarts == 0 and s.state is SessionState.CONNECTED, s.status_message
        assert not s.errors_by_kind(), s.errors_by_kind()
        ev = s.next_cursor(timeout=0.5)
        assert ev is not None and ev.shape is not None and ev.has_position
        st = s.queue_stats(lib.LGMP_Q_POINTER)
        assert bad_bits(st["subs"], protocol) == 0, "dropped from the pointer queue"


@contextlib.contextmanager
def agent_pool():
    """``start(shm, protocol, *args, **kw)``: an agent (start_agent) whose file exists; all stopped at the end."""
    procs = []

    def start(shm, protocol, *args, **kw):
        p = start_agent(shm, protocol, *args, **kw)
        procs.append(p)
        deadline = time.monotonic() + 10
        while not shm.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return p

    try:
        yield start
    finally:
        for p in procs:
            stop(p)


@pytest.fixture
def agent(shm_path, protocol):
    with agent_pool() as start:
        yield lambda *args, **kw: start(shm_path, protocol, *args, **kw)


def test_frames_arrive_in_order_and_are_acknowledged(agent, shm_path, protocol):
    agent()
    with kvmfr_client.open(shm_path, wait=10) as s:
        assert s.host.protocol == WIRE[protocol]
        got = frames(s, 60)
        assert len(got) == 60
        serials = [f.serial for f in got]
        assert serials == list(range(serials[0], serials[0] + 60)), "frames skipped or out of order"
        pattern = Pattern(320, 240, FrameType.BGRA)
        for f in got[::10]:
            kind, serial, _ = read_stored_code(f.pixels, f.type, f.width)
            assert serial == f.serial and pattern.verify(f.pixels, serial) == []
        st = s.queue_stats(lib.LGMP_Q_FRAME)
        assert st["slot"] != 0xFFFFFFFF and on_bits(st["subs"], protocol) & (1 << st["slot"])
        assert bad_bits(st["subs"], protocol) == 0, "we were marked BAD although we finished every frame"


@pytest.mark.parametrize("ftype", list(FrameType), ids=lambda t: t.name)
@pytest.mark.parametrize("source", ["testpattern", "damage"])
def test_every_frame_type_and_source(shm_path, protocol, ftype, source):
    """Agent in one process, the headless reader (the CLI) in another: N frames, no pattern error, and the
    JSON names the protocol the reader found in the memory."""
    agent = start_agent(shm_path, protocol, "--format", ftype.name, "--source", source)
    try:
        out = subprocess.run([PY, "-m", "kvmfr_client.cli.view", "--shm", str(shm_path), "--headless",
                              "--frames", "40", "--json", "--timeout", "20"], capture_output=True, text=True, timeout=40)
    finally:
        stop(agent)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["frames"] == 40 and data["pattern_errors"] == 0 and data["pattern_frames"] == 40
    assert data["format"] == ftype.name and (data["width"], data["height"]) == (320, 240)
    assert data["cursor_updates"] >= 30 and data["host"]["version"] == "kvmfr-agent 0.1"
    assert data["protocol"] == WIRE[protocol]


def test_damage_copies_only_the_rectangles(shm_path, protocol):
    with producer(shm_path, protocol, create_size=16 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        pattern = Pattern(320, 240, FrameType.BGRA, PatternKind.DAMAGE)
        out = np.zeros((240, pattern.pitch), np.uint8)
        time.sleep(0.05)
        results = []
        for serial in range(1, 8):
            prod.begin_frame(serial, FrameType.BGRA, 320, 240, damage=pattern.damage(serial))
            prod.write_damage(pattern.render_stored(serial, 0))
            prod.end_frame()
            f = s.next_frame(timeout=2, out=out, allow_damage=True)
            assert f is not None and f.serial == serial
            results.append(f)
            assert np.array_equal(out, pattern.render_stored(serial, 0)), f"frame {serial} differs"
        assert not results[0].damage_only and all(f.damage_only for f in results[2:])
        # Damage copies touched only the rectangles: three small rects instead of a whole frame.
        assert results[-1].damage and len(results[-1].damage) == 3


def test_changed_rects_do_not_outlive_a_failed_begin_frame(shm_path, protocol):
    """``changed`` applies to its own frame only: a begin_frame that fails (here an invalid description) drops
    it, so the next frame, sent whole, is written whole into its slot and not just the stale rectangle."""
    with producer(shm_path, protocol, create_size=16 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        a = np.full((240, 1280), 0x11, np.uint8)
        b = np.full((240, 1280), 0xEE, np.uint8)
        out = np.zeros_like(a)
        time.sleep(0.05)
        tiny = [(0, 0, 1, 1)]
        for serial, changed in ((1, None), (2, None), (3, tiny), (4, tiny)):   # both slots: A, then small damage
            assert prod.begin_frame(serial, FrameType.BGRA, 320, 240, changed=changed)
            prod.write_damage(a)
            prod.end_frame()
            assert s.next_frame(timeout=2, out=out) is not None
        with pytest.raises(errors.KvmfrError):
            prod.begin_frame(5, FrameType.BGRA, 320, 240, pitch=4, changed=tiny)   # pitch < a row: refused
        assert prod.begin_frame(5, FrameType.BGRA, 320, 240)
        prod.write_damage(b)
        prod.end_frame()
        f = s.next_frame(timeout=2, out=out)
        assert f is not None and f.serial == 5
        assert np.array_equal(out, b), "the slot kept the previous picture outside a stale changed rect"


def test_skip_to_newest(shm_path, protocol):
    with producer(shm_path, protocol, create_size=16 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        rows = encode(np.zeros((64, 64, 4), np.uint8), FrameType.BGRA)
        time.sleep(0.05)
        for serial in (1, 2):   # the frame queue holds 2: both wait for us
            prod.post_frame(serial, FrameType.BGRA, rows, 64, 64)
        f = s.next_frame(timeout=1, newest=True)
        assert f is not None and f.serial == 2
        assert s.next_frame(timeout=0.2) is None
        assert prod.queue_stats(lib.LGMP_Q_FRAME)["count"] == 0


def test_progressive_read_starts_before_the_producer_finishes(shm_path, protocol):
    """The producer posts first, then writes the pixels slowly; the copy overlaps the write."""
    img = np.random.default_rng(1).integers(0, 256, (720, 1280, 4), np.uint8)
    rows = encode(img, FrameType.BGRA)
    np.save(shm_path.with_suffix(".npy"), rows)
    script = f"""
        import time, numpy as np
        from guest_agent.producer import HostDescription, Producer
        from kvmfr_client.core.formats import FrameType
        rows = np.load({str(shm_path.with_suffix('.npy'))!r})
        p = Producer({str(shm_path)!r}, create_size=32 << 20, host=HostDescription(protocol={protocol!r}))
        while p.subscribers() == 0:
            time.sleep(0.01)
        p.begin_frame(1, FrameType.BGRA, 1280, 720)
        for r in range(0, 720, 80):          # 9 bands, 50 ms apart
            p.write_rows(rows[r:r + 80], r)
            if r == 0:
                print("first", time.clock_gettime_ns(time.CLOCK_MONOTONIC), flush=True)
            time.sleep(0.05)
        p.end_frame()
        print("end", time.clock_gettime_ns(time.CLOCK_MONOTONIC), flush=True)
        time.sleep(1)
    """
    proc = subprocess.Popen([PY, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True)
    try:
        while not shm_path.exists():
            time.sleep(0.01)
        with kvmfr_client.open(shm_path, wait=10) as s:
            f = s.next_frame(timeout=10)
        out = dict(line.split() for line in proc.communicate(timeout=10)[0].splitlines())
    finally:
        stop(proc)
        shm_path.with_suffix(".npy").unlink(missing_ok=True)
    assert f is not None and np.array_equal(f.pixels, rows)
    end_ns = int(out["end"])
    assert f.t_copy_start_ns < end_ns - 200_000_000, "the copy did not start before the producer finished"
    assert f.t_copy_end_ns >= int(out["first"]) + 350_000_000


def test_cursor_shapes_and_visibility(shm_path, protocol):
    from guest_agent.cursor_animation import SHAPES
    with producer(shm_path, protocol, create_size=16 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        time.sleep(0.05)
        assert s.next_cursor(timeout=0.2) is None
        expected = [make() for make in SHAPES]
        for i, shape in enumerate(expected):
            prod.post_cursor(100 + i, 50 - i, visible=True, shape=shape)
        prod.post_cursor(-5, -7, visible=False)
        events = [s.next_cursor(timeout=1) for _ in range(4)]
        for ev, (ctype, w, h, pitch, hx, hy, data) in zip(events, expected):
            assert ev.shape.type == ctype and ev.shape.width == w and ev.shape.pitch == pitch
            assert ev.shape.height == (h // 2 if ctype == CursorType.MONOCHROME else h)
            assert (ev.shape.hx, ev.shape.hy) == (hx, hy) and ev.shape.data == data and ev.visible
        mono_color, mono_xor = events[1].shape.layers()
        assert (mono_color[0, 0, 3], tuple(mono_color[0, 31]), tuple(mono_color[31, 0])) == (0, (0, 0, 0, 255), (255, 255, 255, 255))
        assert mono_xor[31, 31, 3] == 255   # the invert quadrant
        last = events[3]
        assert last.shape is None and not last.visible and (last.x, last.y) == (-5, -7)
        # KVMFR 34 cursors say that VISIBLE means something (VISIBLE_VALID), and carry the SDR white level
        # (the default, 203 nits, when the guest gives none); B7's have neither.
        master = protocol == "master"
        assert all(bool(ev.flags & CursorFlags.VISIBLE_VALID) == master for ev in events)
        assert all(ev.sdr_white_level == (lib.KVMFR_SDR_WHITE_LEVEL_DEFAULT if master else 0) for ev in events)


def test_new_subscriber_gets_current_frame_and_cursor(agent, shm_path):
    agent()
    with kvmfr_client.open(shm_path, wait=10) as first:
        assert frames(first, 5)
        with kvmfr_client.open(shm_path, wait=10) as second:
            cursor = second.next_cursor(timeout=2)
            assert cursor is not None and cursor.shape is not None, "no cursor re-post for the new subscriber"
            assert frames(second, 3)


def test_set_cursor_pos_round_trip(agent, shm_path):
    agent()
    with kvmfr_client.open(shm_path, wait=10) as s:
        assert s.host.can_set_cursor_pos
        s.set_cursor_pos(123, 77)   # waits for the host's acknowledgement (cMsgRSerial)
        deadline = time.monotonic() + 5
        hotspot = None
        shape = None
        while time.monotonic() < deadline:
            s.next_frame(timeout=0.05)
            while (ev := s.next_cursor(timeout=0.0)) is not None:
                shape = ev.shape or shape
                if shape is not None and ev.has_position:
                    hotspot = (ev.x + shape.hx, ev.y + shape.hy)
            if hotspot == (123, 77):
                break
        assert hotspot == (123, 77)


def test_host_killed_then_next_host(agent, shm_path, protocol):
    first = agent()
    with kvmfr_client.open(shm_path, wait=10) as s:
        assert frames(s, 5)
        first.send_signal(signal.SIGKILL)
        first.wait()
        t_kill = time.monotonic()
        while s.state is SessionState.CONNECTED and time.monotonic() - t_kill < 3:
            s.next_frame(timeout=0.05)
        lost_after = time.monotonic() - t_kill
        assert s.state is not SessionState.CONNECTED and lost_after <= 1.5, f"loss noticed after {lost_after:.2f} s"
        agent()
        got = frames(s, 5, timeout=15)
        assert len(got) == 5 and s.session_restarts == 1 and s.state is SessionState.CONNECTED
        assert s.host.protocol == WIRE[protocol]


def test_killed_client_is_dropped_and_producer_goes_on(agent, shm_path, protocol):
    agent()
    client = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import time, kvmfr_client
        s = kvmfr_client.open({str(shm_path)!r}, wait=10)
        while s.next_frame(timeout=1) is None:
            pass
        print("reading", flush=True)
        time.sleep(60)      # subscribed, never finishes another message
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "reading"
        with kvmfr_client.open(shm_path, wait=10) as s:
            assert frames(s, 3)
            client.send_signal(signal.SIGKILL)
            client.wait()
            # While the dead client holds frames the producer stalls; within ~1 s it is marked BAD.
            t0 = time.monotonic()
            got = frames(s, 30, timeout=5)
            assert len(got) == 30, "producer did not recover from a dead client"
            gap = max(b.t_seen_ns - a.t_seen_ns for a, b in zip(got, got[1:])) / 1e9
            assert gap < 1.6, f"frames stopped for {gap:.2f} s"
            st = s.queue_stats(lib.LGMP_Q_FRAME)
            assert bad_bits(st["subs"], protocol), "the dead client was not marked BAD"
            assert on_bits(st["subs"], protocol) & (1 << st["slot"]), "we lost our own subscription"
            assert time.monotonic() - t0 < 5
    finally:
        stop(client)


def test_every_subscriber_slot_and_one_more(shm_path, protocol):
    """B7 takes 32 subscribers, LGMP 12 eight; the next one is refused with a message that says so."""
    limit = MAX_SUBS[protocol]
    with producer(shm_path, protocol, create_size=16 << 20) as prod:
        sessions = [kvmfr_client.open(shm_path, wait=5) for _ in range(limit)]
        try:
            assert prod.subscribers() == limit
            extra = kvmfr_client.open(shm_path)
            with pytest.raises(errors.QueueError, match=f"all {limit} subscriber slots of queue 2 are taken"):
                extra.wait_connected(1.0)
            extra.close()
            assert prod.subscribers() == limit, "the refused client left a subscription behind"
            rows = encode(np.full((32, 32, 4), 7, np.uint8), FrameType.BGRA)
            prod.post_frame(1, FrameType.BGRA, rows, 32, 32)
            for s in sessions:
                f = s.next_frame(timeout=2)
                assert f is not None and f.serial == 1
            assert prod.queue_stats(lib.LGMP_Q_FRAME)["count"] == 0
        finally:
            for s in sessions:
                s.close()
        assert prod.subscribers() == 0


def test_queue_full_backpressure(shm_path, protocol):
    with producer(shm_path, protocol, create_size=16 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        rows = encode(np.zeros((16, 16, 4), np.uint8), FrameType.BGRA)
        time.sleep(0.05)
        prod.post_frame(1, FrameType.BGRA, rows, 16, 16)
        prod.post_frame(2, FrameType.BGRA, rows, 16, 16)
        t0 = time.monotonic()
        with pytest.raises(errors.KvmfrTimeout):
            prod.begin_frame(3, FrameType.BGRA, 16, 16, timeout=0.3)   # two pending: must wait
        assert 0.25 < time.monotonic() - t0 < 1.0
        assert s.next_frame(timeout=1).serial == 1
        prod.post_frame(3, FrameType.BGRA, rows, 16, 16)                  # room again
        assert [s.next_frame(timeout=1).serial for _ in range(2)] == [2, 3]


def test_unsubscribe_leaves_no_trace(shm_path, protocol):
    with producer(shm_path, protocol, create_size=16 << 20) as prod:
        s = kvmfr_client.open(shm_path, wait=5)
        assert prod.subscribers(lib.LGMP_Q_FRAME) == 1 and prod.subscribers(lib.LGMP_Q_POINTER) == 1
        s.close()
        assert prod.subscribers(lib.LGMP_Q_FRAME) == 0 and prod.subscribers(lib.LGMP_Q_POINTER) == 0
        assert prod.queue_stats(lib.LGMP_Q_FRAME)["subs"] == 0


def test_truncated_frame_when_memory_is_too_small(shm_path, protocol):
    with producer(shm_path, protocol, create_size=8 << 20) as prod, kvmfr_client.open(shm_path, wait=5) as s:
        img = np.zeros((1080, 1920, 4), np.uint8)
        rows = encode(img, FrameType.BGRA)
        time.sleep(0.05)
        prod.post_frame(1, FrameType.BGRA, rows, 1920, 1080)
        f = s.next_frame(timeout=2)
        assert f is not None and f.truncated and f.data_height < 1080
        assert f.data_height * f.pitch <= prod.max_frame_size
