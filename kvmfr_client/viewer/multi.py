"""Several displays in one ``kvmfr-view`` process (``app:displays``): one window per shared-memory file.

Each window is an :class:`kvmfr_client.viewer.app._Viewer` of its own (its session, frame and cursor
threads, renderer, overlay, stats, status screen and title "display n of N"); this module only drives them
from one loop, since glfw's events and waits belong to the process, not to a window: one wait for all,
then each window's step with its GL context current.

What they share: the SPICE connection, its clipboard (told of every window's focus, so a copy on the host
reaches the guest whichever window is focused next) and the audio (started once by the caller). Input goes where glfw
sends it, to the focused window's controller, whose sink tags absolute mouse positions with that window's
display (SPICE MOUSE_POSITION's display_id); only the focused window may change SPICE's mouse mode, so
two windows never argue over it. Closing one window leaves the others (``win:closeAll``: all close);
ScrollLock+Q, Ctrl+C and SIGTERM close all.
"""

from __future__ import annotations

import copy
import errno
import logging
import os
import sys
import threading
import time
from collections import ChainMap
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from kvmfr_client.config import exits

log = logging.getLogger(__name__)

# Flags naming an output file: with several displays each window writes its own, "-<n>" before the suffix.
PER_DISPLAY_FILES = ("stats_json", "timings_json", "snapshot")


