"""InputController policy with a recording SPICE stand-in: what the VM would receive for each event."""

from __future__ import annotations

import glfw
import pytest

from kvmfr_client.input import InputController
from kvmfr_client.spice import keymap
from kvmfr_client.spice.protocol import Button, MouseMode

# X11 keycodes (evdev + 8) as GLFW would report them with each key token.
SCROLL_LOCK = (glfw.KEY_SCROLL_LOCK, 78)


class Recorder:
    def __init__(self):
        self.sent: list[tuple] = []

    def __getattr__(self, name):
        if name in ("key_down", "key_up", "key_modifiers", "motion", "position", "button_press",
                    "button_release", "wheel", "set_mouse_mode"):
            return lambda *args: self.sent.append((name, *args))
        raise AttributeError(name)

    def take(self, *ignore: str) -> list[tuple]:
        sent, self.sent = self.sent, []
        return [s for s in sent if s[0] not in ignore]


def sc(name):
    return keymap.scancode(keymap.key_from_name(name))


def press(ctl, key, scancode=0, mods=0):
    ctl.on_key(key, scancode, glfw.PRESS, mods)


def release(ctl, key, scancode=0, mods=0):
    ctl.on_key(key, scancode, glfw.RELEASE, mods)


def tap(ctl, key, scancode=0):
    press(ctl, key, scancode)
    release(ctl, key, scancode)


@pytest.fixture
def ctl():
    grabs = []
    c = InputController(Recorder(), grab=grabs.append)
    c.grabs = grabs
    c.on_focus(True)
    c.on_enter(True)
    c.set_viewport(0, 0, 800, 600, 1600, 1200)
    return c


def test_keys_are_sent_as_scancodes_and_locks_synced_first(ctl):
    press(ctl, glfw.KEY_A, mods=glfw.MOD_CAPS_LOCK)
    release(ctl, glfw.KEY_A)
    tap(ctl, glfw.KEY_UP)
    assert ctl.spice.take() == [("key_modifiers", 4), ("key_down", sc("a")), ("key_up", sc("a")),
                                ("key_down", sc("up")), ("key_up", sc("up"))]


def test_repeat_is_not_sent_and_unknown_keys_fall_back_to_the_scancode(ctl):
    press(ctl, glfw.KEY_A)
    ctl.on_key(glfw.KEY_A, 0, glfw.REPEAT, 0)
    tap(ctl, glfw.KEY_UNKNOWN, 113 + 8)  # XF86AudioMute: evdev 113
    assert ctl.spice.take("key_modifiers") == [("key_down", sc("a")), ("key_down", sc("mute")),
                                               ("key_up", sc("mute"))]


def test_escape_key_alone_toggles_capture_and_is_never_sent(ctl):
    tap(ctl, *SCROLL_LOCK)
    assert ctl.captured and ctl.grabs == [True]
    assert ctl.spice.take() == [("set_mouse_mode", MouseMode.SERVER)]
    tap(ctl, *SCROLL_LOCK)
    assert not ctl.captured and ctl.grabs == [True, False]
    assert ctl.spice.take() == []


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
    assert ctl.spice.take() == [("key_down", sc("ctrl")), ("key_down", sc("alt")), ("key_down", sc("f2")),
                                ("key_up", sc("f2")), ("key_up", sc("alt")), ("key_up", sc("ctrl")),
                                ("key_down", sc("leftmeta")), ("key_up", sc("leftmeta"))]
    press(ctl, *SCROLL_LOCK)
    tap(ctl, glfw.KEY_I)
    release(ctl, *SCROLL_LOCK)
    assert not ctl.input_enabled
    tap(ctl, glfw.KEY_A)
    assert ctl.spice.take() == []


def test_focus_loss_releases_every_held_key_and_button_and_leaves_capture(ctl):
    tap(ctl, *SCROLL_LOCK)
    press(ctl, glfw.KEY_LEFT_ALT)
    press(ctl, glfw.KEY_TAB)
    ctl.on_mouse_button(glfw.MOUSE_BUTTON_LEFT, glfw.PRESS)
    ctl.spice.take()
    ctl.on_focus(False)
    assert ctl.spice.take() == [("key_up", sc("alt")), ("key_up", sc("tab")), ("button_release", Button.LEFT)]
    assert not ctl.captured and ctl.grabs[-1] is False
    release(ctl, glfw.KEY_TAB)  # the release arriving later is not sent twice
    assert ctl.spice.take() == []


def test_captured_motion_is_relative_with_sensitivity(ctl):
    tap(ctl, *SCROLL_LOCK)
    ctl.spice.take()
    ctl.on_cursor_pos(100, 100)
    ctl.on_cursor_pos(110, 95)
    ctl.sensitivity = -5  # half speed; the fractions carry over
    ctl.on_cursor_pos(111, 95)
    ctl.on_cursor_pos(112, 95)
    assert ctl.spice.take() == [("motion", 10, -5), ("motion", 1, 0)]


def test_buttons_wheel_and_side_buttons(ctl):
    ctl.on_mouse_button(glfw.MOUSE_BUTTON_RIGHT, glfw.PRESS)
    ctl.on_mouse_button(glfw.MOUSE_BUTTON_RIGHT, glfw.RELEASE)
    ctl.on_mouse_button(3, glfw.PRESS)
    ctl.on_mouse_button(3, glfw.RELEASE)
    ctl.on_scroll(0, 0.5)
    ctl.on_scroll(0, 0.5)
    ctl.on_scroll(0, -2)
    assert ctl.spice.take() == [("button_press", Button.RIGHT), ("button_release", Button.RIGHT),
                                ("button_press", Button.SIDE), ("button_release", Button.SIDE),
                                ("wheel", 1), ("wheel", -2)]


def test_absolute_outside_capture_when_offered_relative_inside(ctl):
    ctl.set_mouse_modes(supported=3, current=1)
    assert ctl.spice.take() == [("set_mouse_mode", MouseMode.CLIENT)]
    ctl.set_mouse_modes(supported=3, current=2)
    ctl.on_cursor_pos(400, 300)
    assert ctl.spice.take() == [("position", 800, 600)]
    tap(ctl, *SCROLL_LOCK)
    assert ctl.spice.take() == [("set_mouse_mode", MouseMode.SERVER)]


def test_cursor_is_placed_with_setcursorpos_on_enter(ctl):
    placed = []
    ctl.set_cursor_pos = lambda x, y: placed.append((x, y)) or True
    ctl.on_enter(False)
    ctl.on_enter(True)
    ctl.on_cursor_pos(10, 20)
    ctl.on_cursor_pos(12, 20)
    assert placed == [(20, 40)]
    assert ctl.spice.take() == [("motion", 4, 0)]  # window->guest scale is 2
