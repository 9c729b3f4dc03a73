"""Exceptions raised by the SPICE client; each message says what went wrong and what to do."""

from __future__ import annotations


class SpiceError(Exception):
    """Base class of every SPICE client error."""


class SpiceConnectError(SpiceError):
    """No SPICE server could be reached at the given address."""


class SpiceServerGone(SpiceError):
    """The server closed a channel (QEMU quit, or the guest was shut down)."""


class SpiceProtocolError(SpiceError):
    """The server sent something this client cannot understand."""


class SpiceVersionError(SpiceProtocolError):
    """The server speaks another major version of the SPICE protocol."""


class SpiceLinkError(SpiceError):
    """The server refused to link a channel; ``code`` is the SPICE link result."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class SpiceAuthError(SpiceLinkError):
    """The server refused the password (or wants one and none was given)."""
