"""kvmfr-client: a Looking Glass B7 (LGMP 6 / KVMFR 20) compatible viewer and toolkit.

Scripting API::

    import kvmfr_client
    with kvmfr_client.open("/dev/shm/looking-glass", wait=5) as session:
        print(session.host.describe())
        frame = session.next_frame(timeout=1.0)
        if frame is not None:
            rgba = kvmfr_client.core.formats.decode(frame.pixels, frame.type, frame.width)

The names below are loaded on first use (PEP 562): ``import kvmfr_client`` itself loads only the standard
library, so a program's entry module (``kvmfr_client.cli.view``, ``.audio.cli``, ``.spice.cli``) can take
SIGINT and SIGTERM over (kvmfr_client.startup) before numpy and the native helper load.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False   # typing itself is not loaded here (a few milliseconds of start-up)

__version__ = "0.1.0"

# public name -> (module, attribute in it; None for the module itself)
_API = {
    "errors": (".core.errors", None),
    "formats": (".core.formats", None),
    "CursorEvent": (".core.cursor", "CursorEvent"),
    "CursorShape": (".core.cursor", "CursorShape"),
    "CursorType": (".core.cursor", "CursorType"),
    "FrameType": (".core.formats", "FrameType"),
    "Frame": (".core.session", "Frame"),
    "HostInfo": (".core.session", "HostInfo"),
    "Session": (".core.session", "Session"),
    "SessionState": (".core.session", "SessionState"),
    "open": (".core.session", "open"),
    "recommended_shm_size": (".core.session", "recommended_shm_size"),
}
# The subpackages, so that ``kvmfr_client.core.formats`` works after a bare ``import kvmfr_client`` as it did.
_SUBPACKAGES = ("audio", "cli", "config", "core", "input", "latency", "spice", "viewer")

__all__ = [
    "CursorEvent", "CursorShape", "CursorType", "Frame", "FrameType", "HostInfo", "Session", "SessionState",
    "errors", "formats", "open", "recommended_shm_size",
]


def __getattr__(name: str) -> object:
    if name in _API:
        module_name, attr = _API[name]
        module = importlib.import_module(module_name, __name__)
        value = module if attr is None else getattr(module, attr)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value   # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | set(_SUBPACKAGES))


if TYPE_CHECKING:   # what type checkers and IDEs see
    from .core import errors, formats
    from .core.cursor import CursorEvent, CursorShape, CursorType
    from .core.formats import FrameType
    from .core.session import Frame, HostInfo, Session, SessionState, open, recommended_shm_size
