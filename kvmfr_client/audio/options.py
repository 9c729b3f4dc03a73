"""The ``audio:*`` options (Looking-Glass style); `kvmfr-view --help-options` lists them."""

from __future__ import annotations

from kvmfr_client import config


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive number of milliseconds, got {value}")
    return value


def _positive_ms(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be a positive number of milliseconds, got {text}")
    return value


config.register(
    config.Option("audio", "scream", "",
                  "Scream source: udp://GROUP_OR_HOST:PORT (e.g. udp://239.255.77.77:4010) or ivshmem:PATH "
                  "(e.g. ivshmem:/dev/shm/scream-ivshmem); empty = off"),
    config.Option("audio", "interface", "", "network interface (name or IPv4 address) to join the Scream multicast group on"),
    config.Option("audio", "spice", False, "play the guest's SPICE playback channel (spice:host/spice:port)",
                  parse=config.parse_bool),
    config.Option("audio", "sink", "", "PulseAudio/PipeWire sink name to play on; empty = the default sink"),
    config.Option("audio", "latency", 19, "target latency in ms from packet arrival to the sink (the sink device's own buffer comes on top)", parse=_positive),
    config.Option("audio", "deviceLatency", 2.0,
                  "latency in ms to ask of the sink device (its period, e.g. PipeWire's quantum); audio in the device no "
                  "longer protects against a late packet, so it is kept small", parse=_positive_ms),
    config.Option("audio", "realtime", False,
                  "run the audio threads real-time (round-robin, priority 3: below the sound server's own) instead of "
                  "at nice -11, where permitted", parse=config.parse_bool),
    config.Option("audio", "maxLatency", 100, "latency (ms) above which the excess is skipped at once to catch up",
                  parse=_positive),
    config.Option("audio", "server", "", "PulseAudio server to connect to (as PULSE_SERVER); empty = the usual one"),
)
