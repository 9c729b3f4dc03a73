"""What the input controller sends input through: the one typed interface to the SPICE side.

:class:`kvmfr_client.spice.SpiceThread` implements it (each call is queued onto the SPICE thread and
written on the inputs channel); tests implement it with a recorder.
"""

from __future__ import annotations

from typing import Protocol

from kvmfr_client.spice.protocol import Button, Modifier, MouseMode


class InputSink(Protocol):
    """Input for the VM, in SPICE's terms: keys as set-1 scancodes, mouse in guest pixels."""

    def key_down(self, code: int) -> None:
        """Press the key with set-1 scancode ``code`` (``0x100 | sc`` for E0 keys)."""

    def key_up(self, code: int) -> None:
        """Release the key with set-1 scancode ``code``."""

    def key_modifiers(self, modifiers: Modifier | int) -> None:
        """Set the guest's lock keys to ``modifiers``."""

    def motion(self, dx: int, dy: int) -> None:
        """Relative motion (server mouse mode)."""

    def position(self, x: int, y: int, display_id: int = 0) -> None:
        """Absolute position (client mouse mode)."""

    def button_press(self, button: Button | int) -> None:
        """Press a mouse button."""

    def button_release(self, button: Button | int) -> None:
        """Release a mouse button."""

    def wheel(self, steps: int) -> None:
        """Scroll ``steps`` notches (positive: up)."""

    def set_mouse_mode(self, mode: MouseMode) -> None:
        """Ask the server for relative (SERVER) or absolute (CLIENT) mouse mode."""
