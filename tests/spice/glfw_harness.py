"""A minimal GLFW window driven by InputController, standing in for the viewer window in tests.

    python -m tests.spice.glfw_harness --spice HOST:PORT [input:option=value ...]

Prints ``READY <X11 window id>`` once SPICE is connected and the window is focused, then one line per
state change (``CAPTURE on``/``CAPTURE off``, ``INPUT on``/``off``, ``SENS n``); exits when stdin closes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

import glfw

from kvmfr_client.input import InputController
from kvmfr_client.spice import Address, MouseMode, SpiceClient, SpiceThread


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spice", required=True)
    parser.add_argument("options", nargs="*", help="section:option=value overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="harness: %(name)s: %(message)s")

    from kvmfr_client import config
    from kvmfr_client.spice import options  # noqa: F401  (registers spice:* and input:*)
    cfg = {}
    for item in args.options:
        key, _, text = item.partition("=")
        cfg[key] = config._REGISTRY[key].convert(text)

    client = SpiceClient(Address.parse(args.spice), mouse_mode=MouseMode.SERVER)
    spice = SpiceThread(client).start()

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
              f" SENS {ctl.sensitivity}", flush=True)

    controller = InputController(spice, cfg, on_change=changed)
    # Mouse-mode news arrives on the SPICE thread; hand it to this (the window's) thread.
    modes: list[tuple[int, int]] = []
    client.on_mouse_mode = lambda supported, current: (modes.append((supported, current)), glfw.post_empty_event())
    controller.attach_glfw(window)

    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), name="stdin", daemon=True).start()

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
    controller.on_focus(True)
    print(f"READY {glfw.get_x11_window(window)}", flush=True)
    while not done.is_set() and not glfw.window_should_close(window):
        glfw.wait_events_timeout(0.02)
        while modes:
            controller.set_mouse_modes(*modes.pop(0))
    spice.stop()
    glfw.destroy_window(window)
    glfw.terminate()
    return 0


if __name__ == "__main__":
    os.environ.pop("WAYLAND_DISPLAY", None)
    sys.exit(main())
