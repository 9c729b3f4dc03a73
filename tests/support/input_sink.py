"""A recording :class:`kvmfr_client.input.sink.InputSink`: what the input controller would send to SPICE."""

from __future__ import annotations


class RecordingSink:
    """Records each call as ``(method, *args)`` in :attr:`sent`, arguments as the controller passed them."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def take(self, *ignore: str) -> list[tuple]:
        """What was sent since the last take, without the methods named in ``ignore``."""
        sent, self.sent = self.sent, []
        return [s for s in sent if s[0] not in ignore]

    def key_down(self, code):
        self.sent.append(("key_down", code))

    def key_up(self, code):
        self.sent.append(("key_up", code))

    def key_modifiers(self, modifiers):
        self.sent.append(("key_modifiers", modifiers))

    def motion(self, dx, dy):
        self.sent.append(("motion", dx, dy))

    def position(self, x, y, display_id=0):
        self.sent.append(("position", x, y) + ((display_id,) if display_id else ()))

    def button_press(self, button):
        self.sent.append(("button_press", button))

    def button_release(self, button):
        self.sent.append(("button_release", button))

    def wheel(self, steps):
        self.sent.append(("wheel", steps))

    def set_mouse_mode(self, mode):
        self.sent.append(("set_mouse_mode", mode))
