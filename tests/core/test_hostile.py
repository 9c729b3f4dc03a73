"""Hostile guest memory: each bad value gives its specific error, never a crash, and the client goes on.

Each case runs in a child process (tests/core/hostile_cases.py), so a crash or hang fails the test
instead of killing the test runner.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# case -> (error class, field), per the specification's checks
CASES = {
    "magic": ("HostNotRunning", ""),
    "lgmp_version": ("IncompatibleHost", "lgmp.version"),
    "lgmp_v10": ("IncompatibleHost", "lgmp.version"),
    "numQueues": ("ProtocolError", "lgmp.numQueues"),
    "udataSize": ("ProtocolError", "lgmp.udataSize"),
    "kvmfr_magic": ("IncompatibleHost", "kvmfr.magic"),
    "kvmfr_version": ("IncompatibleHost", "kvmfr.version"),
    "ring_slots": ("ProtocolError", "queue[2].numMessages"),
    "ring_offset": ("ProtocolError", "queue[2].messagesOffset"),
    "queue_lock_held": ("KvmfrTimeout", "queue lock"),
    "frame_type": ("FrameError", "frame.type"),
    "frame_width": ("FrameError", "frame.frameWidth"),
    "frame_pitch": ("FrameError", "frame.pitch"),
    "frame_rows": ("FrameError", "frame.dataHeight"),
    "frame_buffer_offset": ("FrameError", "frame.offset"),
    "damage_count": ("FrameError", "frame.damageRectsCount"),
    "damage_rect": ("FrameError", "frame.damageRects[0]"),
    "message_offset": ("FrameError", "message.offset"),
    "message_size": ("FrameError", "message.size"),
    "wp_stall": ("WritePointerStall", "framebuffer.wp"),
    "cursor_width": ("CursorError", "cursor.width"),
    "cursor_pitch": ("CursorError", "cursor.pitch"),
    "cursor_type": ("CursorError", "cursor.type"),
    "cursor_height": ("CursorError", "cursor.height"),
    "cursor_message_offset": ("CursorError", "message.offset"),
    "kicked": ("QueueError", "queue.subs"),
    "position": ("ProtocolError", "queue.position"),
}


def run_case(case: str, shm_path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.core.hostile_cases", case, str(shm_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"client process died (status {proc.returncode}):\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_gives_specific_error_and_client_goes_on(case, shm_path):
    result = run_case(case, shm_path)
    error, field = CASES[case]
    assert result["error"] == error, result
    assert result["field"] == field, result
    assert result["recovered"], result
    if case == "lgmp_v10":
        assert "host speaks LGMP 10 / KVMFR 30; this client speaks B7 (LGMP 6 / KVMFR 20) and master (LGMP 12 / KVMFR 34)" in result["message"]
    if case.startswith("frame") or case.startswith("damage") or case.startswith("message"):
        assert result["state"] == "CONNECTED" and not result["got_frame"]
    if case == "wp_stall":
        assert result["gave_up_after_s"] < 0.5


def test_values_changing_while_we_read(shm_path):
    """Random values thrown at the header, rings and frame structs while frames flow for 3 s."""
    result = run_case("fuzz", shm_path)
    assert result["completed"] and result["frames"] > 0
    assert sum(result["errors"].values()) > 0, "the fuzzer never hit anything the client checks"
