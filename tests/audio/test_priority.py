"""The audio threads' scheduling: nice -11 by default, real-time round-robin below the sound server's
threads with audio:realtime=yes, and what they got is what the kernel says."""

import os
import threading

import pytest

from kvmfr_client.audio import priority


def _in_thread(fn):
    """Run fn in a fresh thread (so the test process keeps its own scheduling); return its result and
    the thread's scheduling as the kernel reports it."""
    out = {}

    def body():
        tid = threading.get_native_id()
        out["got"] = fn()
        out["policy"] = os.sched_getscheduler(tid)
        out["rt"] = os.sched_getparam(tid).sched_priority
        out["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        child = threading.Thread(target=lambda: out.update(child_policy=os.sched_getscheduler(threading.get_native_id())))
        child.start()
        child.join()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out


@pytest.fixture
def realtime_setting():
    yield
    priority.use_realtime(False)


def test_realtime_below_the_sound_server(realtime_setting):
    priority.use_realtime(True)
    out = _in_thread(priority.raise_thread_priority)
    if out["got"] == "realtime":
        assert out["policy"] == os.SCHED_RR
        assert 0 < out["rt"] == priority.AUDIO_RT_PRIORITY < 5  # PulseAudio's own threads run at 5
        assert out["child_policy"] == os.SCHED_RR  # threads it starts (Pulse's connection thread) inherit it
    else:
        assert os.geteuid() != 0, "root may always ask for real-time scheduling"
        assert out["policy"] == os.SCHED_OTHER


def test_nice_when_realtime_is_off(realtime_setting):
    priority.use_realtime(False)
    out = _in_thread(priority.raise_thread_priority)
    assert out["policy"] == os.SCHED_OTHER
    if out["got"] == "nice":
        assert out["nice"] == priority.AUDIO_NICE
    else:
        assert os.geteuid() != 0 and out["got"] == "default"


@pytest.mark.parametrize("realtime", ["yes", "no"])
def test_option_reaches_the_service_threads(pulse, shm_path, realtime, realtime_setting):
    from kvmfr_client import config
    from kvmfr_client.audio.service import AudioService

    cfg = config.load([f"audio:scream=ivshmem:{shm_path}", f"audio:server={pulse.server}",
                       f"audio:sink={pulse.sink48}", f"audio:realtime={realtime}"], user_file=False)
    service = AudioService(cfg)
    service.start()
    try:
        threads = {t.name: t.native_id for t in threading.enumerate()
                   if t.name in ("audio-player", "audio-scream-ivshmem")}
        assert len(threads) == 2
        policies = {os.sched_getscheduler(tid) for tid in threads.values()}
        if realtime == "yes" and os.geteuid() == 0:
            assert policies == {os.SCHED_RR}
        else:
            assert policies == {os.SCHED_OTHER}
        if realtime == "no" and os.geteuid() == 0:
            assert {os.getpriority(os.PRIO_PROCESS, tid) for tid in threads.values()} == {priority.AUDIO_NICE}
    finally:
        service.stop()


def test_default_is_nice():
    from kvmfr_client import config

    assert dict(config.load([], user_file=False))["audio:realtime"] is False
    out = _in_thread(priority.raise_thread_priority)
    assert out["got"] in ("nice", "default") and out["policy"] == os.SCHED_OTHER
