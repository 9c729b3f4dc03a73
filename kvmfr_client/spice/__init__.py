"""SPICE client (asyncio, no spice-gtk): link and auth, the main and inputs channels, the agent."""

from .client import SpiceClient, SpiceThread, spice_from_config
from .errors import (SpiceAuthError, SpiceConnectError, SpiceError, SpiceLinkError, SpiceProtocolError,
                     SpiceServerGone, SpiceVersionError)
from .link import Address
from .protocol import Button, Modifier, MouseMode

__all__ = [
    "Address", "Button", "Modifier", "MouseMode", "SpiceAuthError", "SpiceClient", "SpiceConnectError",
    "SpiceError", "SpiceLinkError", "SpiceProtocolError", "SpiceServerGone", "SpiceThread",
    "SpiceVersionError", "spice_from_config",
]
