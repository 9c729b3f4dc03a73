"""The overlay UI (Dear ImGui, gui.py) in the real window: nothing made while nothing is shown, the stats
panel drawn in the proportional font when it is."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.viewer.agent import ViewerRun, start_agent, stop, wait_viewer_watching, watch
from tests.viewer.test_app import SIZE, expected_frame
from tests.viewer.helpers import rgb_diff
from kvmfr_client.core.formats import FrameType


def test_hidden_overlay_makes_no_imgui_frame_and_leaves_the_picture_exact(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, SIZE, fps=60, cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.0, f"win:size={SIZE[0]}x{SIZE[1]}")
    finally:
        stop(agent)
    assert stats["frames_shown"] >= 20, stats
    # The waiting screen may have been drawn before the first frame; once frames show, no more ImGui
    # frames: at most the ones before the first frame (one per status change).
    assert stats["overlay_frames"] <= 4, stats["overlay_frames"]
    assert stats["overlay"] == {}, stats["overlay"]
    expected, _ = expected_frame(snap, FrameType.BGRA)
    assert rgb_diff(snap, expected) == 0


def test_stats_panel_is_drawn_over_the_picture(xserver, tmp_path, shm_path):
    agent = start_agent(shm_path, (640, 360), fps=60, cursor=False)
    try:
        stats, snap = watch(xserver, tmp_path, shm_path, 1.5, "win:size=640x360", "win:showFPS=yes")
    finally:
        stop(agent)
    drawn = stats["overlay"]["stats"]
    assert drawn["text"] and any(line.startswith("UPS") or "UPS" in line for line in drawn["text"]), drawn
    x, y, w, h = drawn["rect"]
    assert (x, y) == (8, 8) and w > 100 and h > 20 * len(drawn["text"]) * 0.8, drawn
    box = snap[y + 4:y + h - 4, x + 4:x + w - 4, :3]
    assert (box.max(axis=2) >= 200).sum() > 100, "no text in the stats panel"
    assert stats["overlay_frames"] >= 10, "the stats panel redraws as its numbers change"


def _with_escape_key_held(xserver, tmp_path, shm_path, *opts):
    """A viewer whose escape key (ScrollLock) is held for 1 s; its (stats, snapshot) taken with the key
    still down."""
    from tests.viewer.test_keys import find_window, xdotool
    viewer = ViewerRun(xserver, tmp_path, shm_path, 30.0, *opts)
    with viewer:
        wid = find_window(xserver, "^kvmfr-view")
        time.sleep(0.5)
        xdotool(xserver, "windowfocus", "--sync", wid)
        xdotool(xserver, "keydown", "Scroll_Lock")
        time.sleep(1.0)
        stats, snap = viewer.finish()      # the window is drawn and read back with the key still down
        xdotool(xserver, "keyup", "Scroll_Lock")
    return stats, snap


def test_help_lists_every_binding_while_the_escape_key_is_held(xserver, tmp_path, shm_path):
    # 480 px: shorter than the help in one column at full size; it is laid out again to fit (nothing cut off)
    stats, snap = _with_escape_key_held(xserver, tmp_path, shm_path, "win:size=800x480", "input:helpMenuDelay=300")
    help_panel = stats["overlay"].get("help")
    assert help_panel is not None, f"no help while the escape key was held: {stats['overlay']}"
    text = help_panel["text"]
    assert text[0] == "Key bindings"
    for line in ("ScrollLock: toggle capture mode", "ScrollLock+D: toggle the stats overlay",
                 "ScrollLock+T: toggle the frame timing graphs", "ScrollLock+F: toggle full screen",
                 "ScrollLock+Q: quit"):
        assert line in text, (line, text)
    assert "status" not in stats["overlay"], "help is drawn instead of the status screen while shown"
    x, y, w, h = help_panel["rect"]
    assert not help_panel["clipped"], ("the help is cut off at 480 px", help_panel)
    assert x >= 0 and y >= 0 and x + w <= 800 and y + h <= 480, help_panel["rect"]
    box = snap[y:y + h, x:x + w, :3]
    assert (box.max(axis=2) >= 180).sum() > 100 * len(text) / 2, "no text in the help panel"
    rows = (box.max(axis=2) >= 180).any(axis=1)
    assert rows[-h // 4:].any(), "the lower part of the help panel is empty: rows missing"


def test_help_waits_for_the_delay(xserver, tmp_path, shm_path):
    stats, _ = _with_escape_key_held(xserver, tmp_path, shm_path, "win:size=640x360", "input:helpMenuDelay=5000")
    assert "help" not in stats["overlay_seen"], "help shown before input:helpMenuDelay"
    assert stats["overlay"]["status"]["text"][0] == "The shared-memory file does not exist"


def test_timing_graphs_toggle_with_scroll_lock_t(xserver, tmp_path, shm_path):
    from tests.viewer.test_keys import find_window, xdotool
    agent = start_agent(shm_path, (640, 360), fps=60, cursor=False)
    try:
        with ViewerRun(xserver, tmp_path, shm_path, 30.0, "win:size=800x600") as viewer:
            wid = find_window(xserver, "^kvmfr-view")
            time.sleep(1.0)
            xdotool(xserver, "windowfocus", "--sync", wid)
            xdotool(xserver, "keydown", "Scroll_Lock", "key", "t", "keyup", "Scroll_Lock")
            time.sleep(1.5)
            stats, snap = viewer.finish()
    finally:
        stop(agent)
    assert stats["show_graphs"]
    graphs = stats["overlay"]["graphs"]
    assert graphs["text"][0].startswith("UPS "), graphs
    labels = [line.split(":")[0] for line in graphs["text"][1:]]
    assert labels[:4] == ["copy", "upload", "draw", "swap"], labels
    assert "end to end" in labels and "CPU per frame" in labels, labels
    assert all("ms (peak" in line for line in graphs["text"][1:]), graphs["text"]
    x, y, w, h = graphs["rect"]
    assert x + w == 800 - 8 and y == 8, graphs["rect"]
    # the capture alert did not fire (no SPICE: nothing to capture), and the overlay drew the graphs
    assert stats["overlay_frames"] >= 10


@pytest.mark.parametrize("alerts", ["yes", "no"])
def test_host_restart_is_alerted_unless_win_alerts_is_off(xserver, tmp_path, shm_path, alerts):
    agent = start_agent(shm_path, SIZE, fps=30, cursor=False)
    viewer = ViewerRun(xserver, tmp_path, shm_path, 60.0, "win:size=640x360", f"win:alerts={alerts}")
    try:
        wait_viewer_watching(shm_path)
        time.sleep(1.0)
        stop(agent)
        time.sleep(1.0)
        agent = start_agent(shm_path, SIZE, fps=30, cursor=False)
        wait_viewer_watching(shm_path)
        time.sleep(0.5)
        stats, snap = viewer.finish()
    finally:
        stop(agent)
        viewer.proc.kill()
    assert stats["sessions"] == 2, stats
    if alerts == "no":
        assert "alert" not in stats["overlay_seen"], stats["overlay_seen"]
        return
    alert = stats["overlay"]["alert"]          # still up: alerts last 3 s
    assert alert["text"] == ["The host restarted: new session"], alert
    x, y, w, h = alert["rect"]
    assert y == 8 and abs(x + w / 2 - 320) <= 1, alert["rect"]
    box = snap[y:y + h, x:x + w, :3]
    assert (box.max(axis=2) >= 180).sum() > 50


def test_overlay_mode_moves_a_panel_and_the_next_start_puts_it_back(xserver, tmp_path, shm_path):
    from tests.viewer.test_keys import find_window, xdotool
    agent = start_agent(shm_path, (640, 360), fps=30, cursor=False)
    try:
        with ViewerRun(xserver, tmp_path, shm_path, 30.0, "win:size=800x600", "win:position=0,0",
                       "win:borderless=yes", "win:showFPS=yes") as viewer:
            wid = find_window(xserver, "^kvmfr-view")
            time.sleep(1.0)
            xdotool(xserver, "windowfocus", "--sync", wid)
            xdotool(xserver, "keydown", "Scroll_Lock", "key", "o", "keyup", "Scroll_Lock")
            time.sleep(0.5)
            # drag the stats panel (top-left at 8,8) by its body 250 px right and 200 px down
            xdotool(xserver, "mousemove", "--window", wid, "40", "20")
            time.sleep(0.2)
            xdotool(xserver, "mousedown", "1")
            for step in range(1, 11):
                xdotool(xserver, "mousemove", "--window", wid, str(40 + 25 * step), str(20 + 20 * step))
                time.sleep(0.05)
            time.sleep(0.2)
            xdotool(xserver, "mouseup", "1")
            time.sleep(0.3)
            xdotool(xserver, "key", "Escape")       # leaves overlay mode and saves the positions
            time.sleep(0.5)
            stats, _ = viewer.finish()
        assert not stats["overlay_mode"], "Escape must leave overlay mode"
        assert "overlay-mode" in stats["overlay_seen"], "overlay mode was never shown"
        x, y, _, _ = stats["overlay"]["stats"]["rect"]
        assert abs(x - 258) <= 4 and abs(y - 208) <= 4, f"stats panel at {(x, y)}, not dragged to ~(258, 208)"
        saved = json.loads((tmp_path / "xdg" / "kvmfr-client" / "overlay.json").read_text())
        assert [round(v) for v in saved["positions"]["stats"]] == [x, y], saved
        # the next start, with the same config folder, shows the panel where it was left
        again, snap = ViewerRun(xserver, tmp_path, shm_path, 2.0, "win:size=800x600", "win:position=0,0",
                                "win:borderless=yes", "win:showFPS=yes").wait()
    finally:
        stop(agent)
    rx, ry, rw, rh = again["overlay"]["stats"]["rect"]
    assert (rx, ry) == (x, y), (rx, ry)
    box = snap[ry:ry + rh, rx:rx + rw, :3]
    assert (box.max(axis=2) >= 180).sum() > 100, "no stats text where the panel was restored"


def _distinct_colours(snap) -> int:
    """How many colours a corner of the picture no panel covers holds: a nearest upscale shows only the
    frame's own colours, a linear one adds the blends at every edge between them (2.5 times as many here)."""
    region = np.ascontiguousarray(snap[420:560, 16:240, :3])
    return len(np.unique(region.reshape(-1, 3), axis=0))


