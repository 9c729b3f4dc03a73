"""``kvmfr-view``'s window mode: session -> frame/cursor threads -> renderer -> window, and the loop.

The GL thread (main thread) sleeps in glfw's event wait until a frame, a cursor change, an input
event or a timer wakes it, and redraws only then (plus ``win:fpsMin``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import stat
import sys
import threading
import time
from typing import Any, Callable, Mapping

from kvmfr_client.config import exits
from kvmfr_client.config.flags import checked
from kvmfr_client.config.registry import number
from kvmfr_client.core.formats import FrameFlags
from kvmfr_client.core.session import SessionState
from kvmfr_client.input import ViewerInput
from kvmfr_client.viewer import hdr
from kvmfr_client.viewer.guest_res import GuestResizer
from kvmfr_client.viewer.stats import Series, Stats, TimingRecorder, save_snapshot, thread_cpu_s
from kvmfr_client.viewer.status import (FrameMeta, audio_line, banner_lines, spice_alert, spice_line, status_lines,
                                        window_title)

log = logging.getLogger(__name__)

# Cursor-only redraws at most this often (120 Hz): on a CPU renderer a redraw costs a full present.
CURSOR_REDRAW_INTERVAL_S = 1 / 120

KEY_ESC = 1                            # evdev: leaves overlay mode
OVERLAY_FRAME_S = 1 / 30               # overlay mode redraws at least this often (ImGui's input is per frame)
ALERT_S = 3.0                          # how long an alert stays up
# Kinds of alert (win:alerts), and those drawn as warnings. Other parts of the program raise them through
# the viewer's post_alert(kind, text): the SPICE clipboard ("clipboard") and the microphone ("mic").
ALERT_KINDS = ("capture", "spice", "host", "clipboard", "mic", "info", "warning")
WARN_ALERTS = ("warning",)
ALERT_MAX_CHARS = 200                  # a posted alert's text is cut to one line's worth
MAX_ALERTS_KEPT = 1000                 # alerts listed in --stats-json (and posted, not yet shown)
WARN_COLOUR = (1.0, 0.78, 0.3, 1.0)   # the headline of a screen that says something is wrong


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the window's flags to ``kvmfr-view``'s parser (every other setting is a section:option)."""
    # -F/--fullscreen, -k/--show-fps and --vsync are spellings of options (kvmfr_client.config.flags).
    g = parser.add_argument_group("window tools (see docs/viewer.md)")
    g.add_argument("--exit-after", type=checked(number(float, 0.01, 10**7, "seconds")), metavar="SECONDS",
                   help="close the window after this long")
    g.add_argument("--stats-json", metavar="FILE", help="write counters and timings as JSON at exit")
    g.add_argument("--timings-json", metavar="FILE",
                   help="write each shown frame's stage times (CLOCK_MONOTONIC) as JSON at exit (docs/latency.md)")
    g.add_argument("--snapshot", metavar="FILE.npy",
                   help="at exit, save what the window shows (RGBA, top row first) as a numpy .npy file")
    g.add_argument("--force-shader", action="store_true",
                   help="never take the blit path (for comparing render paths)")
    g.add_argument("--show-graphs", action="store_true",
                   help="start with the frame timing graphs shown (as after ScrollLock+T)")
    g.add_argument("--no-damage", action="store_true", help="copy and upload whole frames, ignoring damage")
    g.add_argument("--save-preset", metavar="NAME",
                   help="save the filter chain the egl/eglFilter options build as preset NAME in the config "
                        "folder (egl:preset=NAME loads it) and exit (docs/filters.md)")


def _arg(args: Any, name: str, default=None):
    return getattr(args, name, default) if args is not None else default


def run(cfg: Mapping[str, Any], args: Any = None, input_hook: ViewerInput | None = None,
        on_mapped: Callable[[], None] | None = None, audio=None, viewer: Callable[[str], Any] | None = None) -> int:
    """Open the window on the configured shared memory and show frames until closed. Returns the exit code.

    ``cfg``: resolved options (:func:`kvmfr_client.config.load`); ``args``: the parsed command line with
    :func:`add_arguments`' flags (or None); ``input_hook``: the window's input
    (:class:`kvmfr_client.input.ViewerInput`, started by the caller); None: one without SPICE, for the
    viewer's own escape-key combos. ``on_mapped``: called once, on this thread, when the session first maps
    the file (kvmfr-view checks its permissions then, for a file that appeared after the window opened).
    ``audio``: the running :class:`kvmfr_client.audio.AudioService` (its state on the status screens and
    its queue in the timing graphs), None when there is no sound. ``viewer(platform)``: makes what runs
    instead of the one window (an object with ``loop()``; several displays: :mod:`kvmfr_client.viewer.multi`).
    """
    # Wayland or X11: chosen before glfw is imported (it loads one build or the other), docs/desktop.md.
    from kvmfr_client.viewer.wayland import BackendError, select_backend
    try:
        select_backend(cfg.get("win:backend", "auto"))
    except BackendError as exc:
        print(f"kvmfr-view: {exc}", file=sys.stderr)
        return exits.FAILED
    except exits.Stopped:
        return exits.OK
    from kvmfr_client.viewer.window import WindowError, init_glfw
    try:
        platform = init_glfw()
    except WindowError as exc:
        print(f"kvmfr-view: {exc}", file=sys.stderr)
        return exits.FAILED
    except exits.Stopped:
        return exits.OK
    import OpenGL
    OpenGL.ERROR_CHECKING = bool(os.environ.get("KVMFR_GL_DEBUG"))
    import glfw

    from kvmfr_client.core import errors
    try:
        if viewer is not None:
            return viewer(platform).loop()
        return _Viewer(cfg, args, input_hook, platform, on_mapped, audio).loop()
    except WindowError as exc:
        print(f"kvmfr-view: {exc}", file=sys.stderr)
        return exits.FAILED
    except errors.KvmfrError as exc:   # the shared memory cannot be used at all (a directory, permissions)
        log.debug("cannot use %s: %r (field %s, value %s, limit %s)", cfg["app:shmFile"], exc, exc.field,
                  exc.value, exc.limit)
        print(f"kvmfr-view: {exc}", file=sys.stderr)
        return exits.SHM
    except exits.Stopped:   # Ctrl+C / SIGTERM while the window was still being made: stopping is no failure
        return exits.OK
    finally:
        glfw.terminate()


