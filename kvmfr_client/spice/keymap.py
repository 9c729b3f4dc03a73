"""Keys as PC/AT set-1 scancodes, the form the SPICE inputs channel carries.

A key is named here by its Linux evdev code (what X11/Wayland report, keycode - 8) and sent as a set-1
code: ``sc`` for an ordinary key, ``0x100 | sc`` for an E0-extended key (sent as E0 sc), and
:data:`PAUSE` for Pause, the one key whose make sequence starts with E1 and has no break code.
"""

from __future__ import annotations

EXTENDED = 0x100
PAUSE = 0x10000  # not a real scancode: stands for E1 1D 45 E1 9D C5

# (evdev code, set-1 code, name). Names are the Linux KEY_* names, lower case, without "KEY_".
_KEYS: tuple[tuple[int, int, str], ...] = (
    (1, 0x01, "esc"),
    (2, 0x02, "1"), (3, 0x03, "2"), (4, 0x04, "3"), (5, 0x05, "4"), (6, 0x06, "5"),
    (7, 0x07, "6"), (8, 0x08, "7"), (9, 0x09, "8"), (10, 0x0A, "9"), (11, 0x0B, "0"),
    (12, 0x0C, "minus"), (13, 0x0D, "equal"), (14, 0x0E, "backspace"), (15, 0x0F, "tab"),
    (16, 0x10, "q"), (17, 0x11, "w"), (18, 0x12, "e"), (19, 0x13, "r"), (20, 0x14, "t"),
    (21, 0x15, "y"), (22, 0x16, "u"), (23, 0x17, "i"), (24, 0x18, "o"), (25, 0x19, "p"),
    (26, 0x1A, "leftbrace"), (27, 0x1B, "rightbrace"), (28, 0x1C, "enter"), (29, 0x1D, "leftctrl"),
    (30, 0x1E, "a"), (31, 0x1F, "s"), (32, 0x20, "d"), (33, 0x21, "f"), (34, 0x22, "g"),
    (35, 0x23, "h"), (36, 0x24, "j"), (37, 0x25, "k"), (38, 0x26, "l"), (39, 0x27, "semicolon"),
    (40, 0x28, "apostrophe"), (41, 0x29, "grave"), (42, 0x2A, "leftshift"), (43, 0x2B, "backslash"),
    (44, 0x2C, "z"), (45, 0x2D, "x"), (46, 0x2E, "c"), (47, 0x2F, "v"), (48, 0x30, "b"),
    (49, 0x31, "n"), (50, 0x32, "m"), (51, 0x33, "comma"), (52, 0x34, "dot"), (53, 0x35, "slash"),
    (54, 0x36, "rightshift"), (55, 0x37, "kpasterisk"), (56, 0x38, "leftalt"), (57, 0x39, "space"),
    (58, 0x3A, "capslock"),
    (59, 0x3B, "f1"), (60, 0x3C, "f2"), (61, 0x3D, "f3"), (62, 0x3E, "f4"), (63, 0x3F, "f5"),
    (64, 0x40, "f6"), (65, 0x41, "f7"), (66, 0x42, "f8"), (67, 0x43, "f9"), (68, 0x44, "f10"),
    (69, 0x45, "numlock"), (70, 0x46, "scrolllock"),
    (71, 0x47, "kp7"), (72, 0x48, "kp8"), (73, 0x49, "kp9"), (74, 0x4A, "kpminus"),
    (75, 0x4B, "kp4"), (76, 0x4C, "kp5"), (77, 0x4D, "kp6"), (78, 0x4E, "kpplus"),
    (79, 0x4F, "kp1"), (80, 0x50, "kp2"), (81, 0x51, "kp3"), (82, 0x52, "kp0"), (83, 0x53, "kpdot"),
    (86, 0x56, "102nd"), (87, 0x57, "f11"), (88, 0x58, "f12"),
    # Japanese / Brazilian keys
    (89, 0x73, "ro"), (92, 0x79, "henkan"), (93, 0x70, "katakanahiragana"), (94, 0x7B, "muhenkan"),
    (124, 0x7D, "yen"), (121, 0x7E, "kpcomma"), (117, 0x59, "kpequal"),
    # E0-extended keys
    (96, EXTENDED | 0x1C, "kpenter"), (97, EXTENDED | 0x1D, "rightctrl"),
    (98, EXTENDED | 0x35, "kpslash"), (99, EXTENDED | 0x37, "sysrq"), (100, EXTENDED | 0x38, "rightalt"),
    (102, EXTENDED | 0x47, "home"), (103, EXTENDED | 0x48, "up"), (104, EXTENDED | 0x49, "pageup"),
    (105, EXTENDED | 0x4B, "left"), (106, EXTENDED | 0x4D, "right"), (107, EXTENDED | 0x4F, "end"),
    (108, EXTENDED | 0x50, "down"), (109, EXTENDED | 0x51, "pagedown"), (110, EXTENDED | 0x52, "insert"),
    (111, EXTENDED | 0x53, "delete"), (119, PAUSE, "pause"),
    (125, EXTENDED | 0x5B, "leftmeta"), (126, EXTENDED | 0x5C, "rightmeta"), (127, EXTENDED | 0x5D, "compose"),
    # Media, browser and power keys
    (113, EXTENDED | 0x20, "mute"), (114, EXTENDED | 0x2E, "volumedown"), (115, EXTENDED | 0x30, "volumeup"),
    (116, EXTENDED | 0x5E, "power"), (142, EXTENDED | 0x5F, "sleep"), (143, EXTENDED | 0x63, "wakeup"),
    (163, EXTENDED | 0x19, "nextsong"), (164, EXTENDED | 0x22, "playpause"),
    (165, EXTENDED | 0x10, "previoussong"), (166, EXTENDED | 0x24, "stopcd"),
    (140, EXTENDED | 0x21, "calc"), (155, EXTENDED | 0x6C, "mail"), (157, EXTENDED | 0x6B, "computer"),
    (172, EXTENDED | 0x32, "homepage"), (156, EXTENDED | 0x66, "bookmarks"),
    (173, EXTENDED | 0x67, "refresh"), (128, EXTENDED | 0x68, "stop"), (159, EXTENDED | 0x69, "forward"),
    (158, EXTENDED | 0x6A, "back"), (226, EXTENDED | 0x6D, "media"),
)

