"""Guest audio: Scream (UDP, IVSHMEM) and SPICE playback sources -> jitter buffer -> PulseAudio player.

The viewer uses :class:`AudioService`; ``kvmfr-audio`` is the same without a window.
"""

from kvmfr_client.audio.service import AudioConfigError, AudioService

__all__ = ["AudioService", "AudioConfigError"]
