"""Runs the viewer with a recording input hook; writes what the hook saw as JSON at exit.

    python -m tests.viewer.hook_child OUT.json [--controller] [kvmfr-view arguments...]

With --controller the hook is the real kvmfr_client.input InputController over a recording fake SPICE.
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


class FakeSpice:
    """Records what the real InputController would send to the SPICE server."""

    def __init__(self) -> None:
        self.sent: list[list] = []

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.sent.append([name, *[a if isinstance(a, (int, float)) else str(a) for a in args]])


def main() -> int:
    out = sys.argv[1]
    use_controller = sys.argv[2] == "--controller"
    if use_controller:
        del sys.argv[2]
    from kvmfr_client import config
    from kvmfr_client.cli.view import build_parser
    from kvmfr_client.viewer import run
    args = build_parser().parse_args(sys.argv[2:])
    cfg = config.load(overrides=list(args.options) + ([f"app:shmFile={args.shm}"] if args.shm else []))
    if use_controller:
        from kvmfr_client.input.controller import InputController
        spice = FakeSpice()
        hook = InputController(spice, cfg)
        rc = run(cfg, args, input_hook=hook)
        result = {"rc": rc, "sent": spice.sent, "combos": sorted(hook.combos)}
    else:
        rec = Recorder()
        rc = run(cfg, args, input_hook=rec)
        result = {"rc": rc, "events": rec.events}
    with open(out, "w") as f:
        json.dump(result, f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
