"""Runs ``kvmfr-view`` (its real SPICE input) with a stand-in for the microphone (``viewer_input.microphone``,
kvmfr_client.audio.mic.Microphone in the product) that says, 1.5 s after the viewer hooked it up, that it
went on, through the hook the viewer gives it (``on_alert``), from another thread, as the microphone does.

    python -m tests.viewer.alert_child READY_FILE [kvmfr-view arguments...]

READY_FILE is written once the viewer has hooked the stand-in up (its SPICE hooks are in place by then).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path


class MicStandIn:
    """What the viewer uses of the microphone: ``on_alert`` (set by the viewer) and ``recording``."""

    def __init__(self, ready: Path) -> None:
        self.ready = ready
        self.recording = False
        self._on_alert = None
        self._timer = threading.Timer(1.5, self._mic_on)

    @property
    def on_alert(self):
        return self._on_alert

    @on_alert.setter
    def on_alert(self, hook) -> None:
        self._on_alert = hook
        self._timer.start()
        self.ready.write_text("hooked\n")

    def stop(self) -> None:
        self._timer.cancel()

    def _mic_on(self) -> None:
        self.recording = True
        if self.on_alert is not None:
            self.on_alert("mic", "Microphone on")


def main() -> int:
    from kvmfr_client.cli.services import start_services, stop_services
    from kvmfr_client.cli.view import parse_command_line
    from kvmfr_client.viewer import run
    args, cfg = parse_command_line(sys.argv[2:])
    viewer_input, _ = start_services(cfg)
    mic = MicStandIn(Path(sys.argv[1]))
    viewer_input.microphone = mic
    try:
        return run(cfg, args, input_hook=viewer_input)
    finally:
        stop_services(viewer_input, None)


if __name__ == "__main__":
    sys.exit(main())
