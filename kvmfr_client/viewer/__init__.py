"""The OpenGL viewer window: frames and cursor from a :class:`kvmfr_client.core.session.Session`, drawn by
the cheapest path that shows them right (see docs/viewer.md).

    shared memory -> native reader -> frame_pipeline (threads) -> renderer (GL) -> window (glfw)
"""

from __future__ import annotations

from kvmfr_client.viewer.app import add_arguments, run

__all__ = ["add_arguments", "run"]
