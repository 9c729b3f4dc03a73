"""AudioService as the viewer uses it: built from config.load(), named threads, clean stop."""

from __future__ import annotations

import threading

import pytest

from kvmfr_client import config
from kvmfr_client.audio import AudioConfigError, AudioService


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_service_from_viewer_config_starts_and_stops_its_threads(pulse, shm_path):
    cfg = config.load([f"audio:scream=ivshmem:{shm_path}", f"audio:server={pulse.server}",
                       f"audio:sink={pulse.sink48}", "audio:latency=10"], user_file=False)
    service = AudioService(cfg)
    assert service.enabled
    service.start()
    try:
        assert {"audio-player", "audio-scream-ivshmem"} <= _threads()
        assert service.player.target == pytest.approx(0.025)  # IVSHMEM's 20 ms chunks need 25 ms ahead
        assert service.stats()["underruns"] == 0
    finally:
        service.stop()
    assert not {"audio-player", "audio-scream-ivshmem"} & _threads()
    service.stop()  # idempotent


def test_service_without_a_source_does_nothing():
    service = AudioService(config.load([], user_file=False))
    assert not service.enabled
    service.start()
    assert service.players == [] and "audio-player" not in _threads()


@pytest.mark.parametrize("value", ["tcp://1.2.3.4:5", "ivshmem:", "udp://host:notaport"])
def test_bad_scream_option_is_explained(value):
    with pytest.raises((AudioConfigError, config.ConfigError)):
        AudioService(config.load([f"audio:scream={value}"], user_file=False)).start()
