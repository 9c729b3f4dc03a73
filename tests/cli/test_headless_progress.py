"""`kvmfr-view --headless --progress`: one JSON line a second on stdout while reading (what a soak watches
live), then the final JSON as without it."""

from __future__ import annotations

import json
import signal

from kvmfr_client.config import exits
from tests.cli.programs import Running, clean_env, one_line, run
from tests.support.agent import start_agent
from tests.support.process import stop_process, wait_for

PROGRESS_KEYS = {"progress", "t_s", "frames", "last_serial", "state", "status", "session_restarts",
                 "data_errors", "pattern_errors", "truncated_frames", "cursor_updates", "new_frames", "new_first_ns",
                 "new_last_ns"}


def _lines(stdout: str) -> tuple[list[dict], dict]:
    """(the progress lines, the final JSON object)."""
    objects = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert objects, "nothing on stdout"
    *progress, final = objects
    assert all(p.get("progress") is True and set(p) == PROGRESS_KEYS for p in progress), progress
    assert "progress" not in final, final
    return progress, final


def test_progress_while_frames_flow(tmp_path, shm_path):
    agent = start_agent(shm_path, size=(320, 240), fps=30)
    try:
        out = run("kvmfr-view", "--headless", "--json", "--progress", "--shm", str(shm_path), "--frames", "100",
                  "--timeout", "30", env=clean_env(tmp_path))
    finally:
        stop_process(agent)
    assert out.returncode == exits.OK, out.stderr
    progress, final = _lines(out.stdout)
    # the final JSON is the one printed without --progress
    assert final["frames"] == 100 and final["pattern_errors"] == 0 and final["error"] is None, final
    assert len(progress) >= 2, progress
    times = [p["t_s"] for p in progress]
    assert all(0.8 <= b - a <= 1.6 for a, b in zip(times, times[1:])), times   # about one a second
    frames = [p["frames"] for p in progress]
    assert frames == sorted(frames) and frames[-1] > 0 and frames[-1] < 100, frames
    last = progress[-1]
    assert last["state"] == "connected" and "kvmfr-agent" in last["status"], last
    assert isinstance(last["last_serial"], int) and last["last_serial"] > 0, last
    assert last["data_errors"] == {} and last["pattern_errors"] == 0, last
    # each line says how many frames came since the one before, and when the first and last of them did
    assert sum(p["new_frames"] for p in progress) == frames[-1]
    for a, b in zip(progress, progress[1:]):
        assert b["new_frames"] == b["frames"] - a["frames"] > 0, (a, b)
        assert a["new_last_ns"] < b["new_first_ns"] <= b["new_last_ns"], (a, b)
        assert b["new_first_ns"] - a["new_last_ns"] < 0.5e9, (a, b)   # 30 frames a second: no long wait


def test_progress_while_waiting_for_the_file(tmp_path):
    missing = tmp_path / "no-such-shm"
    out = run("kvmfr-view", "--headless", "--progress", "--shm", str(missing), "--frames", "1", "--timeout", "2.5",
              env=clean_env(tmp_path))
    assert out.returncode == exits.FAILED
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2, out.stdout   # at about 1 and 2 s; then the table (no --json)
    for p in lines:
        assert p["frames"] == 0 and p["last_serial"] is None and p["state"] == "waiting", p
        assert p["new_frames"] == 0 and p["new_first_ns"] is None and p["new_last_ns"] is None, p
        assert str(missing) in p["status"] and "to exist" in p["status"], p
    assert "only 0 of 1 frames arrived" in one_line(out.stderr)


def test_progress_counts_errors_as_they_happen(tmp_path, shm_path):
    """The file removed under the reader: the next lines count it (ShmLost) while it waits, and frames go on
    once the agent has created it again."""
    agent = start_agent(shm_path, size=(320, 240), fps=30)
    reader = Running("kvmfr-view", "--headless", "--json", "--progress", "--shm", str(shm_path), "--frames",
                     "1000000", "--timeout", "60", env=clean_env(tmp_path))
    try:
        def progress() -> list[dict]:
            return [json.loads(line) for line in reader.out if line.startswith('{"progress"')]

        wait_for(lambda: any(p["frames"] > 0 for p in progress()), 30, "frames in the progress lines")
        shm_path.unlink()
        seen = len(progress())
        wait_for(lambda: any(p["data_errors"].get("ShmLost") == 1 and p["frames"] > 0 for p in progress()[seen:]),
                 15, "the lost file counted in a progress line")
        lost_at = next(p for p in progress()[seen:] if p["data_errors"].get("ShmLost") == 1)
        wait_for(lambda: progress()[-1]["frames"] > lost_at["frames"] + 10 and progress()[-1]["state"] == "connected",
                 30, "frames again after the agent created the file again")
        code = reader.stop(signal.SIGINT)
    finally:
        reader.kill()
        stop_process(agent)
    assert code == exits.signal_exit(signal.SIGINT), reader.stderr
    _, final = _lines(reader.stdout)
    assert final["data_errors"].get("ShmLost") == 1 and final["stopped_by"] == "SIGINT", final


def test_progress_needs_headless(tmp_path):
    out = run("kvmfr-view", "--progress", env=clean_env(tmp_path))
    assert out.returncode == exits.USAGE
    assert one_line(out.stderr) == "kvmfr-view: error: --progress is for the headless reader: add --headless"
