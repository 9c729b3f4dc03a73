"""Sink control through ``pulsectl``: list sinks, check a sink name, read and set volume."""

from __future__ import annotations

import pulsectl


class SinkError(LookupError):
    """A sink name that the sound server does not have; the message lists the ones it has."""


def _client(server: str | None) -> pulsectl.Pulse:
    return pulsectl.Pulse("kvmfr-audio", server=server)


def sink_names(server: str | None = None) -> list[str]:
    with _client(server) as pulse:
        return [s.name for s in pulse.sink_list()]


def describe_sinks(server: str | None = None) -> list[str]:
    with _client(server) as pulse:
        default = pulse.server_info().default_sink_name
        return [f"{'*' if s.name == default else ' '} {s.name}  ({s.description}; {s.sample_spec.rate} Hz, "
                f"{s.sample_spec.channels} ch)" for s in pulse.sink_list()]


def check_sink(name: str, server: str | None = None) -> None:
    try:
        names = sink_names(server)
    except pulsectl.PulseError as exc:
        raise SinkError(f"cannot reach the sound server {server or '(default)'} to find sink {name!r}: {exc}") from None
    if name not in names:
        raise SinkError(f"no sink named {name!r}; this server has: {', '.join(names) or 'none'}")


def set_stream_volume(stream_name: str, volume: float, server: str | None = None) -> int:
    """Set the volume (0..1) of our playback streams called ``stream_name``; returns how many matched."""
    with _client(server) as pulse:
        matched = 0
        for sink_input in pulse.sink_input_list():
            if sink_input.proplist.get("media.name") == stream_name:
                pulse.volume_set_all_chans(sink_input, volume)
                matched += 1
        return matched
