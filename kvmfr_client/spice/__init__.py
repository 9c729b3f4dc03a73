"""SPICE client (asyncio, no spice-gtk): link and auth, the main and inputs channels, the agent."""

import importlib

# Loaded on first use (PEP 562), so that kvmfr-input's entry module (kvmfr_client.spice.cli) can take
# SIGINT/SIGTERM over before asyncio and cryptography load (kvmfr_client.startup).
_WHERE = {
    "SpiceClient": ".client", "SpiceThread": ".client", "spice_from_config": ".client",
    "SpiceAuthError": ".errors", "SpiceConnectError": ".errors", "SpiceError": ".errors",
    "SpiceLinkError": ".errors", "SpiceProtocolError": ".errors", "SpiceServerGone": ".errors",
    "SpiceVersionError": ".errors", "Address": ".link", "Button": ".protocol", "Modifier": ".protocol",
    "MouseMode": ".protocol",
}

__all__ = [
    "Address", "Button", "Modifier", "MouseMode", "SpiceAuthError", "SpiceClient", "SpiceConnectError",
    "SpiceError", "SpiceLinkError", "SpiceProtocolError", "SpiceServerGone", "SpiceThread",
    "SpiceVersionError", "spice_from_config",
]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