def _click_in_overlay_mode(xserver, run_dir, shm_path, opts, click, leave: bool):
    """A viewer put in overlay mode (ScrollLock+O); ``click``: window coordinates to click, then (with
    ``leave``) Escape. Returns the run's (stats, snapshot)."""
    from tests.viewer.test_keys import find_window, xdotool
    with ViewerRun(xserver, run_dir, shm_path, 30.0, *opts) as viewer:
        wid = find_window(xserver, "^kvmfr-view")
        time.sleep(1.0)
        xdotool(xserver, "windowfocus", "--sync", wid)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "o", "keyup", "Scroll_Lock")
        time.sleep(0.5)
        if click is not None:
            xdotool(xserver, "mousemove", "--window", wid, str(click[0]), str(click[1]))
            time.sleep(0.2)
            xdotool(xserver, "click", "1")
            time.sleep(0.3 if leave else 0.5)
            if leave:
                xdotool(xserver, "key", "Escape")
                time.sleep(0.5)
        return viewer.finish()


def test_spice_state_is_shown_and_a_missing_server_said_once(xserver, tmp_path, shm_path):
    from tests.support.vm import free_port
    viewer = ViewerRun(xserver, tmp_path / "on", shm_path, 3.5, "win:size=800x400", "spice:enable=yes",
                       "spice:host=127.0.0.1", f"spice:port={free_port()}")
    stats, snap = viewer.wait()
    assert stats["spice_state"] == "retrying", stats["spice_state"]
    assert stats["status"][-2] == "SPICE (keyboard and mouse): retrying: no SPICE server answers yet"
    assert stats["status"][-1] == "Audio: off (audio:scream and audio:spice are off)"
    assert stats["overlay"]["status"]["text"] == stats["status"]
    # several attempts in 3.5 s (backoff 0.25 s doubling), one line in the terminal
    assert viewer.output.count("SPICE retrying") == 1, viewer.output
    # the same screen in another font and size (win:uiFont as a fontconfig family, win:uiSize)
    off, _ = ViewerRun(xserver, tmp_path / "off", shm_path, 1.0, "win:size=800x400", "spice:enable=no",
                       "win:uiFont=DejaVu Sans Mono", "win:uiSize=24").wait()
    assert off["overlay_font"].endswith("/DejaVuSansMono.ttf") and off["overlay_font_px"] == 24, off["overlay_font"]
    assert stats["overlay_font_px"] == 18
    on_h, off_h = stats["overlay"]["status"]["rect"][3], off["overlay"]["status"]["rect"][3]
    assert off_h > 1.2 * on_h, (on_h, off_h)
    assert off["spice_state"] == "off"
    assert off["status"][-2] == "SPICE (keyboard and mouse): off (spice:enable=no): keyboard and mouse stay here"


