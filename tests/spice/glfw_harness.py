"""A minimal GLFW window driven by InputController, standing in for the viewer window in tests.

    python -m tests.spice.glfw_harness --spice HOST:PORT [input:option=value ...]

Prints ``READY <X11 window id>`` once SPICE is connected and the window is focused, then one line per
state change (``CAPTURE on``/``CAPTURE off``, ``INPUT on``/``off``, ``SENS n``). With ``--clipboard`` it
prints ``LOCAL <text>`` when the guest's text reached the local clipboard, and the stdin command
``copy TEXT`` puts TEXT on the local clipboard and moves the focus away and back (as a user copying in
another window would); ``focus-away`` / ``focus-back`` move the X input focus to a second window and
back. Each command answers ``DONE <command>``. Exits when stdin closes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

import glfw

from kvmfr_client.input import FocusEvent, InputController
from kvmfr_client.input.glfw_keys import install_callbacks
from kvmfr_client.spice import Address, MouseMode, SpiceClient, SpiceThread


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spice", required=True)
    parser.add_argument("--clipboard", action="store_true")
    parser.add_argument("options", nargs="*", help="section:option=value overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="harness: %(name)s: %(message)s")

    from kvmfr_client import config
    cfg = config.load(overrides=args.options, user_file=False)

    client = SpiceClient(Address.parse(args.spice), mouse_mode=MouseMode.SERVER, clipboard=args.clipboard)
    spice = SpiceThread(client)  # started once every callback is wired (below)

    if not glfw.init():
        print("FAILED glfw.init", flush=True)
        return 1
    glfw.window_hint(glfw.CLIENT_API, glfw.NO_API)
    window = glfw.create_window(640, 480, "kvmfr input harness", None, None)
    if not window:
        print("FAILED create_window", flush=True)
        return 1

    def changed(ctl: InputController) -> None:
        print(f"CAPTURE {'on' if ctl.captured else 'off'} INPUT {'on' if ctl.input_enabled else 'off'}"
              f" SENS {ctl.sensitivity} KBDGRAB {getattr(ctl.grab, 'keyboard_grabbed', None)}", flush=True)

    clipboard = None
    other = glfw.create_window(64, 64, "elsewhere", None, None)  # somewhere to move the focus to
    glfw.set_window_pos(other, 900, 700)
    if args.clipboard:
        from kvmfr_client.input.clipboard import GlfwClipboard
        clipboard = GlfwClipboard(window, spice, client)
    controller = InputController(spice, cfg, on_change=changed, clipboard=clipboard)
    # Mouse-mode news arrives on the SPICE thread; hand it to this (the window's) thread.
    modes: list[tuple[int, int]] = []
    client.on_mouse_mode = lambda supported, current: (modes.append((supported, current)), glfw.post_empty_event())
    install_callbacks(window, controller.handle)
    width, height = glfw.get_window_size(window)   # no picture here: window pixels are guest pixels
    controller.attach(window, lambda x, y: (x, y) if 0 <= x < width and 0 <= y < height else None)
    spice.start()

    done = threading.Event()
    commands: list[str] = []

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.append(line.rstrip("\n"))
            glfw.post_empty_event()
        done.set()
        glfw.post_empty_event()
    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()

    deadline = time.monotonic() + 15
    while not spice.connected and time.monotonic() < deadline:
        glfw.poll_events()
        time.sleep(0.01)
    if not spice.connected:
        print("FAILED spice not connected", flush=True)
        return 1
    glfw.focus_window(window)
    for _ in range(20):
        glfw.poll_events()
        time.sleep(0.01)
    controller.handle(FocusEvent(True))
    print(f"READY {glfw.get_x11_window(window)}", flush=True)
    while not done.is_set() and not glfw.window_should_close(window):
        glfw.wait_events_timeout(0.02)
        while modes:
            supported, current = modes.pop(0)
            controller.set_mouse_modes(supported, current)
            print(f"MOUSEMODE {supported} {current}", flush=True)
        if clipboard is not None:
            before = clipboard._last
            controller.poll()
            if clipboard._last != before:
                print(f"LOCAL {glfw.get_clipboard_string(window).decode()}", flush=True)
        while commands:
            verb, _, text = commands.pop(0).partition(" ")
            if verb == "copy":
                glfw.set_clipboard_string(other, text)
            targets = {"copy": (other, window), "focus-away": (other,), "focus-back": (window,)}.get(verb, ())
            for target in targets:
                glfw.focus_window(target)
                for _ in range(10):
                    glfw.poll_events()
                    time.sleep(0.01)
            print(f"DONE {verb}", flush=True)
    spice.stop()
    glfw.destroy_window(window)
    glfw.terminate()
    return 0


if __name__ == "__main__":
    os.environ.pop("WAYLAND_DISPLAY", None)
    sys.exit(main())
