"""Core options (the reader), declared once; see kvmfr_client.config.

``app:shmFile`` is declared with the window's options (kvmfr_client/viewer/options.py); when unset,
:func:`default_shm` picks the device the way Looking Glass does.
"""

import os

from .config import Option, register


def default_shm() -> str:
    """Like Looking Glass: /dev/kvmfr0 when the kvmfr module made it, else /dev/shm/looking-glass."""
    return "/dev/kvmfr0" if os.path.exists("/dev/kvmfr0") else "/dev/shm/looking-glass"


register(
    Option("app", "pollUs", 250, "how often (microseconds) the reader checks the queues when idle", parse=int),
)