class _Viewer:
    def __init__(self, cfg, args, input_hook, platform: str, on_mapped=None, audio=None,
                 shm: str | None = None, display: tuple[int, int] | None = None):
        import kvmfr_client
        from kvmfr_client.viewer.frame_pipeline import CursorTracker, FramePipeline
        from kvmfr_client.viewer import filters
        from kvmfr_client.viewer.gui import Gui
        from kvmfr_client.viewer.renderer import Renderer, RenderOptions
        from kvmfr_client.viewer.window import Window

        self.cfg = cfg
        self.args = args
        self.path = shm or cfg["app:shmFile"]
        self.title_prefix = cfg["win:title"]
        if display is not None:   # one of several windows (multi.py): (index from 0, how many)
            self.title_prefix += f" - display {display[0] + 1} of {display[1]}"
        from kvmfr_client.viewer.identity import uses_rates
        self._title_rates = uses_rates(self.title_prefix)   # {fps}/{ups}: the rates are worked out for it
        self.stats = Stats()
        self.win = Window(
            f"{self._title_head(SessionState.WAITING, None)} - waiting for the host", cfg["win:size"],
            cfg["win:position"], borderless=cfg["win:borderless"], fullscreen=cfg["win:fullScreen"],
            maximize=cfg["win:maximize"], resizable=cfg["win:allowResize"],
            vsync=cfg["egl:vsync"], minimize_on_focus_loss=cfg["win:minimizeOnFocusLoss"])
        self._desktop_init(cfg, platform)   # identity block: screensaver inhibit, attention
        self.platform = platform
        self.renderer = Renderer(RenderOptions(
            keep_aspect=cfg["win:keepAspect"], int_upscale=cfg["win:intUpscale"],
            dont_upscale=cfg["win:dontUpscale"], rotate=cfg["win:rotate"], filter=cfg["win:filter"],
            map_hdr=cfg["egl:mapHDRtoSDR"], peak_nits=cfg["egl:peakLuminance"],
            force_shader=bool(_arg(args, "force_shader")), filters=filters.from_config(cfg),
            upload=cfg["egl:upload"]))
        info = self.renderer.info()
        self.stats.renderer = info["renderer"]
        log.info("OpenGL: %s, %s (%s)", info["renderer"], info["version"], platform)
        self.gui = Gui(font_px=cfg["win:uiSize"], font_name=cfg["win:uiFont"])
        self.renderer.cursor.keep_size = cfg["egl:scalePointer"]
        self.status_text: list[str] = []     # the centre status screen (status.py's words)
        self.banner_text: list[str] = []     # the too-small banner
        self.stats_text: list[str] = []      # the stats overlay
        self._last_gui_draw = time.monotonic()
        self.show_stats = cfg["win:showFPS"]
        self.show_graphs = bool(_arg(args, "show_graphs"))
        self.alerts_on = cfg["win:alerts"]
        self.help_delay_s = cfg["input:helpMenuDelay"] / 1000.0
        self.help_shown = False
        self._alert: tuple[str, float, str] | None = None   # (text, until time.monotonic(), kind)
        self._posted_alerts: list[tuple[str, str, float]] = []    # from other threads (post_alert), shown by this one
        self._posted_lock = threading.Lock()
        self.alerts_shown: list[list[str]] = []            # [kind, text] of each alert, for --stats-json
        self._restarts_seen = 0
        self.fps_min = cfg["win:fpsMin"]
        self.auto_resize = cfg["win:autoResize"]
        self.session = kvmfr_client.open(self.path, poll_us=cfg["app:pollUs"])
        self.frames = FramePipeline(self.session, self.win.wake, use_damage=not _arg(args, "no_damage"))
        self.cursor = CursorTracker(self.session, self.win.wake, self.frames)
        self._shape_serial = 0
        self._shape_type: int | None = None
        self._frame_meta = None
        self._light_key: tuple | None = None
        self._light = None
        self._tex_serial: int | None = None
        self._first_serial: int | None = None
        self.timings = TimingRecorder() if _arg(args, "timings_json") else None
        self._quit = False
        self.win.to_guest_fn = self._to_guest
        # One controller owns the escape key and every combo, ours included, with or without SPICE.
        self.input = input_hook if input_hook is not None else ViewerInput(cfg)
        self.input.add_combo("f", "toggle full screen", self._combo(self.win.toggle_fullscreen))
        self.input.add_combo("d", "toggle the stats overlay", self._combo(self._toggle_stats))
        self.input.add_combo("t", "toggle the frame timing graphs", self._combo(self._toggle_graphs))
        self.input.add_combo("o", "overlay mode: move the panels with the mouse (Esc leaves)",
                             self._combo(self._toggle_overlay_mode))
        self.input.add_combo("q", "quit", self._combo(self._request_quit))
        self.input.attach(self.win, self.session)   # the session: KVMFR SETCURSORPOS on pointer entry
        self.controller = getattr(self.input, "controller", None)
        self.overlay_mode = False
        self._to_input = self.win.on_input
        self.win.on_input = self._on_input       # overlay mode takes the mouse before the controller
        self.gui.load_positions(overlay_positions_path())
        self._hook_spice(getattr(self.input, "spice", None))
        # The microphone's question and its indicator are alert lines (from the SPICE thread); its line stays
        # up while it records.
        mic = getattr(self.input, "microphone", None)
        if mic is not None:
            mic.on_alert = lambda kind, text: self.post_alert(kind, text, 1e9 if mic.recording else ALERT_S)
        self.audio = audio
        self._cpu_at_shown: float | None = None
        self.audio_queued = Series()     # the audio queue (ms), sampled at each redraw, for the graphs
        from kvmfr_client.viewer.settings import Settings
        self.settings = Settings(self.renderer, self.win, cfg["egl:vsync"], cfg.get("egl:preset") or "",
                                 audio=audio if audio is not None and hasattr(audio, "set_latency") else None,
                                 audio_latency_ms=cfg.get("audio:latency"))
        if self.controller is not None:
            self._captured = self.controller.captured
            self.controller.on_change = self._input_changed
        self._stats_refreshed = 0.0
        self._on_mapped = on_mapped
        # win:setGuestRes: the guest's display follows the window. Not with win:autoResize, where the window
        # follows the guest: on a scaled (HiDPI) screen the two would chase each other.
        set_guest_res = cfg["win:setGuestRes"]
        if set_guest_res and self.auto_resize:
            log.info("win:setGuestRes is not used while win:autoResize is on (the window follows the guest)")
        self.guest_res = GuestResizer(self.session.set_window_size, enabled=set_guest_res and not self.auto_resize)
        self._guest_res_due: float | None = None

    # ---- the desktop identity block (kvmfr_client.viewer.identity / screensaver) ------------------

    def _desktop_init(self, cfg, platform: str) -> None:
        from kvmfr_client.viewer.screensaver import Inhibitor
        self.no_screensaver = cfg["win:noScreensaver"]
        self.auto_screensaver = cfg["win:autoScreensaver"]
        self.request_activation = cfg["win:requestActivation"]
        self.attention_requests = 0
        self._attention_at = float("-inf")
        self._guest_flags = 0
        self.inhibitor = Inhibitor(self.win, platform)
        if self.no_screensaver:
            self.inhibitor.set(True, "win:noScreensaver")

    def _title_head(self, state: SessionState, host) -> str:
        """win:title with its placeholders filled in (the part before the state)."""
        from kvmfr_client.viewer.identity import expand_title
        meta = getattr(self, "_frame_meta", None)
        facts = {"width": meta.width if meta else None, "height": meta.height if meta else None,
                 "os": host.os_name if host else None, "host": host.hostver if host else None,
                 "protocol": host.protocol_name if host else None, "state": state.value}
        if self._title_rates:   # the rates cost a pass over the last second's ticks: only when shown
            now = time.monotonic()
            facts["fps"] = f"{self.stats.fps.per_second(now):.0f}"
            facts["ups"] = f"{self.stats.ups.per_second(now):.0f}"
        return expand_title(self.title_prefix, facts)

    def _guest_asks(self, flags: int) -> None:
        """A new frame's KVMFR flags: block-screensaver (win:autoScreensaver) and request-activation
        (win:requestActivation, acted on when the flag appears, as Looking Glass does)."""
        new = flags & ~self._guest_flags
        self._guest_flags = flags
        if self.auto_screensaver and not self.no_screensaver:
            self.inhibitor.set(bool(flags & FrameFlags.BLOCK_SCREENSAVER), "the guest asks (autoScreensaver)")
        if self.request_activation and new & FrameFlags.REQUEST_ACTIVATION and not self.win.focused():
            from kvmfr_client.viewer.identity import ATTENTION_INTERVAL_S
            now = time.monotonic()
            if now - self._attention_at < ATTENTION_INTERVAL_S:   # a guest flipping the flag: not every frame
                return
            self._attention_at = now
            self.attention_requests += 1
            log.info("the guest asks for attention: requesting it from the desktop")
            self.win.request_attention()

    def _desktop_tick(self, state: SessionState) -> None:
        """A guest that asked to block the screensaver and is gone (host lost, closed) asks no more."""
        if self._guest_flags and state is not SessionState.CONNECTED:
            self._guest_flags = 0
            if self.auto_screensaver and not self.no_screensaver:
                self.inhibitor.set(False, "")
        self.inhibitor.tick()    # a change deferred by its rate limit

    def _desktop_stats(self) -> dict:
        return {"screensaver_inhibited": self.inhibitor.active, "screensaver_by": self.inhibitor.backend_name,
                "screensaver_errors": self.inhibitor.errors, "attention_requests": self.attention_requests}

    # ---- end of the identity block ---------------------------------------------------------------

    # ---- actions -------------------------------------------------------------------------------

    def _combo(self, fn):
        def run():
            fn()
            self.win.dirty = True
        return run

    def _toggle_stats(self) -> None:
        self.show_stats = not self.show_stats
        self.win.dirty = True

    def _toggle_graphs(self) -> None:
        self.show_graphs = not self.show_graphs
        self.win.dirty = True

    def _hook_spice(self, spice) -> None:
        """Follow the SPICE session's state (its callbacks come on the "spice" thread: the state is
        stored, the window woken, and the window thread shows it)."""
        self.spice_state = "off" if spice is None else ("connected" if spice.connected else "connecting")
        self._spice_event: str | None = None
        if spice is None:
            return
        previous = spice.client.on_state

        def on_state(state: str, detail: str) -> None:
            self._spice_event = state
            self.win.wake()
            if previous is not None:
                previous(state, detail)
        spice.client.on_state = on_state
        # The guest's clipboard arrived (GlfwClipboard, wired by the input's attach, puts it on ours)
        text_hook, image_hook = spice.client.on_clipboard_text, spice.client.on_clipboard_image

        def on_text(text: str) -> None:
            if text_hook is not None:
                text_hook(text)
                self.post_alert("clipboard", f"Clipboard received from the VM ({len(text)} characters)")

        def on_image(kind: int, data: bytes) -> None:   # (GlfwClipboard takes text only: no image hook)
            if image_hook is not None:
                image_hook(kind, data)
                self.post_alert("clipboard", f"Clipboard image received from the VM ({len(data) // 1024} KiB)")
        spice.client.on_clipboard_text = on_text
        spice.client.on_clipboard_image = on_image

    def _audio_stats(self) -> dict | None:
        if self.audio is None:
            return None
        try:
            return self.audio.stats()
        except Exception:   # the audio threads' state is read racily; a bad read is no reason to fail
            log.debug("audio stats unavailable", exc_info=True)
            return {}

    def _toggle_overlay_mode(self) -> None:
        self.set_overlay_mode(not self.overlay_mode)

    def set_overlay_mode(self, on: bool) -> None:
        """Overlay mode (Looking Glass's ScrollLock+O): the mouse drags the panels, nothing goes to the VM;
        leaving it saves the panels' positions in the config folder."""
        if on == self.overlay_mode:
            return
        self.overlay_mode = self.gui.interactive = on
        if on and self.controller is not None:
            self.controller.set_captured(False)
        if not on:
            self.gui.mouse_button(0, False)
            self.gui.save_positions(overlay_positions_path())
        log.info("overlay mode %s", "on" if on else "off")
        self.win.dirty = True

    def _on_input(self, event) -> None:
        from kvmfr_client.input.events import BTN_LEFT, ButtonEvent, KeyEvent, PointerEvent
        if self.overlay_mode:
            escape_held = self.controller is not None and self.controller.escape_held_since is not None
            match event:
                case PointerEvent(x, y):
                    fw, fh = self.win.size()
                    ww, wh = self.win.window_size()
                    self.gui.mouse_pos(x * fw / max(ww, 1), y * fh / max(wh, 1))
                    self.win.dirty = True
                    return
                case ButtonEvent(code, pressed):
                    if code == BTN_LEFT:
                        self.gui.mouse_button(0, pressed)
                        self.win.dirty = True
                    return
                case KeyEvent() if event.code == KEY_ESC and not escape_held:
                    if event.pressed:
                        self.set_overlay_mode(False)
                    return
                case KeyEvent() if not escape_held and self.controller is not None \
                        and event.code != self.controller.escape_key:
                    return      # typing in overlay mode does not reach the VM
        if self._to_input is not None:
            self._to_input(event)

    def alert(self, kind: str, text: str, seconds: float = ALERT_S) -> None:
        """A short message at the top of the window (win:alerts), gone after ``seconds``; ``kind`` one of
        ALERT_KINDS. Window thread only: other threads call :meth:`post_alert`."""
        if kind not in ALERT_KINDS:
            log.debug("alert of unknown kind %r shown as info", kind)
            kind = "info"
        log.info("alert (%s): %s", kind, text)
        if self.alerts_on:
            self._alert = (text, time.monotonic() + seconds, kind)
            if len(self.alerts_shown) < MAX_ALERTS_KEPT:
                self.alerts_shown.append([kind, text])
            self.win.dirty = True

    def post_alert(self, kind: str, text: str, seconds: float = ALERT_S) -> None:
        """:meth:`alert` from any thread (the SPICE clipboard, the microphone): shown at the next redraw."""
        with self._posted_lock:
            if len(self._posted_alerts) < MAX_ALERTS_KEPT:   # a runaway caller cannot grow it without end
                self._posted_alerts.append((str(kind), str(text)[:ALERT_MAX_CHARS], float(seconds)))
        self.win.wake()

    def _input_changed(self, ctl) -> None:
        if ctl.captured != self._captured:
            self._captured = ctl.captured
            self.alert("capture", "Capture on" if ctl.captured else "Capture off")

    def _request_quit(self) -> None:
        self._quit = True
        self.win.close_soon()

    def _to_guest(self, x: float, y: float):
        from kvmfr_client.viewer import layout
        r = self.renderer
        if not r.has_frame:
            return None
        fw, fh = self.win.size()
        ww, wh = self.win.window_size()
        # glfw reports the pointer in window coordinates; the picture is placed in framebuffer pixels
        x, y = x * fw / max(ww, 1), y * fh / max(wh, 1)
        fx, fy = layout.window_to_frame(x, y, r.width, r.height, fw, fh, r.placement(fw, fh))
        # guest pointer coordinates are in desktop pixels, which a downscaling host makes bigger
        sw, sh = r.cursor.screen or (r.width, r.height)
        return fx * sw / r.width, fy * sh / r.height

    # ---- loop ------------------------------------------------------------------------------------

    def loop(self) -> int:
        # Ctrl+C and SIGTERM close the window like its close button: stats, snapshot and clean-up still
        # happen, exit status 0. (The handler runs on this thread, between glfw waits of at most 0.25 s.)
        with exits.on_stop_signals(lambda _signum: (self.win.close_soon(), self.win.wake())):
            try:
                self._run_loop()
            finally:
                self._finish()
        return exits.OK

    def _run_loop(self) -> None:
        exit_after = _arg(self.args, "exit_after")
        deadline = time.monotonic() + exit_after if exit_after else None
        self.start()
        while not self.done():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            timeout = self.timeout(now)
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
            self.win.wait(timeout if self.idle() else 0)
            self.step()

    # One window's share of the loop, also driven by multi.py's loop over several windows (glfw's events
    # and waits are the process's, not a window's): start, then repeatedly wait at most timeout() (0 unless
    # idle()) and step().

    def start(self) -> None:
        self._started = True
        self.frames.start()
        self.cursor.start()
        self._last_draw = 0.0
        self._cursor_dirty = False
        from kvmfr_client.viewer.frame_pipeline import FrameRhythm
        self._pacer = FrameRhythm()   # uploads, for cursor-only redraws
        # Everything made at start (modules, GL wrappers, ImGui) is kept out of the garbage collector's
        # scans: a full collection over it cost ~10 % of the GL thread per frame (py-spy, 1080p60).
        gc.collect()
        gc.freeze()

    def done(self) -> bool:
        return self.win.should_close() or self._quit

    def timeout(self, now: float) -> float:
        """Seconds this window may sleep before it must redraw or look again."""
        last_draw = self._last_draw
        timeout = 0.1 if (self.show_stats or self.show_graphs) else 0.25
        timeout = min(timeout, self._ui_due(now))
        if self.overlay_mode:
            timeout = min(timeout, max(0.0, last_draw + OVERLAY_FRAME_S - now))
        if self._cursor_dirty:
            timeout = min(timeout, max(0.0, _cursor_due_at(self._pacer, last_draw) - now))
        if self.fps_min > 0:
            timeout = min(timeout, max(0.0, last_draw + 1.0 / self.fps_min - now))
        if self._guest_res_due is not None:
            timeout = min(timeout, self._guest_res_due)
        return timeout

    def idle(self) -> bool:
        return self.frames.take() is None and not self.win.dirty

    def step(self) -> None:
        """After the wait: take the frame, cursor, input and texts, and redraw when anything changed."""
        if self.frames.error is not None:
            raise self.frames.error
        self.input.poll()
        new_frame = self._upload_pending()
        if new_frame:
            self._pacer.frame(time.monotonic())
        self._cursor_dirty |= self._apply_cursor()
        changed = self._update_texts()
        self._guest_res_due = self._tick_guest_res()
        now = time.monotonic()
        last_draw = self._last_draw
        due = self.fps_min > 0 and now - last_draw >= 1.0 / self.fps_min
        due |= self.overlay_mode and now - last_draw >= OVERLAY_FRAME_S
        # A cursor-only change waits at least CURSOR_REDRAW_INTERVAL_S after the last redraw, and while
        # frames flow until the next frame is late, so a cursor update that trails its frame (hosts post
        # both together) shares the next frame's redraw (FrameRhythm).
        cursor_due = self._cursor_dirty and now >= _cursor_due_at(self._pacer, last_draw)
        if new_frame or changed or self.win.dirty or due or cursor_due:
            self._draw(new_frame)
            self._last_draw = time.monotonic()
            self._cursor_dirty = False

    def _upload_pending(self) -> bool:
        ready = self.frames.take()
        if ready is None:
            return False
        f = ready.frame
        r = self.renderer
        try:
            same = (r.ftype == f.type and r.width == f.width and r.height == f.height)
            damage = None
            if (f.damage and same and self._tex_serial is not None
                    and f.serial == (self._tex_serial + 1) & 0xFFFFFFFF):
                damage = f.damage
            light = self._light_for(f)
            t0 = time.perf_counter()
            if ready.slot is not None and f.damage_only and damage is None:
                # Only the damage rectangles are in the pixel buffer, but the texture does not hold the
                # frame before: show nothing of it, and have the next frame copied whole.
                self.frames.force_full()
                return False
            kind = r.upload(f.type, f.width, f.height, f.pixels, f.flags, damage, 90 * int(f.rotation), light,
                            slot=ready.slot)
            self.stats.upload.add((time.perf_counter() - t0) * 1000.0)
        finally:
            # The next frame's destination: a pixel buffer on the pbo path (None: the frames thread's own).
            self.frames.release(r.next_destination(f.pixels.shape[0], f.pixels.strides[0]))
        now = time.monotonic()
        if kind == "damage":
            self.stats.damage_uploads += 1
        self._tex_serial = f.serial
        if self._first_serial is None:
            self._first_serial = f.serial
        if self._frame_meta is not None and self._frame_meta.pending:
            self.stats.superseded += 1
        self.stats.frame_received(now)
        self.stats.dropped = self.frames.dropped
        if f.t_copy_end_ns and f.t_copy_start_ns:
            self.stats.copy.add((f.t_copy_end_ns - f.t_copy_start_ns) / 1e6)
        prev = self._frame_meta
        self._frame_meta = FrameMeta.of(f, ready.t_capture_us, int(now * 1e9))
        self.renderer.cursor.screen = (f.screen_width, f.screen_height) if f.screen_width else None
        self._guest_asks(int(f.flags))   # identity block
        if self.auto_resize and (prev is None or (prev.width, prev.height) != (f.width, f.height)):
            self.win.resize_pixels(f.width, f.height)   # 1:1 in device pixels at any output scale
        return True

    def _tick_guest_res(self) -> float | None:
        s = self.session
        host = s.host if s.state is SessionState.CONNECTED else None
        return self.guest_res.tick(host.session_id if host is not None else None,
                                   host is not None and host.can_set_window_size, self.win.size())

    def _light_for(self, f):
        """The HDR mapping's facts for frame ``f`` (KVMFR 34's SDR white level and HDR metadata when the
        host gives them); the last answer is kept, as hosts repeat the same facts frame after frame."""
        key = (f.sdr_white_level, f.hdr_metadata if f.flags & FrameFlags.HDR_METADATA else None)
        if key != self._light_key:
            self._light_key = key
            self._light = hdr.light_for(self.cfg["egl:peakLuminance"], *key)
            log.debug("HDR mapping: peak %.0f nits (%s), SDR white %.0f nits", self._light.peak_nits,
                      self._light.source, self._light.sdr_white_nits)
        return self._light

    def _apply_cursor(self) -> bool:
        st = self.cursor.take()
        if st is None:
            return False
        c = self.renderer.cursor
        if st.shape is not None and st.shape_serial != self._shape_serial:
            c.set_shape(st.shape)
            self._shape_serial = st.shape_serial
            self._shape_type = int(st.shape.type)
        c.move(st.x, st.y)
        c.visible = st.visible
        c.sdr_white_level = st.sdr_white_level
        return True

    def _update_texts(self) -> bool:
        s = self.session
        if self._on_mapped is not None and s.shm_size:   # the file is mapped for the first time
            hook, self._on_mapped = self._on_mapped, None
            hook()
        state = s.state
        event, self._spice_event = self._spice_event, None
        if event is not None and event != self.spice_state:
            text = spice_alert(self.spice_state, event)
            self.spice_state = event
            if text:
                self.alert("spice", text)
        status = status_lines(state, s.host, self.path, s.status_message, self.renderer.has_frame,
                              self._file_size() if not s.shm_size else -1)
        if status:
            status.append(spice_line(self.spice_state))
            status.append(audio_line(self._audio_stats()))
        banner = banner_lines(state, self._frame_meta, s.shm_size)
        changed = status != self.status_text or banner != self.banner_text
        self.status_text, self.banner_text = status, banner
        if self.show_stats:
            # Refresh the numbers 4 times a second: every refresh redraws.
            now = time.monotonic()
            if now - self._stats_refreshed >= 0.25 or not self.stats_text:
                self._stats_refreshed = now
                lines = self.stats.overlay_lines()
                changed |= lines != self.stats_text
                self.stats_text = lines
        elif self.stats_text:
            self.stats_text = []
            changed = True
        now = time.monotonic()
        if self.show_graphs and now - self._stats_refreshed >= 0.25:
            self._stats_refreshed = now
            changed = True
        since = self.controller.escape_held_since if self.controller is not None else None
        help_shown = since is not None and now - since >= self.help_delay_s
        if help_shown != self.help_shown:
            self.help_shown, changed = help_shown, True
        if self._alert is not None and now >= self._alert[1]:
            self._alert, changed = None, True
        with self._posted_lock:
            posted, self._posted_alerts = self._posted_alerts, []
        for kind, text, seconds in posted:
            self.alert(kind, text, seconds)
            changed = True
        if s.session_restarts > self._restarts_seen:
            self._restarts_seen = s.session_restarts
            self.alert("host", "The host restarted: new session")
            changed = True
        self._desktop_tick(state)   # identity block
        title = window_title(self._title_head(state, s.host), state, s.host)
        if title != getattr(self, "_title", None):
            self._title = title
            self.win.set_title(title)
        return changed

    def _ui_due(self, now: float) -> float:
        """Seconds until the overlay must change by itself (help due, alert expiring); 1 when nothing."""
        due = 1.0
        since = self.controller.escape_held_since if self.controller is not None else None
        if since is not None and not self.help_shown:
            due = min(due, max(0.0, since + self.help_delay_s - now))
        if self._alert is not None:
            due = min(due, max(0.0, self._alert[1] - now))
        return due

    def _file_size(self) -> int | None:
        """The shared-memory file's size while it is not mapped (None: missing; -1: not a regular file)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError:
            return -1
        return st.st_size if stat.S_ISREG(st.st_mode) else -1

    def panels(self) -> list:
        """What the overlay shows now; [] when nothing (then no ImGui frame is made)."""
        from kvmfr_client.viewer.gui import Panel
        out = []
        if self.stats_text:
            out.append(Panel("stats", "", self.stats_text, anchor="topleft", movable=True))
        if self.banner_text:
            out.append(Panel("banner", self.banner_text[0], self.banner_text[1:], anchor="bottom",
                             colour=WARN_COLOUR))
        if self.show_graphs:
            st = self.stats
            plots = [("copy", st.copy.recent), ("upload", st.upload.recent), ("draw", st.draw.recent),
                     ("swap", st.swap.recent)]
            if st.latency.recent:
                plots.append(("end to end", st.latency.recent))
            plots.append(("CPU per frame", st.cpu.recent))
            audio = self._audio_stats()
            if audio and "queued_ms" in audio:
                self.audio_queued.add(audio["queued_ms"])
                plots.append(("audio queued", self.audio_queued.recent))
            if st.host_stages is not None:
                plots += [(f"host {name}", series.recent) for name, series in st.host_stages.items()]
            now = time.monotonic()
            out.append(Panel("graphs", f"UPS {st.ups.per_second(now):.1f}   FPS {st.fps.per_second(now):.1f}",
                             anchor="topright", plots=plots, movable=True))
        if self.overlay_mode:
            out.append(Panel("settings", "Settings", anchor="center", movable=True, build=self.settings.build))
            out.append(Panel("overlay-mode", "Overlay mode", ["Drag the panels to move them; Esc leaves."],
                             anchor="bottom", colour=WARN_COLOUR))
        if self._alert is not None:
            out.append(Panel("alert", self._alert[0], anchor="top",
                             colour=WARN_COLOUR if self._alert[2] in WARN_ALERTS else (1.0, 1.0, 1.0, 1.0)))
        if self.help_shown and self.controller is not None:
            rows = [(key_label(keys), what) for keys, what in self.controller.help()]
            out.append(Panel("help", "Key bindings", anchor="center", rows=rows))
            return out     # over the status screen, which comes back when the key is let go
        if self.status_text:
            ok = self.status_text[0].startswith(("Connected", "Waiting for the host"))
            out.append(Panel("status", self.status_text[0], self.status_text[1:], anchor="center",
                             colour=(1.0, 1.0, 1.0, 1.0) if ok else WARN_COLOUR))
        return out

    def _draw(self, new_frame: bool) -> None:
        fw, fh = self.win.size()
        if fw <= 0 or fh <= 0:     # minimised
            return
        t0 = time.perf_counter()
        path = self.renderer.draw(fw, fh, _Overlays(self))
        t_drawn_ns = time.monotonic_ns()
        t_drawn = time.perf_counter()
        self.win.swap()
        t_swapped_ns = time.monotonic_ns()
        t1 = time.perf_counter()
        self.win.dirty = False
        self.stats.redraws += 1
        self.stats.fps.tick(time.monotonic())
        self.stats.paths[path] += 1
        self.stats.present.add((t1 - t0) * 1000.0)
        self.stats.draw.add((t_drawn - t0) * 1000.0)
        self.stats.swap.add((t1 - t_drawn) * 1000.0)
        meta = self._frame_meta
        if meta is not None and meta.pending:
            meta.pending = False
            self.stats.frames_shown += 1
            cpu = time.process_time()
            if self._cpu_at_shown is not None:
                self.stats.cpu.add((cpu - self._cpu_at_shown) * 1000.0)
            self._cpu_at_shown = cpu
            if self.timings is not None:
                self.timings.frame_shown(meta.serial, meta.t_capture_us, *meta.t_ns, t_drawn_ns, t_swapped_ns,
                                         meta.host_timings)
            if meta.host_timings is not None:
                self.stats.host_frame_shown(meta.host_timings, time.monotonic())
            if meta.t_capture_us is not None:
                now_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
                lat = now_us - meta.t_capture_us
                if 0 <= lat < 10_000_000:
                    self.stats.latency.add(lat / 1000.0)

    def _finish(self) -> None:
        """Snapshot and stats (of a viewer that was started), then the clean-up, which happens whatever
        failed before it (a --stats-json to a bad path still closes the window and ends the inhibit)."""
        started = getattr(self, "_started", False)   # MultiViewer may finish a viewer it never started
        try:
            thread_cpu = None
            try:
                snapshot = _arg(self.args, "snapshot")
                if started and snapshot:
                    fw, fh = self.win.size()
                    self.renderer.draw(fw, fh, _Overlays(self))
                    save_snapshot(snapshot, self.renderer.readback(fw, fh))
                if started:
                    thread_cpu = thread_cpu_s({"main": threading.main_thread(), "frames": self.frames.thread,
                                                "cursor": self.cursor.thread})
            finally:
                self.frames.stop()
                self.cursor.stop()
            if started:
                if self.timings is not None:
                    self.timings.write(_arg(self.args, "timings_json"))
                stats_json = _arg(self.args, "stats_json")
                if stats_json:
                    self._write_stats_json(stats_json, thread_cpu)
        finally:
            try:
                self.session.close()
                if self.overlay_mode:
                    self.gui.save_positions(overlay_positions_path())
                self.gui.close()
                self.renderer.close()
            finally:
                self.inhibitor.close()   # identity block; never raises
                self.win.destroy()

    def _write_stats_json(self, stats_json: str, thread_cpu) -> None:
        s = self.session
        self.stats.sessions = 1 + s.session_restarts if s.host is not None else 0
        self.stats.error_counts = s.errors_by_kind()
        fw, fh = self.win.size()
        self.stats.write_json(stats_json, {
            "desktop": self._desktop_stats(),   # identity block
            "window_coords": list(self.win.window_size()), "content_scale": list(self.win.content_scale()),
            "window": [fw, fh], "title": getattr(self, "_title", ""), "fullscreen": self.win.fullscreen, "show_stats": self.show_stats,
            "quit_by_key": self._quit, "platform": self.platform, "shm": self.path,
            "state": s.state.name, "host": s.host.describe() if s.host else None,
            "session_id": s.host.session_id if s.host else None,
            "protocol": s.host.protocol | {"name": s.host.protocol_name} if s.host else None,
            "guest_res_sent": [list(size) for size in self.guest_res.sent],
            "guest_res_errors": self.guest_res.errors,
            "first_serial": self._first_serial,
            "last_serial": self._frame_meta.serial if self._frame_meta else None,
            "frame": [self._frame_meta.width, self._frame_meta.height] if self._frame_meta else None,
            "cursor_events": self.cursor.events, "thread_cpu_s": thread_cpu,
            "cursor": {"x": self.renderer.cursor.x, "y": self.renderer.cursor.y,
                       "visible": self.renderer.cursor.visible, "type": self._shape_type},
            "status": self.status_text, "banner": self.banner_text,
            "overlay": {name: {"text": d.text, "rect": list(d.rect), "clipped": d.clipped}
                        for name, d in self.gui.drawn.items()},
            "overlay_frames": self.gui.frames,
            "overlay_seen": {name: {"text": d.text, "rect": list(d.rect)} for name, d in self.gui.seen.items()},
            "show_graphs": self.show_graphs, "spice_state": self.spice_state, "overlay_mode": self.overlay_mode,
            "overlay_items": {k: list(v) for k, v in self.gui.items.items()},
            "settings_changes": self.settings.changes, "render_filter": self.renderer.options.filter,
            "render_path": self.renderer.last_path, "overlay_font": self.gui.font_path,
            "overlay_font_px": self.gui.font_px, "alerts": self.alerts_shown,
            "filters": list(self.renderer.options.filters or []), "vsync": self.settings.vsync,
            "cursor_keep_size": self.renderer.cursor.keep_size, "audio": self._audio_stats(),
            "upload_path": self.renderer.upload_path, "upload_reason": self.renderer.upload_reason,
            "cpu_ms_per_shown_frame_steady": _steady_cpu_ms(self.stats.cpu.values)})


def _cursor_due_at(rhythm, last_draw: float) -> float:
    """When a cursor-only change is redrawn: CURSOR_REDRAW_INTERVAL_S after the last redraw, and while frames
    come steadily not before the next frame is late, since that frame's redraw shows the cursor too
    (:class:`kvmfr_client.viewer.frame_pipeline.FrameRhythm`)."""
    due = last_draw + CURSOR_REDRAW_INTERVAL_S
    late = rhythm.late_at()
    return max(due, late) if late is not None else due


def _steady_cpu_ms(per_frame) -> float | None:
    """Process CPU per shown frame once running: the mean of the per-frame samples after the first second's
    60 (start-up, the first GL uploads and the ImGui font are not what each frame costs)."""
    if len(per_frame) <= 120:
        return None
    return round(float(per_frame[60:].mean()), 3)


def overlay_positions_path():
    """``$XDG_CONFIG_HOME/kvmfr-client/overlay.json``: where overlay mode keeps the panels' positions."""
    from kvmfr_client.viewer.filters import preset_dir
    return preset_dir().parent / "overlay.json"


