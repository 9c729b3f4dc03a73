"""InputController policy with a recording SPICE stand-in: what the VM would receive for each event.

Events are made from GLFW callback values by :mod:`kvmfr_client.input.glfw_keys`, as the window does.
"""

from __future__ import annotations

import glfw
import pytest

from kvmfr_client import config
from kvmfr_client.input import EnterEvent, FocusEvent, InputController, PointerEvent, ScrollEvent
from kvmfr_client.input.glfw_keys import button_event, key_event
from kvmfr_client.spice import keymap
from kvmfr_client.spice.protocol import Button, Modifier, MouseMode
from tests.support.input_sink import RecordingSink

# X11 keycodes (evdev + 8) as GLFW would report them with each key token.
SCROLL_LOCK = (glfw.KEY_SCROLL_LOCK, 78)


def sc(name):
    return keymap.scancode(keymap.key_from_name(name))


def key(ctl, key, scancode, action, mods=0):
    event = key_event(key, scancode, action, mods)
    if event is not None:
        ctl.handle(event)


def press(ctl, k, scancode=0, mods=0):
    key(ctl, k, scancode, glfw.PRESS, mods)


def release(ctl, k, scancode=0, mods=0):
    key(ctl, k, scancode, glfw.RELEASE, mods)


def tap(ctl, k, scancode=0):
    press(ctl, k, scancode)
    release(ctl, k, scancode)


def mouse_button(ctl, button, action):
    ctl.handle(button_event(button, action))


def settings(*overrides: str):
    return config.load(overrides=list(overrides), user_file=False)


@pytest.fixture
def ctl():
    grabs = []
    # the picture fills the 800x600 window and the guest is 1600x1200: window -> guest scale is 2
    c = InputController(RecordingSink(), settings(), grab=grabs.append,
                        to_guest=lambda x, y: (x * 2, y * 2) if 0 <= x < 800 and 0 <= y < 600 else None)
    c.grabs = grabs
    c.handle(FocusEvent(True))
    c.handle(EnterEvent(True))
    return c


def test_keys_are_sent_as_scancodes_and_locks_synced_first(ctl):
    press(ctl, glfw.KEY_A, mods=glfw.MOD_CAPS_LOCK)
    release(ctl, glfw.KEY_A)
    tap(ctl, glfw.KEY_UP)
    assert ctl.sink.take() == [("key_modifiers", 4), ("key_down", sc("a")), ("key_up", sc("a")),
                                ("key_down", sc("up")), ("key_up", sc("up"))]


def test_repeat_is_not_sent_and_unknown_keys_fall_back_to_the_scancode(ctl):
    press(ctl, glfw.KEY_A)
    key(ctl, glfw.KEY_A, 0, glfw.REPEAT)
    tap(ctl, glfw.KEY_UNKNOWN, 113 + 8)  # XF86AudioMute: evdev 113
    assert ctl.sink.take("key_modifiers") == [("key_down", sc("a")), ("key_down", sc("mute")),
                                               ("key_up", sc("mute"))]


def test_escape_key_alone_toggles_capture_and_is_never_sent(ctl):
    tap(ctl, *SCROLL_LOCK)
    assert ctl.captured and ctl.grabs == [True]
    assert ctl.sink.take() == [("set_mouse_mode", MouseMode.SERVER)]
    tap(ctl, *SCROLL_LOCK)
    assert not ctl.captured and ctl.grabs == [True, False]
    assert ctl.sink.take() == []