EVDEV_TO_SET1: dict[int, int] = {evdev: code for evdev, code, _ in _KEYS}
NAME_TO_EVDEV: dict[str, int] = {name: evdev for evdev, _, name in _KEYS}
EVDEV_TO_NAME: dict[int, str] = {evdev: name for evdev, _, name in _KEYS}

_ALIASES = {
    "ctrl": "leftctrl", "control": "leftctrl", "lctrl": "leftctrl", "rctrl": "rightctrl",
    "alt": "leftalt", "lalt": "leftalt", "ralt": "rightalt", "altgr": "rightalt",
    "shift": "leftshift", "lshift": "leftshift", "rshift": "rightshift",
    "super": "leftmeta", "win": "leftmeta", "meta": "leftmeta", "lwin": "leftmeta", "rwin": "rightmeta",
    "lsuper": "leftmeta", "rsuper": "rightmeta", "menu": "compose",
    "escape": "esc", "return": "enter", "del": "delete", "ins": "insert",
    "pgup": "pageup", "pgdn": "pagedown", "prior": "pageup", "next": "pagedown",
    "print": "sysrq", "prtsc": "sysrq", "break": "pause", "scroll": "scrolllock",
    "caps": "capslock", "num": "numlock", "bksp": "backspace",
    "period": "dot", "quote": "apostrophe", "backquote": "grave", "bracketleft": "leftbrace",
    "bracketright": "rightbrace", "less": "102nd",
    "kp_enter": "kpenter", "kpdivide": "kpslash", "kpmultiply": "kpasterisk", "kpsubtract": "kpminus",
    "kpadd": "kpplus", "kpdecimal": "kpdot",
    "play": "playpause", "next_track": "nextsong", "prev_track": "previoussong", "volup": "volumeup",
    "voldown": "volumedown",
}


class UnknownKey(ValueError):
    """A key name or code this keymap has no scancode for."""


def key_from_name(name: str) -> int:
    """Evdev code for a key name (``a``, ``f2``, ``ctrl``, ``kpenter``, ``key_a``, ``30``)."""
    text = name.strip().lower()
    if text.startswith("key_"):
        text = text[4:]
    text = _ALIASES.get(text, text)
    if text in NAME_TO_EVDEV:
        return NAME_TO_EVDEV[text]
    if text.isdigit() and int(text) in EVDEV_TO_SET1:
        return int(text)
    raise UnknownKey(f"unknown key {name!r}; use a Linux key name such as a, f2, ctrl, alt, shift,"
                     " super, up, kpenter, volumeup (docs/input.md lists them)")


def scancode(evdev: int) -> int:
    """Set-1 code (``0x100 | sc`` for E0 keys, :data:`PAUSE`) of an evdev key code."""
    try:
        return EVDEV_TO_SET1[evdev]
    except KeyError:
        raise UnknownKey(f"evdev key {evdev} has no set-1 scancode SPICE can carry") from None


def make_code(code: int) -> int:
    """The u32 carried by KEY_DOWN: the make byte(s), first byte lowest."""
    if code & EXTENDED:
        return 0xE0 | (code & 0xFF) << 8
    return code & 0xFF


def break_code(code: int) -> int:
    """The u32 carried by KEY_UP: the make code with bit 7 of the scancode byte set."""
    if code & EXTENDED:
        return 0xE0 | ((code & 0xFF) | 0x80) << 8
    return (code & 0xFF) | 0x80


def pause_bytes() -> bytes:
    return bytes((0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5))


# Characters for `type "text"` on a US layout: char -> (key name, needs shift).
_UNSHIFTED = {
    "`": "grave", "-": "minus", "=": "equal", "[": "leftbrace", "]": "rightbrace", "\\": "backslash",
    ";": "semicolon", "'": "apostrophe", ",": "comma", ".": "dot", "/": "slash", " ": "space",
    "\n": "enter", "\t": "tab",
}
_SHIFTED = {
    "~": "grave", "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8",
    "(": "9", ")": "0", "_": "minus", "+": "equal", "{": "leftbrace", "}": "rightbrace", "|": "backslash",
    ":": "semicolon", '"': "apostrophe", "<": "comma", ">": "dot", "?": "slash",
}


def char_to_key(char: str) -> tuple[int, bool]:
    """(evdev code, shift needed) that types ``char`` on a US layout."""
    if "a" <= char <= "z" or "0" <= char <= "9":
        return NAME_TO_EVDEV[char], False
    if "A" <= char <= "Z":
        return NAME_TO_EVDEV[char.lower()], True
    if char in _UNSHIFTED:
        return NAME_TO_EVDEV[_UNSHIFTED[char]], False
    if char in _SHIFTED:
        return NAME_TO_EVDEV[_SHIFTED[char]], True
    raise UnknownKey(f"cannot type {char!r} with a US keyboard layout")
