"""Sink control through ``pulsectl``: list sinks, check a sink name."""

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

