"""Issue 12 item 5 at CI size: 10 agent kills, 10 reader kills, a few SPICE server and sound server
restarts, each judged by the same criteria as the 100-restart runs."""

from __future__ import annotations

import pytest

from tests.soak.running import run_soak
from tools.soak import restarts

pytestmark = pytest.mark.slow   # each runs a real soak for up to ~90 s


def test_ten_agent_kills_every_reader_shows_the_next_frame_within_1_5_s():
    report = run_soak(restarts.run_agent_restart, 10, seed=5)
    assert report.extra["kills"] == 10
    assert report.extra["kills_mid_write"] >= 1, "no kill landed while the agent wrote a frame"
    assert not report.failures(), "\n" + report.table()


def test_ten_reader_kills_the_agent_never_stalls_over_1_s_and_others_keep_reading():
    report = run_soak(restarts.run_viewer_restart, 10, seed=5)
    assert report.extra["kills"] == 10
    assert not report.failures(), "\n" + report.table()


def test_three_spice_server_restarts_leave_no_key_or_button_down_in_the_guest():
    report = run_soak(restarts.run_spice_restart, 3, seed=5)
    assert report.extra["restarts"] == 3
    assert not report.failures(), "\n" + report.table()


def test_three_sound_server_restarts_audio_resumes_each_time():
    report = run_soak(restarts.run_sound_restart, 3, seed=5)
    assert report.extra["restarts"] == 3
    assert not report.failures(), "\n" + report.table()
