"""Guest audio: Scream (UDP, IVSHMEM) and SPICE playback sources -> jitter buffer -> PulseAudio player.

The viewer uses :class:`AudioService`; ``kvmfr-audio`` is the same without a window.
"""

# Loaded on first use (PEP 562), so that kvmfr-audio's entry module (kvmfr_client.audio.cli) can take
# SIGINT/SIGTERM over before numpy and PulseAudio's binding load (kvmfr_client.startup).
__all__ = ["AudioService", "AudioConfigError"]


def __getattr__(name: str):
    if name in __all__:
        from kvmfr_client.audio import service
        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