def display_file(path: str, n: int) -> str:
    """``stats.json`` for display ``n`` (from 0) -> ``stats-<n+1>.json``."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{n + 1}{p.suffix}"))


class DisplaySink:
    """The shared input sink (the SPICE session) as one window sees it: absolute positions are on display
    ``display_id``, and a mouse-mode request goes out only while ``focused()``."""

    def __init__(self, sink, display_id: int, focused: Callable[[], bool]):
        self._sink = sink
        self.display_id = display_id
        self._focused = focused

    def position(self, x: int, y: int, display_id: int = 0) -> None:
        self._sink.position(x, y, self.display_id)

    def set_mouse_mode(self, mode) -> None:
        if self._focused():
            self._sink.set_mouse_mode(mode)

    def __getattr__(self, name: str):   # keys, buttons, wheel, relative motion: the one keyboard and mouse
        return getattr(self._sink, name)


def run(cfg: Mapping[str, Any], paths: Sequence[str], args: Any = None, input_hook=None,
        on_mapped: Callable[[str], None] | None = None, audio=None) -> int:
    """One window per file in ``paths`` until all are closed; the exit code. ``input_hook``: the
    :class:`kvmfr_client.input.ViewerInput` with the SPICE session (started by the caller, shared by all the
    windows); ``on_mapped(path)``: called when a display's file is first mapped; ``audio``: as in
    :func:`kvmfr_client.viewer.app.run`."""
    from kvmfr_client.viewer import app
    return app.run(cfg, args, input_hook, None, audio,
                   viewer=lambda platform: MultiViewer(cfg, paths, args, input_hook, platform, on_mapped, audio))


def check_display_files(paths: Sequence[str]) -> None:
    """Raise :class:`kvmfr_client.core.errors.ShmNotUsable` for the first of ``paths`` that can never be
    shown (a folder, a FIFO, no permission to open it for reading and writing); a file not there yet is
    waited for, as with one display."""
    from kvmfr_client.core import errors
    from kvmfr_client.core.session import check_shm_file
    for path in paths:
        if check_shm_file(path) is None:    # raises for what can never be shared memory (no open: FIFOs)
            continue
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOCTTY)
        except FileNotFoundError:
            continue
        except PermissionError:
            raise errors.ShmNotUsable(f"cannot open {path} for reading and writing: permission denied",
                                      field="path", value=errno.EACCES) from None
        except OSError as exc:
            raise errors.ShmNotUsable(f"cannot open {path}: {exc.strerror}", field="path",
                                      value=exc.errno or 0) from None
        os.close(fd)


class MultiViewer:
    def __init__(self, cfg, paths: Sequence[str], args, input_hook, platform: str,
                 on_mapped: Callable[[str], None] | None = None, audio=None):
        from kvmfr_client.input import ViewerInput
        from kvmfr_client.viewer.app import _Viewer
        self.cfg = cfg
        self.args = args
        self.close_all = cfg["win:closeAll"]
        self.viewers: list[_Viewer] = []
        self.failed = False
        base = getattr(getattr(input_hook, "controller", None), "sink", None)
        self.spice = getattr(input_hook, "spice", None)
        self._modes: tuple[int, int] | None = None   # SPICE's (supported, current) mouse modes, latest
        self._modes_new = False
        self._lock = threading.Lock()
        self._focused: int | None = None
        n_all = len(paths)
        check_display_files(paths)   # a bad file: one line and status 3 before any window opens
        try:
            for n, path in enumerate(paths):
                hook = input_hook if n == 0 else None
                sink = None if base is None else DisplaySink(base, n, self._focus_test(n))
                if n == 0 and input_hook is not None and sink is not None:
                    input_hook.controller.sink = sink
                elif n > 0 and sink is not None:
                    # spice:captureOnStart grabs the first window only: one grab at a time
                    hook = ViewerInput(ChainMap({"spice:captureOnStart": False}, cfg), None, sink=sink)
                mapped = None if on_mapped is None else (lambda p=path: on_mapped(p))
                self.viewers.append(_Viewer(cfg, self._args_for(n), hook, platform, mapped, audio,
                                            shm=path, display=(n, n_all)))
        except BaseException:
            self._finish_all()
            raise
        self._hook_mouse_modes()
        self._share_clipboard()

    def _share_clipboard(self) -> None:
        """The VM has one clipboard, the first window's (its ViewerInput holds the SPICE session): every
        window's controller tells it about its focus and polls it. Only the first window's input is stopped
        (by the caller, at the end), so the clipboard outlives any other window closed before. A focus move
        between two of our windows is a loss and a gain like any other: on Wayland, where the clipboard tool
        itself takes the focus, a gain right after that tool ran is not taken for the user's (clipboard.py)."""
        clipboard = getattr(self.viewers[0].controller, "clipboard", None) if self.viewers else None
        if clipboard is None:
            return
        for v in self.viewers[1:]:
            if v.controller is not None:
                v.controller.clipboard = clipboard

    def _focus_test(self, n: int) -> Callable[[], bool]:
        def focused() -> bool:
            return n < len(self.viewers) and self.viewers[n].controller is not None \
                and self.viewers[n].controller.focused
        return focused

    def _args_for(self, n: int):
        if self.args is None:
            return None
        args = copy.copy(self.args)
        for name in PER_DISPLAY_FILES:
            if getattr(args, name, None):
                setattr(args, name, display_file(getattr(args, name), n))
        return args

    # ---- SPICE's mouse modes reach every window's controller ------------------------------------------

    def _hook_mouse_modes(self) -> None:
        """Display 1's ViewerInput follows SPICE's mouse modes by itself; the others hear them from here
        (SPICE calls back on its own thread: stored, the loop applies them)."""
        spice = self.spice
        if spice is None or len(self.viewers) < 2:
            return
        client = spice.client
        previous = client.on_mouse_mode

        def on_mouse_mode(supported: int, current: int) -> None:
            with self._lock:
                self._modes, self._modes_new = (supported, current), True
            self.viewers[0].win.wake()
            if previous is not None:
                previous(supported, current)
        client.on_mouse_mode = on_mouse_mode
        main = getattr(client, "main", None)     # the modes may have come before this hook
        if main is not None and main.init is not None:
            on_mouse_mode(main.supported_mouse_modes, main.mouse_mode)

    def _apply_mouse_modes(self, open_: list) -> None:
        with self._lock:
            modes, new = self._modes, self._modes_new
            self._modes_new = False
        focused = next((n for n, v in enumerate(self.viewers) if v in open_ and v.controller is not None
                        and v.controller.focused), None)
        if modes is None:
            self._focused = focused
            return
        for n, v in enumerate(self.viewers):
            if n > 0 and new and v in open_ and v.controller is not None:
                v.controller.set_mouse_modes(*modes)
        if focused != self._focused:
            self._focused = focused
            # the newly focused window now decides the mode: it asks for its own if it differs
            if focused is not None:
                self.viewers[focused].controller.set_mouse_modes(*modes)

    # ---- the loop ------------------------------------------------------------------------------------

    def loop(self) -> int:
        from kvmfr_client.viewer.window import Window
        with exits.on_stop_signals(lambda _signum: (self._close(self.viewers), Window.wake())):
            try:
                self._run()
            finally:
                self._finish_all()
        return exits.SHM if self.failed else exits.OK

    def _close(self, viewers) -> None:
        for v in viewers:
            if v.win.handle:
                v.win.close_soon()

    def _run(self) -> None:
        import glfw

        from kvmfr_client.core import errors
        from kvmfr_client.viewer.window import Window
        exit_after = getattr(self.args, "exit_after", None) if self.args is not None else None
        deadline = time.monotonic() + exit_after if exit_after else None
        for v in self.viewers:
            glfw.make_context_current(v.win.handle)
            v.start()
        open_ = list(self.viewers)
        while open_:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            timeout = min(v.timeout(now) for v in open_)
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
            Window.wait(timeout if all(v.idle() for v in open_) else 0)
            self._apply_mouse_modes(open_)
            for v in list(open_):
                if v.done():
                    if v._quit or self.close_all:     # ScrollLock+Q, or win:closeAll: every window
                        self._close(open_)
                        return
                    log.info("%s closed; %d window(s) left", v.path, len(open_) - 1)
                    open_.remove(v)
                    self._finish(v)
                    continue
                glfw.make_context_current(v.win.handle)
                try:
                    v.step()
                except errors.KvmfrError as exc:   # this display's memory cannot be used: the others go on
                    log.debug("cannot use %s: %r", v.path, exc)
                    print(f"kvmfr-view: {exc}", file=sys.stderr)
                    self.failed = True
                    open_.remove(v)
                    self._finish(v)

    def _finish(self, v) -> None:
        if getattr(v, "_finished", False) or not v.win.handle:
            return
        import glfw
        v._finished = True
        glfw.make_context_current(v.win.handle)
        if v.controller is not None:
            v.controller.release_all()   # keys held in this window are not left down in the guest
        try:
            v._finish()
        except Exception:   # one window's clean-up must not keep the others from theirs
            log.exception("closing %s's window failed", v.path)

    def _finish_all(self) -> None:
        for v in self.viewers:
            self._finish(v)
