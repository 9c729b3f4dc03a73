"""Fast path: input sent by our SPICE client, as QEMU's own input layer logged it (no guest needed)."""

from __future__ import annotations

import asyncio

import pytest

from kvmfr_client.spice import keymap
from kvmfr_client.spice.errors import SpiceAuthError, SpiceConnectError, SpiceVersionError
from kvmfr_client.spice.link import Address, link
from kvmfr_client.spice.protocol import Button, ChannelType, Modifier
from tests.spice.conftest import PASSWORD, run_cli, send
from tests.support.vm import free_port, start_qemu, take_until


def keys(*pairs):
    return [("key", q, d) for q, d in pairs]


def tap(*qcodes):
    out = []
    for q in qcodes:
        out += [("key", q, True), ("key", q, False)]
    return out


def sc(name: str) -> int:
    return keymap.scancode(keymap.key_from_name(name))


def test_ordinary_keys_arrive_as_qcodes(qemu, trace):
    def play(c):
        for name in ("a", "z", "1", "0", "space", "enter", "esc", "f1", "f12", "kp5", "102nd"):
            c.inputs.key_down(sc(name))
            c.inputs.key_up(sc(name))
    send(qemu.spice, play)
    assert trace.take(22) == tap("a", "z", "1", "0", "spc", "ret", "esc", "f1", "f12", "kp_5", "less")


def test_extended_keys_arrive_as_qcodes(qemu, trace):
    names = ["rightctrl", "rightalt", "up", "down", "left", "right", "insert", "delete", "home", "end",
             "pageup", "pagedown", "leftmeta", "rightmeta", "compose", "kpenter", "kpslash", "sysrq"]

    def play(c):
        for name in names:
            c.inputs.key_down(sc(name))
            c.inputs.key_up(sc(name))
    send(qemu.spice, play)
    assert trace.take(2 * len(names)) == tap(
        "ctrl_r", "alt_r", "up", "down", "left", "right", "insert", "delete", "home", "end", "pgup", "pgdn",
        "meta_l", "meta_r", "compose", "kp_enter", "kp_divide", "print")


# Every key of the keymap (a 105-key keyboard, the Japanese/Brazilian extras and the media keys) and the
# qcode QEMU must log for it.
EXPECTED_QCODES = {
    "esc": "esc", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6", "7": "7", "8": "8", "9": "9",
    "0": "0", "minus": "minus", "equal": "equal", "backspace": "backspace", "tab": "tab",
    **{c: c for c in "qwertyuiopasdfghjklzxcvbnm"},
    "leftbrace": "bracket_left", "rightbrace": "bracket_right", "enter": "ret", "leftctrl": "ctrl",
    "semicolon": "semicolon", "apostrophe": "apostrophe", "grave": "grave_accent", "leftshift": "shift",
    "backslash": "backslash", "comma": "comma", "dot": "dot", "slash": "slash", "rightshift": "shift_r",
    "kpasterisk": "kp_multiply", "leftalt": "alt", "space": "spc", "capslock": "caps_lock",
    **{f"f{i}": f"f{i}" for i in range(1, 13)},
    "numlock": "num_lock", "scrolllock": "scroll_lock",
    **{f"kp{i}": f"kp_{i}" for i in range(10)},
    "kpminus": "kp_subtract", "kpplus": "kp_add", "kpdot": "kp_decimal", "102nd": "less",
    "ro": "ro", "henkan": "henkan", "katakanahiragana": "katakanahiragana", "muhenkan": "muhenkan",
    "yen": "yen", "kpcomma": "kp_comma", "kpequal": "kp_equals",
    "kpenter": "kp_enter", "rightctrl": "ctrl_r", "kpslash": "kp_divide", "sysrq": "print",
    "rightalt": "alt_r", "home": "home", "up": "up", "pageup": "pgup", "left": "left", "right": "right",
    "end": "end", "down": "down", "pagedown": "pgdn", "insert": "insert", "delete": "delete",
    "pause": "pause", "leftmeta": "meta_l", "rightmeta": "meta_r", "compose": "compose",
    "mute": "audiomute", "volumedown": "volumedown", "volumeup": "volumeup", "power": "power",
    "sleep": "sleep", "wakeup": "wake", "nextsong": "audionext", "playpause": "audioplay",
    "previoussong": "audioprev", "stopcd": "audiostop", "calc": "calculator", "mail": "mail",
    "computer": "computer", "homepage": "ac_home", "bookmarks": "ac_bookmarks", "refresh": "ac_refresh",
    "stop": "stop", "forward": "ac_forward", "back": "ac_back", "media": "mediaselect",
}


