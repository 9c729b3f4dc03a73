"""Viewer-side input: capture mode, escape-key combos and GLFW key mapping, sent through SPICE."""

from .controller import InputController, Viewport

__all__ = ["InputController", "Viewport"]
