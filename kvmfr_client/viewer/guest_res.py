"""``win:setGuestRes``: the guest's display follows the window (Looking Glass master's option).

When the host advertises it (:attr:`kvmfr_client.core.session.HostInfo.can_set_window_size`, KVMFR 34's
WINDOWSIZE feature), the window's size in device pixels is sent once when a session connects and again
``DEBOUNCE_S`` after the last resize (a drag sends one message, not one per step). The guest's new
resolution then arrives as a format change, like any host restart. Pure logic with an injectable clock, so
the debounce is tested without a window.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.3
MAX_SIDE = 16384   # no guest display is bigger; a window (or a bogus size) beyond it is not sent


class GuestResizer:
    """Decides when to send the window's size. Call :meth:`tick` every loop iteration."""

    def __init__(self, send: Callable[[int, int], None], enabled: bool = True, debounce_s: float = DEBOUNCE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.send = send
        self.enabled = enabled
        self.debounce_s = debounce_s
        self.clock = clock
        self.sent: list[tuple[int, int]] = []   # every size sent (tests, stats)
        self.errors = 0
        self._session: int | None = None   # the session the last size went to
        self._last: tuple[int, int] | None = None   # the size last sent (or tried) in that session
        self._seen: tuple[int, int] | None = None   # the window size at the last tick
        self._due: float | None = None
        self._logged = False

    def tick(self, session_id: int | None, can: bool, size: tuple[int, int]) -> float | None:
        """``session_id``: the connected session's id (None: not connected); ``can``: its host takes the
        message; ``size``: the window's framebuffer size (device pixels). Returns the seconds until a send
        is due (for the caller's wait), or None."""
        if not self.enabled or session_id is None or not can:
            self._session = self._due = None
            return None
        now = self.clock()
        if session_id != self._session:          # connected (or the host restarted): send at once
            self._session, self._last, self._logged = session_id, None, False
            self._seen, self._due = size, now
        elif size != self._seen:                 # a resize: wait until it settles
            self._seen, self._due = size, now + self.debounce_s
        if self._due is None:
            return None
        if now < self._due:
            return self._due - now
        self._due = None
        w, h = size
        # Odd states: minimised (0x0) or a size no display has; the next real resize is sent.
        if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE) or size == self._last:
            return None
        self._last = size
        try:
            self.send(w, h)
            self.sent.append(size)
        except Exception as exc:   # never fatal: the picture goes on at the guest's own size
            self.errors += 1
            if not self._logged:
                self._logged = True
                log.warning("could not ask the host for a %dx%d guest display: %s", w, h, exc)
            else:
                log.debug("could not ask the host for a %dx%d guest display: %r", w, h, exc)
        return None
