"""What runs beside the window: the SPICE link with the input controller, and guest audio.

Both are built from the same configuration as the window, started before it and stopped after it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

log = logging.getLogger(__name__)


class ViewerInput:
    """The window's input hook: glfw events -> :class:`InputController` -> SPICE, plus the glue the
    controller needs from the viewer (window-thread hops, clipboard, KVMFR SETCURSORPOS)."""

    def __init__(self, cfg: Mapping[str, Any]):
        from kvmfr_client.input import InputController
        from kvmfr_client.spice import spice_from_config

        self.cfg = cfg
        self.session = None
        self._lock = threading.Lock()
        self._pending_modes: tuple[int, int] | None = None
        self.spice = spice_from_config(cfg)   # it logs its own connection state
        self.controller = InputController(self.spice, cfg, set_cursor_pos=self._set_cursor_pos)
        # SPICE callbacks arrive on the "spice" thread; the controller lives on the window thread.
        self.spice.client.on_mouse_mode = self._queue_mouse_modes

    # The viewer's Window calls these (see kvmfr_client/viewer/app.py).
    def __getattr__(self, name: str):
        return getattr(self.controller, name)

    def attach(self, view) -> None:
        self.controller.attach(view)
        if self.cfg.get("spice:clipboard") and getattr(view, "handle", None) is not None:
            from kvmfr_client.input.clipboard import GlfwClipboard
            self.controller.clipboard = GlfwClipboard(view.handle, self.spice, self.spice.client)

    def bind_session(self, session) -> None:
        """The viewer's KVMFR session, for SETCURSORPOS when the pointer enters the window."""
        self.session = session

    def poll(self) -> None:
        with self._lock:
            modes, self._pending_modes = self._pending_modes, None
        if modes is not None:
            self.controller.set_mouse_modes(*modes)
        self.controller.poll()

    def start(self) -> "ViewerInput":
        self.spice.start()
        return self

    def stop(self) -> None:
        self.controller.release_all()
        self.spice.stop()

    def _queue_mouse_modes(self, supported: int, current: int) -> None:
        with self._lock:
            self._pending_modes = (supported, current)

    def _set_cursor_pos(self, x: int, y: int) -> bool:
        session = self.session
        if session is None or session.host is None or not session.host.can_set_cursor_pos:
            return False
        try:
            session.set_cursor_pos(x, y, timeout=0.1)
        except Exception as exc:   # a slow or gone host must not break input
            log.info("SETCURSORPOS not delivered: %s", exc)
            return False
        return True


def start_services(cfg: Mapping[str, Any]) -> tuple[ViewerInput | None, Any]:
    """Start SPICE input (``spice:enable`` and ``spice:input``) and audio (``audio:*``) as configured."""
    viewer_input = None
    if cfg.get("spice:enable") and cfg.get("spice:input", True):
        viewer_input = ViewerInput(cfg).start()
    audio = None
    if cfg.get("audio:scream") or cfg.get("audio:spice"):
        from kvmfr_client.audio import AudioService
        from kvmfr_client.audio.priority import freeze_startup_objects
        # QEMU's SPICE server takes one client: the playback channel joins the window's session.
        audio = AudioService(cfg, spice=viewer_input.spice if viewer_input else None)
        try:
            audio.start()
        except Exception as exc:   # no sound is better than no picture: say why and go on
            log.error("audio disabled: %s", exc)
            audio = None
        # Full garbage collections of start-up objects stalled the audio threads (underruns).
        freeze_startup_objects()
    return viewer_input, audio


def stop_services(viewer_input: ViewerInput | None, audio) -> None:
    if audio is not None:
        audio.stop()
    if viewer_input is not None:
        viewer_input.stop()
