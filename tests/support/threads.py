"""A loop that a test helper runs beside the test (a recorder, a sender) for as long as a ``with`` block."""

from __future__ import annotations

import threading


class LoopThread:
    """:meth:`_run` on a named daemon thread from the start of the ``with`` block; it loops until ``_stop``
    is set. At the block's end (or on :meth:`stop`, once) the loop is told to stop and given
    ``JOIN_SECONDS`` to end, then :meth:`_close` releases what it used (a socket, a stream), even when the
    loop is still blocked in it: closing is what wakes it then."""

    JOIN_SECONDS = 3.0

    def __init__(self, name: str):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.JOIN_SECONDS)
        self._close()

    def _run(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass
