"""The window's input events: one small frozen type per kind, keys and buttons as Linux evdev codes.

The window (:mod:`kvmfr_client.input.glfw_keys` translates GLFW's callbacks, once) hands each event to
one consumer, the :class:`kvmfr_client.input.controller.InputController`. Evdev codes are what
:mod:`kvmfr_client.spice.keymap` turns into set-1 scancodes and what ``input:escapeKey`` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

# Linux evdev codes of the mouse buttons (linux/input-event-codes.h).
BTN_LEFT, BTN_RIGHT, BTN_MIDDLE, BTN_SIDE, BTN_EXTRA = 0x110, 0x111, 0x112, 0x113, 0x114


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A key went down or up (auto-repeat is not an event: the guest repeats keys itself).

    ``caps_lock``/``num_lock``: the local lock-key state when the event happened.
    """

    code: int
    pressed: bool
    caps_lock: bool = False
    num_lock: bool = False


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    """A mouse button (``BTN_*`` evdev code) went down or up."""

    code: int
    pressed: bool


@dataclass(frozen=True, slots=True)
class PointerEvent:
    """The pointer is at (x, y) in window coordinates (relative motion is the difference of two)."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class ScrollEvent:
    """The wheel turned; ``dy`` > 0 is up, one notch is 1.0 (touchpads send fractions)."""

    dx: float
    dy: float


@dataclass(frozen=True, slots=True)
class FocusEvent:
    """The window gained (True) or lost (False) the keyboard focus."""

    focused: bool


@dataclass(frozen=True, slots=True)
class EnterEvent:
    """The pointer entered (True) or left (False) the window."""

    entered: bool


InputEvent = Union[KeyEvent, ButtonEvent, PointerEvent, ScrollEvent, FocusEvent, EnterEvent]