_KEY_NAMES = {"scrolllock": "ScrollLock", "leftmeta": "Left Windows", "rightmeta": "Right Windows",
              "pause": "Pause", "rightctrl": "Right Ctrl", "leftctrl": "Left Ctrl", "capslock": "CapsLock",
              "numlock": "NumLock", "sysrq": "SysRq", "esc": "Esc", "pageup": "PageUp", "pagedown": "PageDown"}


def key_label(keys: str) -> str:
    """The controller's key names as a keyboard says them: "scrolllock+f1" -> "ScrollLock+F1"."""
    def one(name: str) -> str:
        if name in _KEY_NAMES:
            return _KEY_NAMES[name]
        if len(name) == 1 or (name[0] == "f" and name[1:].isdigit()):
            return name.upper()
        return name[:1].upper() + name[1:]
    return "+".join(one(part) for part in keys.split("+"))


class _Overlays:
    """Draws the overlay UI (gui.py) from the renderer, after the picture and the cursor."""

    def __init__(self, viewer: _Viewer):
        self.v = viewer

    def draw(self, renderer, win_w: int, win_h: int) -> None:
        v = self.v
        now = time.monotonic()
        v.gui.draw(v.panels(), win_w, win_h, now - v._last_gui_draw)
        v._last_gui_draw = now
