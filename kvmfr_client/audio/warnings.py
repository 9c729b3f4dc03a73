"""Rate-limited warnings for the audio sources: the same class as the SPICE channels use (audio builds on
``kvmfr_client.spice``, so the one implementation lives there)."""

from kvmfr_client.spice.warnings import RateLimitedWarning

__all__ = ["RateLimitedWarning"]
