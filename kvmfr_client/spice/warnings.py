"""Rate-limited warnings: a flood of bad packets or messages must be visible in the log without drowning it."""

from __future__ import annotations

import logging
import time


class RateLimitedWarning:
    """Logs the first warning of each kind at once, then at most one per ``interval`` with a count.

    ``level`` is the logging level of the lines (an INFO event that can repeat thousands of times a
    second, like the audio player's catch-up, is limited the same way)."""

    def __init__(self, logger: logging.Logger, interval: float = 5.0, level: int = logging.WARNING):
        self._log = logger
        self._interval = interval
        self._level = level
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, kind: str, msg: str, *args) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        skipped = self._suppressed.pop(kind, 0)
        self._last[kind] = now
        if skipped:
            msg += " (%d more like it since the last report)"
            args = (*args, skipped)
        self._log.log(self._level, msg, *args)
