"""Options of the SPICE connection (``spice:*``) and of keyboard/mouse handling (``input:*``)."""

from __future__ import annotations

from kvmfr_client import config
from kvmfr_client.config import Option, parse_bool


def _parse_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535 (0: spice:host is a UNIX socket), got {port}")
    return port


def _parse_sens(text: str) -> int:
    value = int(text)
    if not -9 <= value <= 9:
        raise ValueError(f"mouse sensitivity must be -9..9, got {value}")
    return value


def _parse_key(text: str) -> int:
    """An evdev key code (70) or a key name (scrolllock, KEY_RIGHTCTRL)."""
    from kvmfr_client.spice.keymap import key_from_name
    return key_from_name(text)


config.register(
    Option("spice", "enable", True, "connect to the VM's SPICE server for keyboard, mouse and clipboard",
           parse=parse_bool),
    Option("spice", "host", "127.0.0.1", "SPICE server host, or the UNIX socket path when spice:port is 0"),
    Option("spice", "port", 5900, "SPICE server port (0: spice:host is a UNIX socket path)", parse=_parse_port),
    Option("spice", "passwordFile", "", "file holding the SPICE password (QEMU password-secret); empty: none"),
    Option("spice", "input", True, "send keyboard and mouse input to the VM over SPICE", parse=parse_bool),
    Option("spice", "mouseMode", "server",
           "SPICE mouse mode: server (relative, as Looking Glass does) or client (absolute, needs a"
           " usb-tablet or the agent)", choices=("server", "client")),
    Option("spice", "captureOnStart", False, "enter capture mode as soon as the window opens", parse=parse_bool),
    Option("spice", "clipboard", True, "share the clipboard with the VM through the SPICE agent",
           parse=parse_bool),
    Option("spice", "clipboardToVM", True, "send the local clipboard to the VM", parse=parse_bool),
    Option("spice", "clipboardToLocal", True, "take the VM's clipboard into the local one", parse=parse_bool),
    Option("input", "escapeKey", 70,
           "key that toggles capture and starts the escape-key combos (evdev code or name; 70 = ScrollLock)",
           parse=_parse_key),
    Option("input", "grabKeyboard", True, "grab the keyboard while capturing (WM shortcuts go to the VM)",
           parse=parse_bool),
    Option("input", "captureOnFocus", False, "enter capture mode when the window gains focus", parse=parse_bool),
    Option("input", "captureOnly", False, "send keys and mouse to the VM only while capturing", parse=parse_bool),
    Option("input", "releaseKeysOnFocusLoss", True, "release every pressed key when the window loses focus",
           parse=parse_bool),
    Option("input", "ignoreWindowsKeys", False, "do not send the Windows (Super) keys", parse=parse_bool),
    Option("input", "rawMouse", True, "use raw (unaccelerated) relative motion while capturing, when available",
           parse=parse_bool),
    Option("input", "mouseSens", 0, "mouse sensitivity while capturing, -9..9", parse=_parse_sens),
    Option("input", "hideCursor", True, "hide the local cursor over the window", parse=parse_bool),
    Option("input", "absoluteOutsideCapture", True,
           "outside capture, position the guest pointer absolutely when the VM offers client mouse mode",
           parse=parse_bool),
)