def test_escape_combos(ctl):
    press(ctl, *SCROLL_LOCK)
    tap(ctl, glfw.KEY_F2)
    tap(ctl, glfw.KEY_LEFT_SUPER)
    tap(ctl, glfw.KEY_INSERT)
    tap(ctl, glfw.KEY_INSERT)
    tap(ctl, glfw.KEY_DELETE)
    release(ctl, *SCROLL_LOCK)
    assert not ctl.captured, "a combo must not also toggle capture"
    assert ctl.sensitivity == 1
    assert ctl.sink.take() == [("key_down", sc("ctrl")), ("key_down", sc("alt")), ("key_down", sc("f2")),
                                ("key_up", sc("f2")), ("key_up", sc("alt")), ("key_up", sc("ctrl")),
                                ("key_down", sc("leftmeta")), ("key_up", sc("leftmeta"))]
    press(ctl, *SCROLL_LOCK)
    tap(ctl, glfw.KEY_I)
    release(ctl, *SCROLL_LOCK)
    assert not ctl.input_enabled
    tap(ctl, glfw.KEY_A)
    assert ctl.sink.take() == []


def test_focus_loss_releases_every_held_key_and_button_and_leaves_capture(ctl):
    tap(ctl, *SCROLL_LOCK)
    press(ctl, glfw.KEY_LEFT_ALT)
    press(ctl, glfw.KEY_TAB)
    mouse_button(ctl, glfw.MOUSE_BUTTON_LEFT, glfw.PRESS)
    ctl.sink.take()
    ctl.handle(FocusEvent(False))
    assert ctl.sink.take() == [("key_up", sc("alt")), ("key_up", sc("tab")), ("button_release", Button.LEFT)]
    assert not ctl.captured and ctl.grabs[-1] is False
    release(ctl, glfw.KEY_TAB)  # the release arriving later is not sent twice
    assert ctl.sink.take() == []


def test_captured_motion_is_relative_with_sensitivity(ctl):
    tap(ctl, *SCROLL_LOCK)
    ctl.sink.take()
    ctl.handle(PointerEvent(100, 100))
    ctl.handle(PointerEvent(110, 95))
    ctl.sensitivity = -5  # half speed; the fractions carry over
    ctl.handle(PointerEvent(111, 95))
    ctl.handle(PointerEvent(112, 95))
    assert ctl.sink.take() == [("motion", 10, -5), ("motion", 1, 0)]


def test_buttons_wheel_and_side_buttons(ctl):
    mouse_button(ctl, glfw.MOUSE_BUTTON_RIGHT, glfw.PRESS)
    mouse_button(ctl, glfw.MOUSE_BUTTON_RIGHT, glfw.RELEASE)
    mouse_button(ctl, 3, glfw.PRESS)
    mouse_button(ctl, 3, glfw.RELEASE)
    ctl.handle(ScrollEvent(0, 0.5))
    ctl.handle(ScrollEvent(0, 0.5))
    ctl.handle(ScrollEvent(0, -2))
    assert ctl.sink.take() == [("button_press", Button.RIGHT), ("button_release", Button.RIGHT),
                                ("button_press", Button.SIDE), ("button_release", Button.SIDE),
                                ("wheel", 1), ("wheel", -2)]


def test_absolute_outside_capture_when_offered_relative_inside(ctl):
    ctl.set_mouse_modes(supported=3, current=1)
    assert ctl.sink.take() == [("set_mouse_mode", MouseMode.CLIENT)]
    ctl.set_mouse_modes(supported=3, current=2)
    ctl.handle(PointerEvent(400, 300))
    assert ctl.sink.take() == [("position", 800, 600)]
    tap(ctl, *SCROLL_LOCK)
    assert ctl.sink.take() == [("set_mouse_mode", MouseMode.SERVER)]


def test_cursor_is_placed_with_setcursorpos_on_enter(ctl):
    placed = []
    ctl.set_cursor_pos = lambda x, y: placed.append((x, y)) or True
    ctl.handle(EnterEvent(False))
    ctl.handle(EnterEvent(True))
    ctl.handle(PointerEvent(10, 20))
    ctl.handle(PointerEvent(12, 20))
    assert placed == [(20, 40)]
    assert ctl.sink.take() == [("motion", 4, 0)]  # window->guest scale is 2


