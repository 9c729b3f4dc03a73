"""One named thread that runs a loop until stopped: the shape of every audio source and sender."""

from __future__ import annotations

import threading


class Worker:
    """Subclasses set ``thread_name``, implement ``_run`` (looping until ``self._stop`` is set) and
    ``_close`` (release sockets, mappings, streams once the thread has ended)."""

    thread_name = "audio"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if not self._thread.is_alive():   # one that did not end stays known (a driven player asks)
                self._thread = None
        self._close()

    def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:
        pass
