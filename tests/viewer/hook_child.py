"""Runs the viewer with a recording input hook; writes what the hook saw as JSON at exit.

    python -m tests.viewer.hook_child OUT.json [kvmfr-view arguments...]
"""

from __future__ import annotations

import json
import sys


class Recorder:
    def __init__(self) -> None:
        self.events: list[list] = []
        self.view = None

    def attach(self, view) -> None:
        self.view = view

    def on_key(self, key, scancode, action, mods):
        self.events.append(["key", key, action])

    def on_mouse_button(self, button, action, mods):
        self.events.append(["button", button, action])

    def on_cursor_pos(self, x, y):
        guest = self.view.to_guest(x, y) if self.view is not None else None
        self.events.append(["pos", x, y, list(guest) if guest else None])

    def on_scroll(self, dx, dy):
        self.events.append(["scroll", dx, dy])

    def on_focus(self, focused):
        self.events.append(["focus", focused])

    def on_enter(self, entered):
        self.events.append(["enter", entered])


def main() -> int:
    out = sys.argv[1]
    from kvmfr_client import config
    from kvmfr_client.cli.view import build_parser
    from kvmfr_client.viewer import run
    args = build_parser().parse_args(sys.argv[2:])
    cfg = config.load(overrides=list(args.options) + ([f"app:shmFile={args.shm}"] if args.shm else []))
    rec = Recorder()
    rc = run(cfg, args, input_hook=rec)
    with open(out, "w") as f:
        json.dump({"rc": rc, "events": rec.events}, f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
