"""The sound server (a real PulseAudio) crashes and comes back twice while kvmfr-audio plays a guest's Scream
stream: the player survives, reconnects by itself and the guest's audio is heard again each time."""

from __future__ import annotations

import pytest

from tests.audio.sound_restart import run

RESTARTS = 2


@pytest.mark.slow
def test_audio_resumes_after_each_sound_server_restart(tmp_path, record_property):
    result = run(RESTARTS, tmp_path, timeout=10.0)
    print(f"\nsound server restarts: resumed after {result['resume_s']} s")
    record_property("resume_s_max", result["resume_s_max"])
    assert result["kvmfr_audio_survived"], "\n".join(result["log_tail"])
    assert result["resumed"] == RESTARTS, result
