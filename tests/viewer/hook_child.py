"""Runs the viewer with the real input controller over a recording SPICE sink; writes JSON at exit.

    python -m tests.viewer.hook_child OUT.json [--controller] [kvmfr-view arguments...]

Always written: ``sent`` (what the controller sent towards SPICE, scancodes) and ``combos`` (the evdev
codes of the escape-key combos). Without --controller also ``events``: every event the window handed to
the controller (keys and buttons as evdev codes, pointer positions with the guest point under them).
"""

from __future__ import annotations

import json
import sys

from kvmfr_client.input import ButtonEvent, KeyEvent, PointerEvent, ViewerInput
from tests.support.input_sink import RecordingSink


class RecordingInput(ViewerInput):
    """The viewer's input, also recording each event the window delivers before the controller sees it."""

    def __init__(self, cfg, sink) -> None:
        super().__init__(cfg, sink=sink)
        self.events: list[list] = []

    def attach(self, window, session=None) -> None:
        super().attach(window, session)
        controller = window.on_input

        def record(event) -> None:
            if isinstance(event, KeyEvent):
                self.events.append(["key", event.code, event.pressed])
            elif isinstance(event, ButtonEvent):
                self.events.append(["button", event.code, event.pressed])
            elif isinstance(event, PointerEvent):
                guest = window.to_guest(event.x, event.y)
                self.events.append(["pos", event.x, event.y, list(guest) if guest else None])
            controller(event)
        window.set_input(record)


def main() -> int:
    out = sys.argv[1]
    use_controller = sys.argv[2] == "--controller"
    if use_controller:
        del sys.argv[2]
    from kvmfr_client.cli.view import parse_command_line
    from kvmfr_client.viewer import run
    args, cfg = parse_command_line(sys.argv[2:])
    spice = RecordingSink()   # IntEnum arguments are written to JSON as numbers
    viewer_input = ViewerInput(cfg, sink=spice) if use_controller else RecordingInput(cfg, spice)
    rc = run(cfg, args, input_hook=viewer_input)
    result = {"rc": rc, "sent": spice.sent, "combos": sorted(viewer_input.controller.combos)}
    if not use_controller:
        result["events"] = viewer_input.events
    with open(out, "w") as f:
        json.dump(result, f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
