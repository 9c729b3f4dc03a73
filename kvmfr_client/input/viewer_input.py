"""The viewer's input: its window's events -> :class:`InputController` -> the SPICE session.

Also the glue the controller needs from the viewer: SPICE's mouse-mode news hopped from the "spice"
thread to the window thread, the shared clipboard, and KVMFR SETCURSORPOS through the viewer's session.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .controller import InputController
from .sink import InputSink

if TYPE_CHECKING:
    from kvmfr_client.spice import SpiceThread

log = logging.getLogger(__name__)


class ViewerInput:
    """One window's input. ``spice``: the SPICE session (not started yet) that input goes to, or None
    when there is none: the escape-key combos the viewer registers still run. ``sink``: send input here
    instead of ``spice`` (tests record it)."""

    def __init__(self, cfg: Mapping[str, Any], spice: "SpiceThread | None" = None, *,
                 sink: InputSink | None = None):
        self.cfg = cfg
        self.spice = spice
        self.session = None
        self._lock = threading.Lock()
        self._pending_modes: tuple[int, int] | None = None
        self.controller = InputController(sink if sink is not None else spice, cfg,
                                          set_cursor_pos=self._set_cursor_pos)
        if spice is not None:
            # SPICE callbacks arrive on the "spice" thread; the controller lives on the window thread.
            spice.client.on_mouse_mode = self._queue_mouse_modes

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "ViewerInput":
        """With a SPICE session when ``spice:enable`` and ``spice:input`` are on, else without one."""
        spice = None
        if cfg["spice:enable"] and cfg["spice:input"]:
            from kvmfr_client.spice import spice_from_config
            spice = spice_from_config(cfg)   # it logs its own connection state
        return cls(cfg, spice)

    def add_combo(self, key: int | str, description: str, action: Callable[[], None]) -> None:
        """Run ``action`` on escape key + ``key`` (evdev code or name); see :meth:`InputController.add_combo`."""
        self.controller.add_combo(key, description, action)

    def attach(self, window, session=None) -> None:
        """Take ``window``'s input (a :class:`kvmfr_client.viewer.window.Window`); ``session``: the
        viewer's KVMFR session, for SETCURSORPOS when the pointer enters the window."""
        self.session = session
        window.set_input(self.controller.handle)
        self.controller.attach(window.handle, window.to_guest)
        if self.spice is not None and self.cfg["spice:clipboard"]:
            from .clipboard import GlfwClipboard
            self.controller.clipboard = GlfwClipboard(window.handle, self.spice, self.spice.client)

    def poll(self) -> None:
        """Call once per window-loop iteration, on the window thread."""
        with self._lock:
            modes, self._pending_modes = self._pending_modes, None
        if modes is not None:
            self.controller.set_mouse_modes(*modes)
        self.controller.poll()

    def start(self) -> "ViewerInput":
        if self.spice is not None:
            self.spice.start()
        return self

    def stop(self) -> None:
        self.controller.release_all()
        if self.spice is not None:
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