def test_every_key_of_the_keymap_reaches_qemu(qemu, trace):
    assert set(EXPECTED_QCODES) == set(keymap.NAME_TO_EVDEV), "the keymap and this table disagree"
    names = list(EXPECTED_QCODES)

    def play(c):
        for name in names:
            c.inputs.key_down(sc(name))
            c.inputs.key_up(sc(name))
    send(qemu.spice, play)
    expected = []
    for name in names:
        expected.append(("key", EXPECTED_QCODES[name], True))
        if name != "pause":  # QEMU turns the E1 sequence into a single pause press
            expected.append(("key", EXPECTED_QCODES[name], False))
    assert trace.take(len(expected)) == expected


def test_cli_key_combo_presses_in_order_and_releases_in_reverse(qemu, trace):
    result = run_cli("--spice", qemu.spice, "key", "ctrl+alt+f2", "key", "shift+super")
    assert result.returncode == 0, result.stderr
    assert trace.take(10) == keys(("ctrl", True), ("alt", True), ("f2", True), ("f2", False), ("alt", False),
                                  ("ctrl", False), ("shift", True), ("meta_l", True), ("meta_l", False),
                                  ("shift", False))


def test_cli_type_adds_shift_for_capitals_and_symbols(qemu, trace):
    result = run_cli("--spice", qemu.spice, "type", "Hi!")
    assert result.returncode == 0, result.stderr
    assert trace.take(10) == keys(("shift", True), ("h", True), ("h", False), ("shift", False),
                                  ("i", True), ("i", False),
                                  ("shift", True), ("1", True), ("1", False), ("shift", False))


def test_lock_keys_follow_the_requested_modifiers(qemu, trace):
    # The server presses each lock key whose state differs from what the client asks for, and remembers
    # the result (earlier tests pressed lock keys, so first bring it to a known state: all off).
    send(qemu.spice, lambda c: c.inputs.key_modifiers(0))
    trace.take(timeout=0.5)
    for wanted, toggled in ((Modifier.CAPS_LOCK, tap("caps_lock")), (Modifier.CAPS_LOCK, []),
                            (Modifier.NUM_LOCK, tap("num_lock", "caps_lock")), (0, tap("num_lock"))):
        send(qemu.spice, lambda c: c.inputs.key_modifiers(wanted))
        assert trace.take(len(toggled), timeout=2 if toggled else 0.5) == toggled, f"asked for {wanted!r}"


def test_relative_motion_is_split_into_steps_qemu_accepts(qemu, trace):
    result = run_cli("--spice", qemu.spice, "move", "10", "-5", "move", "300", "-200", "move", "-128", "0")
    assert result.returncode == 0, result.stderr
    rel = [(axis, value) for kind, axis, value in trace.take(12)]
    assert rel == [("x", 10), ("y", -5),
                   ("x", 127), ("y", -127), ("x", 127), ("y", -73), ("x", 46), ("y", 0),
                   ("x", -127), ("y", 0), ("x", -1), ("y", 0)]


def test_many_motions_arrive_in_full(qemu, trace):
    # 200 small motions: some are held back until the server acks (flow control) and coalesced; the
    # total distance must still arrive exactly.
    def play(c):
        for _ in range(200):
            c.inputs.motion(3, -2)
    send(qemu.spice, play)
    events = take_until(trace, lambda ev: sum(v for _, axis, v in ev if axis == "x") >= 600)
    assert sum(v for _, axis, v in events if axis == "x") == 600
    assert sum(v for _, axis, v in events if axis == "y") == -400
    assert all(-127 <= v <= 127 for _, _, v in events)


