"""kvmfr-client: a Looking Glass B7 (LGMP 6 / KVMFR 20) compatible viewer and toolkit.

Scripting API::

    import kvmfr_client
    with kvmfr_client.open("/dev/shm/looking-glass", wait=5) as session:
        print(session.host.describe())
        frame = session.next_frame(timeout=1.0)
        if frame is not None:
            rgba = kvmfr_client.core.formats.decode(frame.pixels, frame.type, frame.width)
"""

from .core import errors, formats
from .core.cursor import CursorEvent, CursorShape, CursorType
from .core.formats import FrameType
from .core.session import Frame, HostInfo, Session, SessionState, open, recommended_shm_size

__version__ = "0.1.0"

__all__ = [
    "CursorEvent", "CursorShape", "CursorType", "Frame", "FrameType", "HostInfo", "Session", "SessionState",
    "errors", "formats", "open", "recommended_shm_size",
]