def test_capture_on_and_off_are_alerted(xserver, tmp_path, shm_path):
    import subprocess
    import sys

    from tests.viewer.helpers import REPO
    from tests.viewer.test_keys import find_window, xdotool
    out = tmp_path / "sent.json"
    proc = subprocess.Popen([sys.executable, "-m", "tests.viewer.hook_child", str(out), "--controller",
                             "--shm", str(shm_path), "--exit-after", "60", "--stats-json", str(tmp_path / "s.json"),
                             "win:size=640x360", "win:position=0,0", "win:title=capturetest"],
                            cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path)))
    try:
        wid = find_window(xserver, "^capturetest")
        xdotool(xserver, "windowfocus", "--sync", wid)
        time.sleep(0.5)
        xdotool(xserver, "key", "Scroll_Lock")          # the escape key alone: capture on
        time.sleep(0.5)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "q", "keyup", "Scroll_Lock")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stats = json.loads((tmp_path / "s.json").read_text())
    alert = stats["overlay_seen"].get("alert")
    assert alert is not None and alert["text"] == ["Capture on"], stats["overlay_seen"]
    x, y, w, h = alert["rect"]
    assert y == 8 and abs(x + w / 2 - 320) <= 1


def test_settings_panel_turns_a_saved_filter_preset_on_live(xserver, tmp_path, shm_path):
    import os
    import subprocess
    import sys

    from tests.viewer.helpers import REPO
    run_dir = tmp_path / "run"
    env = dict(os.environ, XDG_CONFIG_HOME=str(run_dir / "xdg"))   # ViewerRun's config folder
    saved = subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--save-preset", "night",
                            "egl:nvGain=1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert saved.returncode == 0, saved.stderr
    opts = ("win:size=640x360", "win:position=0,0", "win:borderless=yes")

    def in_overlay_mode(click=None):
        return _click_in_overlay_mode(xserver, run_dir, shm_path, opts, click, leave=False)

    agent = start_agent(shm_path, (640, 360), fps=30, cursor=False)
    try:
        first, _ = in_overlay_mode()
        assert first["render_path"] == "blit", first["render_path"]
        x, y, w, h = first["overlay_items"]["preset:night"]
        second, _ = in_overlay_mode(click=(x + w // 2, y + h // 2))
    finally:
        stop(agent)
    assert second["settings_changes"] == ["egl:preset=night"], second["settings_changes"]
    assert second["render_path"] == "filter+blit", "the preset's night-vision pass must run at once"


def test_without_the_truetype_font_the_builtin_one_is_used_and_said(xserver, tmp_path, shm_path):
    import subprocess
    import sys

    from tests.viewer.helpers import REPO
    env = xserver.env(XDG_CONFIG_HOME=str(tmp_path), KVMFR_FONT=str(tmp_path / "no-such-font.ttf"))
    proc = subprocess.run([sys.executable, "-m", "kvmfr_client.cli.view", "--shm", str(shm_path), "--exit-after",
                           "1.5", "--stats-json", str(tmp_path / "s.json"), "--snapshot", str(tmp_path / "s.npy"),
                           "win:size=800x400", "spice:enable=no"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["overlay_font"] is None
    assert "using Dear ImGui's built-in font" in proc.stderr + proc.stdout
    drawn_text = stats["overlay"]["status"]["text"]
    assert drawn_text[0] == "The shared-memory file does not exist"
    x, y, w, h = stats["overlay"]["status"]["rect"]
    box = np.load(tmp_path / "s.npy")[y:y + h, x:x + w, :3]
    assert (box.max(axis=2) >= 180).sum() > 100, "no text drawn with the built-in font"


def _click_all(xserver, run_dir, shm_path, opts, clicks, settle: float = 0.5):
    """A viewer put in overlay mode, ``clicks`` (window coordinates) clicked in turn; its (stats, snapshot)
    taken while still in overlay mode."""
    from tests.viewer.test_keys import find_window, xdotool
    with ViewerRun(xserver, run_dir, shm_path, 40.0, *opts) as viewer:
        wid = find_window(xserver, "^kvmfr-view")
        time.sleep(1.0)
        xdotool(xserver, "windowfocus", "--sync", wid)
        xdotool(xserver, "keydown", "Scroll_Lock", "key", "o", "keyup", "Scroll_Lock")
        time.sleep(0.5)
        for x, y in clicks:
            xdotool(xserver, "mousemove", "--window", wid, str(x), str(y))
            time.sleep(0.15)
            xdotool(xserver, "click", "1")
            time.sleep(0.25)
        time.sleep(settle)
        return viewer.finish()


def test_settings_panel_changes_scaler_filters_aspect_vsync_cursor_and_audio_latency_live(xserver, tmp_path,
                                                                                         shm_path):
    """The scaler, per-filter on/off and order, win:keepAspect, egl:vsync, egl:scalePointer and
    audio:latency, each clicked in the settings panel of one running viewer: the picture, the renderer,
    the window and the audio service change."""
    from tests.support.vm import free_port
    opts = ("win:size=900x700", "win:position=0,0", "win:borderless=yes", "egl:nvGainMax=2", "egl:nvGain=1",
            "egl:cbMode=3", f"audio:scream=udp://127.0.0.1:{free_port(udp=True)}")
    agent = start_agent(shm_path, SIZE, fps=30, cursor=False)
    try:
        first, snap_first = _click_all(xserver, tmp_path / "a", shm_path, opts, [], settle=0.0)
        items = first["overlay_items"]

        def centre(name):
            x, y, w, h = items[name]
            return x + w // 2, y + h // 2
        assert [f["filter"] for f in first["filters"]] == ["nightvision", "colorblind"], first["filters"]
        assert first["vsync"] is False and first["cursor_keep_size"] is True
        assert first["audio"]["target_ms"] == 19.0, first["audio"]
        assert not first["overlay"]["settings"]["clipped"], first["overlay"]["settings"]
        clicks = [centre("filter-up:colorblind"),      # colour-blind before night vision
                  centre("filter:cas"),                # sharpening on, at the end
                  centre("filter:colorblind"),         # that row is night vision's now: off
                  centre("scale:nearest"), centre("win:keepAspect"), centre("egl:vsync"), centre("egl:scalePointer"),
                  centre("audio:latency+"), centre("audio:latency+")]
        second, snap_second = _click_all(xserver, tmp_path / "a", shm_path, opts, clicks)
    finally:
        stop(agent)
    assert second["settings_changes"] == [
        "filters=colorblind,nightvision", "filters=colorblind,nightvision,cas", "filters=colorblind,cas",
        "win:filter=nearest", "win:keepAspect=no", "egl:vsync=yes", "egl:scalePointer=no", "audio:latency=24", "audio:latency=29"], \
        second["settings_changes"]
    assert second["filters"] == [{"filter": "colorblind", "mode": 3, "simulate": False},
                                 {"filter": "cas", "sharpness": 0.5}], second["filters"]
    assert second["render_path"].startswith("filter+")
    assert second["vsync"] is True and second["cursor_keep_size"] is False
    assert second["audio"]["target_ms"] == 29.0, second["audio"]
    assert first["render_filter"] == "linear" and second["render_filter"] == "nearest"
    # keep aspect off: the 4:3 picture fills the 900x700 window, no black bars above and below it
    bar = (slice(0, 10), slice(4, 200))
    assert snap_first[bar][..., :3].max() == 0, "letterbox expected with win:keepAspect"
    assert snap_second[bar][..., :3].max() > 0, "the picture must fill the window once keepAspect is off"
    # nearest at ~2.8x: only the (filtered) frame's colours; linear: their blends too
    linear, nearest = _distinct_colours(snap_first), _distinct_colours(snap_second)
    assert linear > 1.5 * nearest, (linear, nearest)


def test_clipboard_and_microphone_alerts(xserver, tmp_path, shm_path):
    """The guest's clipboard reaching us over SPICE and the microphone going on (through the hook the
    viewer gives the microphone) are alerted at the top of the window."""
    import asyncio
    import struct
    import subprocess
    import sys
    import threading

    from kvmfr_client.spice.agent import AgentMsg, ClipboardType
    from tests.spice.fake_server import FakeSpiceServer
    from tests.viewer.helpers import REPO

    from tests.support.process import wait_for
    window_up = threading.Event()
    ready = tmp_path / "hooked"

    async def guest(agent):
        await agent.receive(AgentMsg.ANNOUNCE_CAPABILITIES)
        utf8 = struct.pack("<I", ClipboardType.UTF8_TEXT)
        while not window_up.is_set():      # the user copies once the viewer shows the VM
            await asyncio.sleep(0.05)
        await agent.send(AgentMsg.CLIPBOARD_GRAB, utf8)
        await agent.receive(AgentMsg.CLIPBOARD_REQUEST)
        await agent.send(AgentMsg.CLIPBOARD, utf8 + "copied in the guest".encode())

    with FakeSpiceServer(guest) as server:
        cmd = [sys.executable, "-m", "tests.viewer.alert_child", str(ready), "--shm", str(shm_path), "--exit-after", "30",
               "--stats-json", str(tmp_path / "s.json"), "--snapshot", str(tmp_path / "s.npy"),
               "win:size=640x360", "spice:host=127.0.0.1", f"spice:port={server.port}"]
        proc = subprocess.Popen(cmd, cwd=REPO, env=xserver.env(XDG_CONFIG_HOME=str(tmp_path)),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(ready.exists, 40, "the viewer to hook up its alerts")
            window_up.set()
            assert server.agent_done.wait(30), "the viewer's SPICE agent never asked for the clipboard"
            assert server.agent_error is None, repr(server.agent_error)
            time.sleep(2.0)              # the microphone's alert comes 1.5 s after the window opened
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, out[-3000:]
    stats = json.loads((tmp_path / "s.json").read_text())
    assert ["clipboard", "Clipboard received from the VM (19 characters)"] in stats["alerts"], stats["alerts"]
    assert ["mic", "Microphone on"] in stats["alerts"], stats["alerts"]
    alert = stats["overlay_seen"]["alert"]
    assert alert["text"][0] in ("Microphone on", "Clipboard received from the VM (19 characters)"), alert
    x, y, w, h = alert["rect"]
    assert y == 8 and abs(x + w / 2 - 320) <= 1


def test_scale_pointer_keeps_the_cursor_1to1_on_a_smaller_picture(xserver, script):
    """egl:scalePointer (the settings panel's "cursor 1:1 on a smaller picture"): on a picture shown at half
    size the 8x8 cursor stays 8x8, grown around its hotspot; off, it shrinks to 4x4 with the picture."""
    from kvmfr_client.core.cursor import CursorType
    bg = np.zeros((80, 120, 4), np.uint8)
    bg[..., 3] = 255
    white = np.full((8, 8, 4), 255, np.uint8).tobytes()
    s = script((60, 40)).frame(bg).cursor_shape(CursorType.COLOR, 8, 8, 32, white, hx=4, hy=4).cursor(16, 6)
    shots, _ = s.draw().cursor_keep_size(True).draw().run(xserver)

    def box(shot):
        ys, xs = np.nonzero(shot[..., 0] >= 128)
        return xs.min(), xs.max(), ys.min(), ys.max()
    assert box(shots[0]) == (8, 11, 3, 6), "shrunk with the picture: 4x4 around the hotspot at (10, 5)"
    assert box(shots[1]) == (6, 13, 1, 8), "1:1: 8x8 around the same hotspot"
