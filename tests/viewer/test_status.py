"""What the window says, as pure functions (fake frames typed as a real Frame): status screen, too-small banner, title (no window needed)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from kvmfr_client.core.formats import FrameFlags, FrameType
from kvmfr_client.core.session import HostInfo, HostTimings, SessionState, recommended_shm_size
from kvmfr_client.viewer.status import FrameMeta, banner_lines, status_lines, window_title, wrap

HOST = HostInfo(session_id=7, hostver="B7", features=0, capture="DXGI", os=2, os_name="Windows", cpus=4,
                cores=4, sockets=1, model="test cpu", uuid=bytes(16))
MIB = 1024 * 1024


def _frame(**kw):
    fields = dict(serial=5, width=3840, height=2160, type=FrameType.BGRA, flags=FrameFlags(0), screen_width=3840,
                  screen_height=2160, data_height=2160, t_seen_ns=1, t_copy_start_ns=2, t_copy_end_ns=3,
                  host_timings=None)
    fields.update(kw)
    return SimpleNamespace(**fields)


def test_status_names_the_path_while_waiting_and_is_empty_while_frames_show():
    waiting = status_lines(SessionState.WAITING, None, "/dev/shm/looking-glass", "", has_frame=False,
                           file_size=None)
    assert waiting[0] == "The shared-memory file does not exist"
    assert "Shared memory: /dev/shm/looking-glass" in waiting
    assert status_lines(SessionState.CONNECTED, HOST, "x", "", has_frame=True) == []
    first = status_lines(SessionState.CONNECTED, HOST, "x", "", has_frame=False)
    assert first[0].startswith("Connected") and first[1] == HOST.describe()


def test_waiting_screens_tell_missing_empty_too_small_and_no_host_apart():
    path = "~/my shm/looking-glass"          # shown as typed, not expanded or upper-cased

    def say(file_size, message="waiting for the host"):
        return status_lines(SessionState.WAITING, None, path, message, has_frame=False, file_size=file_size)

    assert say(None)[:2] == ["The shared-memory file does not exist", f"Shared memory: {path}"]
    empty = say(0, "waiting for x to be sized: it is 0 bytes")
    assert empty[0] == "The shared-memory file is empty" and "Set its size to 32 MiB" in empty[2]
    small = say(4096, "waiting for x to be sized: it is 4096 bytes")
    assert small[0] == "The shared-memory file is too small"
    assert small[2].startswith("It is 4096 bytes; set it to 32 MiB")
    assert say(64 * MIB)[0] == "Waiting for the host"
    assert say(-1)[0] == "Waiting for the host"          # a kvmfr device: no file size to judge


def test_status_wraps_the_sessions_message():
    message = "the host speaks LGMP 12 and KVMFR 34, which is the Looking Glass master protocol " * 2
    lines = status_lines(SessionState.INCOMPATIBLE, None, "x", message, has_frame=False)
    assert lines[0] == "The host speaks another version"
    assert lines[-2:] == ["This viewer speaks Looking Glass B7 (LGMP 6 / KVMFR 20)",
                          "and Looking Glass master (LGMP 12 / KVMFR 34)."]
    middle = lines[1:-2]
    assert len(middle) >= 3 and all(len(line) <= 70 for line in middle)
    assert " ".join(middle) == " ".join(message.split())


def test_banner_gives_the_size_to_set_only_for_a_truncated_frame():
    meta = FrameMeta.of(_frame(flags=FrameFlags.TRUNCATED, data_height=1500), None, 4)
    assert meta.truncated and meta.type is FrameType.BGRA
    lines = banner_lines(SessionState.CONNECTED, meta, 32 * MIB)
    need = recommended_shm_size(3840, 2160, 4) // MIB
    assert lines == ["Shared memory too small: only 1500 of 2160 rows fit",
                     f"Set the ivshmem size to {need} MiB (now 32 MiB)"]
    whole = FrameMeta.of(_frame(), None, 4)
    assert banner_lines(SessionState.CONNECTED, whole, 32 * MIB) == []
    assert banner_lines(SessionState.LOST, meta, 32 * MIB) == []


def test_banner_sizes_hdr_frames_at_eight_bytes_a_pixel():
    meta = FrameMeta.of(_frame(type=FrameType.RGBA16F, flags=FrameFlags.TRUNCATED | FrameFlags.HDR),
                        None, 4)
    need = recommended_shm_size(3840, 2160, 8) // MIB
    assert f"Set the ivshmem size to {need} MiB (now 64 MiB)" in banner_lines(SessionState.CONNECTED, meta, 64 * MIB)


def test_title_shows_the_guest_when_connected_and_the_state_otherwise():
    assert (window_title("kvmfr-view", SessionState.CONNECTED, HOST)
            == "kvmfr-view - Windows (host B7) - Looking Glass B7 (LGMP 6 / KVMFR 20)")
    assert window_title("kvmfr-view", SessionState.WAITING, None) == "kvmfr-view - waiting for the host"


MASTER = replace(HOST, hostver="B7-123-g8cb6a687", lgmp_version=12, kvmfr_version=34)


def test_title_and_status_name_the_master_protocol():
    assert window_title("kvmfr-view", SessionState.CONNECTED, MASTER).endswith(
        " - Looking Glass master (LGMP 12 / KVMFR 34)")
    first = status_lines(SessionState.CONNECTED, MASTER, "x", "", has_frame=False)
    assert first[-1] == "Looking Glass master (LGMP 12 / KVMFR 34)"
    assert status_lines(SessionState.CONNECTED, HOST, "x", "", has_frame=False)[-1] == \
        "Looking Glass B7 (LGMP 6 / KVMFR 20)"


def test_frame_meta_keeps_the_hosts_stage_timings():
    t = HostTimings(capture_ns=1_500_000, post_process_ns=200_000, copy_ns=3_000_000, ready_ns=100_000,
                    hold_ns=0, ready_lead_ns=50_000)
    assert FrameMeta.of(_frame(host_timings=t), None, 4).host_timings is t
    assert FrameMeta.of(_frame(host_timings=None), None, 4).host_timings is None


def test_wrap_keeps_long_words_whole():
    assert wrap("a " + "x" * 70 + " b", 10) == ["a", "x" * 70, "b"]


def test_audio_and_spice_lines_say_the_state_in_words():
    from kvmfr_client.viewer.status import audio_line, spice_alert, spice_line
    assert audio_line(None) == "Audio: off (audio:scream and audio:spice are off)"
    assert audio_line({}) == "Audio: waiting for sound from the guest"
    assert audio_line({"packets": 0}) == "Audio: waiting for sound from the guest"
    assert audio_line({"packets": 900, "queued_ms": 19.4, "target_ms": 20.0}) == \
        "Audio: playing, 19 ms queued (target 20 ms)"
    assert audio_line({"chunks": 5, "queued_ms": 40.0, "target_ms": 20.0, "underruns": 2}).endswith(
        ", 2 underruns")
    assert spice_line("connected") == "SPICE (keyboard and mouse): connected"
    assert spice_alert("retrying", "connected") == "SPICE connected: keyboard and mouse reach the VM"
    assert spice_alert("connected", "lost") == "SPICE lost: keyboard and mouse do not reach the VM"
    assert spice_alert("retrying", "retrying") is None and spice_alert("lost", "retrying") is None