def test_buttons_and_wheel(qemu, trace):
    result = run_cli("--spice", qemu.spice, "click", "left", "click", "right", "click", "middle",
                     "click", "side", "click", "extra", "wheel", "down", "3", "wheel", "up")
    assert result.returncode == 0, result.stderr
    buttons = [e for e in trace.take(18, kinds=("btn",))]
    assert buttons == [("btn", b, d) for b in ("left", "right", "middle", "side", "extra", "wheel-down",
                                               "wheel-down", "wheel-down", "wheel-up") for d in (True, False)]


def test_held_buttons_are_reported_in_the_button_state(qemu, trace):
    # Left held while right is clicked and the mouse moves: the state mask must keep left down.
    def play(c):
        c.inputs.button_press(Button.LEFT)
        c.inputs.button_press(Button.RIGHT)
        c.inputs.button_release(Button.RIGHT)
        c.inputs.motion(5, 5)
        c.inputs.button_release(Button.LEFT)
    send(qemu.spice, play)
    buttons = trace.take(4, kinds=("btn",))
    assert buttons == [("btn", "left", True), ("btn", "right", True), ("btn", "right", False),
                       ("btn", "left", False)]


def test_unix_socket(tmp_path):
    vm = start_qemu(tmp_path, unix=True, name="unix")
    try:
        assert Address.parse(vm.spice).port == 0
        result = run_cli("--spice", str(vm.unix_path), "key", "b")
        assert result.returncode == 0, result.stderr
        assert vm.trace.take(2) == tap("b")
    finally:
        vm.stop()


# -- authentication and errors -------------------------------------------------------------------

def test_password_accepted(qemu_password, tmp_path):
    qemu_password.trace.mark()
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    result = run_cli("--spice", qemu_password.spice, "--password-file", str(pw), "key", "ctrl+c")
    assert result.returncode == 0, result.stderr
    assert qemu_password.trace.take(4) == keys(("ctrl", True), ("c", True), ("c", False), ("ctrl", False))


def test_wrong_password_is_a_clear_error(qemu_password, tmp_path):
    qemu_password.trace.mark()
    pw = tmp_path / "pw"
    pw.write_text("not-the-password\n")
    result = run_cli("--spice", qemu_password.spice, "--password-file", str(pw), "key", "a")
    assert result.returncode == 1
    assert "refused the password" in result.stderr and "PERMISSION_DENIED" in result.stderr, result.stderr

    with pytest.raises(SpiceAuthError) as info:
        send(qemu_password.spice, lambda c: None, password="wrong")
    assert info.value.code == 7
    assert qemu_password.trace.take(timeout=0.5) == [], "input leaked through a refused link"


def test_missing_password_says_one_is_needed(qemu_password):
    result = run_cli("--spice", qemu_password.spice, "key", "a")
    assert result.returncode == 1
    assert "wants a password" in result.stderr, result.stderr


def test_wrong_protocol_version_is_a_clear_error(qemu):
    with pytest.raises(SpiceVersionError, match="VERSION_MISMATCH|protocol"):
        asyncio.run(link(Address.parse(qemu.spice), ChannelType.MAIN, version=(1, 0)))


def test_no_server_is_a_clear_error():
    port = free_port()
    result = run_cli("--spice", f"127.0.0.1:{port}", "key", "a")
    assert result.returncode == 1
    assert f"nothing is listening on 127.0.0.1:{port} (connection refused)" in result.stderr, result.stderr
    with pytest.raises(SpiceConnectError):
        send(f"127.0.0.1:{port}", lambda c: None)


def test_moveto_without_an_absolute_device_says_what_to_add(qemu, trace):
    result = run_cli("--spice", qemu.spice, "moveto", "10", "10")
    assert result.returncode == 1
    assert "usb-tablet" in result.stderr, result.stderr


def test_bad_command_line_exits_2():
    assert run_cli("--spice", "127.0.0.1:1", "key", "nosuchkey").returncode == 2
    assert run_cli("--spice", "127.0.0.1:1", "wheel", "sideways").returncode == 2
    assert run_cli("--spice", "nonsense", "key", "a").returncode == 2