def test_lock_state_is_synced_again_after_focus_returns(ctl):
    press(ctl, glfw.KEY_A, mods=glfw.MOD_CAPS_LOCK)
    release(ctl, glfw.KEY_A)
    ctl.handle(FocusEvent(False))
    ctl.handle(FocusEvent(True))
    tap(ctl, glfw.KEY_B)
    assert [s for s in ctl.sink.take() if s[0] == "key_modifiers"] == [
        ("key_modifiers", Modifier.CAPS_LOCK), ("key_modifiers", 0)]


def test_registered_combo_runs_and_its_key_never_reaches_the_vm(ctl):
    ran = []
    ctl.add_combo("d", "toggle the stats overlay", lambda: ran.append("d"))
    press(ctl, *SCROLL_LOCK)
    press(ctl, glfw.KEY_D)
    release(ctl, *SCROLL_LOCK)
    release(ctl, glfw.KEY_D)  # released after the escape key: still the combo's
    assert ran == ["d"] and not ctl.captured
    assert ctl.sink.take() == []


def test_without_a_sink_only_the_registered_combos_run():
    ran = []
    ctl = InputController(None, settings(), grab=lambda on: ran.append(("grab", on)))
    ctl.add_combo("q", "quit", lambda: ran.append("q"))
    ctl.handle(FocusEvent(True))
    ctl.handle(EnterEvent(True))
    tap(ctl, *SCROLL_LOCK)                    # nothing to capture for
    press(ctl, *SCROLL_LOCK)
    tap(ctl, glfw.KEY_F2)                     # Ctrl+Alt+F2 is for a VM: not a combo here
    tap(ctl, glfw.KEY_Q)
    release(ctl, *SCROLL_LOCK)
    tap(ctl, glfw.KEY_A)
    mouse_button(ctl, glfw.MOUSE_BUTTON_LEFT, glfw.PRESS)
    ctl.handle(PointerEvent(5, 5))
    assert ran == ["q"] and not ctl.captured and not ctl.input_enabled
    assert [desc for _, desc in ctl.help()] == ["toggle capture mode", "quit"]


def test_escape_key_and_options_come_from_the_configuration():
    sink = RecordingSink()
    ctl = InputController(sink, settings("input:escapeKey=rightctrl", "input:captureOnly=yes"), grab=lambda on: None)
    ctl.handle(FocusEvent(True))
    tap(ctl, glfw.KEY_A)                      # captureOnly: not sent outside capture
    tap(ctl, glfw.KEY_SCROLL_LOCK, 78)        # an ordinary key now
    assert not ctl.captured
    tap(ctl, glfw.KEY_RIGHT_CONTROL)
    assert ctl.captured
    tap(ctl, glfw.KEY_A)
    assert sink.take("key_modifiers", "set_mouse_mode") == [("key_down", sc("a")), ("key_up", sc("a"))]


class DotGrab:
    """A grab that records what the controller asks of the pointer's dot (spice:showCursorDot)."""

    def __init__(self):
        self.grabs: list[bool] = []
        self.dot: list[bool] = []

    def __call__(self, on: bool) -> None:
        self.grabs.append(on)

    def show_dot(self, wanted: bool) -> None:
        self.dot.append(wanted)


@pytest.mark.parametrize("capture_only", [False, True])
def test_the_pointer_dot_is_wanted_exactly_while_the_pointer_does_not_move_the_guest(capture_only):
    grab = DotGrab()
    c = InputController(RecordingSink(), settings(f"input:captureOnly={'yes' if capture_only else 'no'}"),
                        grab=grab, to_guest=lambda x, y: (x, y))
    c.handle(FocusEvent(True))
    assert grab.dot[-1] is capture_only, "focused: the pointer moves the guest's cursor unless captureOnly"
    tap(c, *SCROLL_LOCK)
    assert c.captured and grab.grabs[-1] is True
    c.handle(FocusEvent(False))
    assert not c.captured and grab.dot[-1] is True, "no focus: the dot"
    c.handle(FocusEvent(True))
    assert grab.dot[-1] is capture_only
    c.toggle_input()
    assert grab.dot[-1] is True, "SPICE input off: the dot"
    c.toggle_input()
    assert grab.dot[-1] is capture_only
