"""Viewer-side input: window events (evdev codes) -> capture mode and escape-key combos -> SPICE."""

from .controller import InputController
from .events import ButtonEvent, EnterEvent, FocusEvent, InputEvent, KeyEvent, PointerEvent, ScrollEvent
from .sink import InputSink
from .viewer_input import ViewerInput

__all__ = ["ButtonEvent", "EnterEvent", "FocusEvent", "InputController", "InputEvent", "InputSink",
           "KeyEvent", "PointerEvent", "ScrollEvent", "ViewerInput"]
