"""Full path: input reaches a real guest kernel (Debian's, booted under QEMU) as evdev events.

The guest runs our event printer as init; every event it reads from /dev/input comes back over the
serial console as ``EV <device> <type> <code> <value>``.
"""

from __future__ import annotations

import pytest

from tests.spice.conftest import run_cli, start_harness

EV_KEY, EV_REL, EV_ABS = 1, 2, 3
KEY_A, KEY_B, KEY_UP, KEY_RIGHT, KEY_LEFTCTRL, KEY_LEFTALT, KEY_LEFTSHIFT = 30, 48, 103, 106, 29, 56, 42
KEY_F2, KEY_KPENTER, KEY_RIGHTCTRL, KEY_MUTE, KEY_LEFTMETA, KEY_DELETE = 60, 96, 97, 113, 125, 111
BTN_LEFT, BTN_RIGHT, BTN_SIDE, BTN_EXTRA = 272, 273, 275, 276
REL_X, REL_Y, REL_WHEEL = 0, 1, 8


def keys_of(events, device):
    return [(code, value) for dev, kind, code, value in events if dev == device and kind == EV_KEY]


def taps(*codes):
    return [(c, v) for c in codes for v in (1, 0)]


def test_cli_keys_reach_the_guest_as_evdev_codes(guest):
    result = run_cli("--spice", guest.spice, "key", "a", "key", "up", "key", "kpenter", "key", "rightctrl",
                     "key", "mute", "key", "ctrl+alt+f2")
    assert result.returncode == 0, result.stderr
    kbd = guest.devices["AT Translated Set 2 keyboard"]
    events = guest.serial.take_events(16)
    assert keys_of(events, kbd) == taps(KEY_A, KEY_UP, KEY_KPENTER, KEY_RIGHTCTRL, KEY_MUTE) + [
        (KEY_LEFTCTRL, 1), (KEY_LEFTALT, 1), (KEY_F2, 1), (KEY_F2, 0), (KEY_LEFTALT, 0), (KEY_LEFTCTRL, 0)]


def test_cli_motion_buttons_and_wheel_reach_the_guest_mouse(guest):
    result = run_cli("--spice", guest.spice, "move", "300", "-200", "click", "left", "click", "right",
                     "click", "side", "click", "extra", "wheel", "down", "2")
    assert result.returncode == 0, result.stderr
    mouse = guest.devices["PS/2"]
    events = guest.serial.take_events_until(
        lambda ev: len(keys_of(ev, mouse)) >= 8 and sum(e[3] for e in ev if e[1] == EV_REL and e[2] == REL_WHEEL) <= -2)
    events = [e for e in events if e[0] == mouse]
    rel = [(code, value) for _, kind, code, value in events if kind == EV_REL]
    assert sum(v for c, v in rel if c == REL_X) == 300
    assert sum(v for c, v in rel if c == REL_Y) == -200
    assert keys_of(events, mouse) == taps(BTN_LEFT, BTN_RIGHT, BTN_SIDE, BTN_EXTRA)
    assert sum(v for c, v in rel if c == REL_WHEEL) == -2


