"""Keep the local clipboard (through GLFW) and the guest's (through the SPICE agent) in step.

Guest -> local: text the guest copied is put on the local clipboard (on the window thread, in
:meth:`poll`). Local -> guest: GLFW has no "clipboard changed" event, so the local clipboard is read when
the window gains focus (the user copied something elsewhere and came back) and offered to the guest
when it changed.
"""

from __future__ import annotations

import logging
import threading

import glfw

log = logging.getLogger(__name__)


class GlfwClipboard:
    def __init__(self, window, spice, client, to_vm: bool = True, to_local: bool = True):
        """``spice``: the SpiceThread; ``client``: its SpiceClient (created with ``clipboard=True``)."""
        self.window = window
        self.spice = spice
        self.to_vm = to_vm
        self.to_local = to_local
        self._lock = threading.Lock()
        self._from_guest: list[str] = []
        self._last: str | None = None
        client.on_clipboard_text = self._guest_text

    def _guest_text(self, text: str) -> None:  # SPICE thread
        with self._lock:
            self._from_guest.append(text)
        glfw.post_empty_event()  # wake the window loop so poll() runs soon

    def poll(self) -> None:
        """Call from the window thread's loop: apply text the guest copied to the local clipboard."""
        with self._lock:
            texts, self._from_guest = self._from_guest, []
        if texts and self.to_local:
            self._last = texts[-1]
            glfw.set_clipboard_string(self.window, texts[-1])
            log.debug("clipboard: guest -> local (%d chars)", len(texts[-1]))

    def on_focus(self, focused: bool) -> None:
        if not focused or not self.to_vm:
            return
        try:
            raw = glfw.get_clipboard_string(self.window)
        except Exception as exc:  # no owner / not text: nothing to offer
            log.debug("clipboard: cannot read the local clipboard: %r", exc)
            return
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if text and text != self._last:
            self._last = text
            self.spice.set_clipboard_text(text)
            log.debug("clipboard: local -> guest (%d chars)", len(text))
