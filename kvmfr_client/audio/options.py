"""The ``audio:*`` options (Looking-Glass style); `kvmfr-view --help-options` lists them."""

from __future__ import annotations

from kvmfr_client import config


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive number of milliseconds, got {value}")
    return value


config.register(
    config.Option("audio", "scream", "",
                  "Scream source: udp://GROUP_OR_HOST:PORT (e.g. udp://239.255.77.77:4010) or ivshmem:PATH "
                  "(e.g. ivshmem:/dev/shm/scream-ivshmem); empty = off"),
    config.Option("audio", "interface", "", "network interface (name or IPv4 address) to join the Scream multicast group on"),
    config.Option("audio", "spice", False, "play the guest's SPICE playback channel (spice:host/spice:port)",
                  parse=config.parse_bool),
    config.Option("audio", "sink", "", "PulseAudio/PipeWire sink name to play on; empty = the default sink"),
    config.Option("audio", "latency", 20, "target latency in ms from packet arrival to the speaker", parse=_positive),
    config.Option("audio", "maxLatency", 100, "queued audio (ms) above which the oldest is dropped to catch up",
                  parse=_positive),
    config.Option("audio", "server", "", "PulseAudio server to connect to (as PULSE_SERVER); empty = the usual one"),
)