def test_absolute_position_reaches_the_guest_tablet(guest_tablet):
    # SPICE offers client mode once the guest's HID driver polls the tablet; QEMU scales the position
    # over the display surface (720x400 VGA text mode here) to 0..32767.
    result = run_cli("--spice", guest_tablet.spice, "moveto", "100", "200", "sleep", "0.3", "moveto", "360", "100")
    assert result.returncode == 0, result.stderr
    tablet = guest_tablet.devices["USB Tablet"]
    events = [(code, value) for dev, kind, code, value in guest_tablet.serial.take_events(4, timeout=5)
              if dev == tablet and kind == EV_ABS]
    assert events == [(0, 100 * 32767 // 720), (1, 200 * 32767 // 400), (0, 360 * 32767 // 720),
                      (1, 100 * 32767 // 400)]


# -- the real window: keys typed into a GLFW window under Xvfb (xdotool), through InputController --

@pytest.fixture
def window(guest, xserver):
    harness = start_harness(guest.spice, xserver)
    try:
        harness.window_id = harness.wait_line("READY").split()[1]
        guest.serial.take_events(timeout=0.3)  # drop anything older
        yield harness
    finally:
        harness.stop()


def test_keys_typed_into_the_window_arrive_in_the_guest(guest, window):
    window.xdotool("key", "--delay", "40", "a", "Up", "Right", "KP_Enter", "Delete", "XF86AudioMute")
    window.xdotool("keydown", "--delay", "40", "shift", "keydown", "b", "keyup", "b", "keyup", "shift",
                   "key", "super")
    kbd = guest.devices["AT Translated Set 2 keyboard"]
    events = guest.serial.take_events(18, timeout=10)
    assert keys_of(events, kbd) == taps(KEY_A, KEY_UP, KEY_RIGHT, KEY_KPENTER, KEY_DELETE, KEY_MUTE) + [
        (KEY_LEFTSHIFT, 1), (KEY_B, 1), (KEY_B, 0), (KEY_LEFTSHIFT, 0), (KEY_LEFTMETA, 1), (KEY_LEFTMETA, 0)]


def test_capture_mode_and_escape_combos_in_the_window(guest, window):
    mouse = guest.devices["PS/2"]
    kbd = guest.devices["AT Translated Set 2 keyboard"]
    window.xdotool("key", "Scroll_Lock")
    state = window.wait_line("CAPTURE")
    assert state.startswith("CAPTURE on") and "KBDGRAB True" in state, state
    for _ in range(10):
        window.xdotool("mousemove_relative", "--", "3", "-2")
    window.xdotool("click", "1")
    events = guest.serial.take_events_until(lambda ev: len(keys_of(ev, mouse)) >= 2)
    rel = [(code, value) for dev, kind, code, value in events if dev == mouse and kind == EV_REL]
    assert sum(v for c, v in rel if c == REL_X) == 30, events
    assert sum(v for c, v in rel if c == REL_Y) == -20, events
    assert keys_of(events, mouse) == taps(BTN_LEFT)

    # ScrollLock+F2 sends Ctrl+Alt+F2; ScrollLock itself never reaches the guest; a second tap releases.
    window.xdotool("key", "Scroll_Lock+F2")
    window.xdotool("key", "Scroll_Lock")
    state = window.wait_line("CAPTURE")
    assert state.startswith("CAPTURE off") and "KBDGRAB False" in state, state
    events = guest.serial.take_events(6, timeout=10)
    assert keys_of(events, kbd) == [(KEY_LEFTCTRL, 1), (KEY_LEFTALT, 1), (KEY_F2, 1), (KEY_F2, 0),
                                    (KEY_LEFTALT, 0), (KEY_LEFTCTRL, 0)]


def test_focus_loss_releases_held_keys_in_the_guest(guest, window):
    kbd = guest.devices["AT Translated Set 2 keyboard"]
    window.xdotool("keydown", "alt")
    assert keys_of(guest.serial.take_events(1, timeout=10), kbd) == [(KEY_LEFTALT, 1)]
    window.send("focus-away")  # as Alt+Tab to another window would
    window.wait_line("DONE focus-away")
    assert keys_of(guest.serial.take_events(1, timeout=10), kbd) == [(KEY_LEFTALT, 0)]
    window.xdotool("keyup", "alt")  # released over the other window: the guest must not see it twice
    window.send("focus-back")
    window.wait_line("DONE focus-back")
    window.xdotool("key", "b")
    assert keys_of(guest.serial.take_events(2, timeout=10), kbd) == taps(KEY_B)


def test_window_positions_the_guest_pointer_absolutely_outside_capture(guest_tablet, xserver):
    # The harness maps its 640x480 window 1:1 onto a 640x480 guest frame; QEMU then scales guest pixels
    # over its 720x400 surface to the tablet's 0..32767.
    harness = start_harness(guest_tablet.spice, xserver)
    try:
        window_id = harness.wait_line("READY").split()[1]
        while harness.wait_line("MOUSEMODE") != "MOUSEMODE 3 2":
            pass  # offered both, switched to client (absolute) mode
        guest_tablet.serial.take_events(timeout=0.3)
        tablet = guest_tablet.devices["USB Tablet"]
        harness.xdotool("mousemove", "--window", window_id, "320", "240")
        events = guest_tablet.serial.take_events_until(
            lambda ev: (3, 0, 320 * 32767 // 720) in [e[1:] for e in ev if e[0] == tablet]
            and (3, 1, 240 * 32767 // 400) in [e[1:] for e in ev if e[0] == tablet])
        last = {code: value for dev, kind, code, value in events if dev == tablet and kind == EV_ABS}
        assert last == {0: 320 * 32767 // 720, 1: 240 * 32767 // 400}, events
    finally:
        harness.stop()
