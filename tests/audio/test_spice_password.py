"""``audio:spice`` against a real QEMU whose SPICE server wants a password (``-spice password-secret=``) and
routes a sound card to SPICE (``-audiodev spice``): the playback channel links with the password read from
``spice:passwordFile``, as the input session does; a wrong password is a named error."""

from __future__ import annotations

import time

import pytest

from kvmfr_client import config
from kvmfr_client.audio import AudioService
from tests.support.vm import start_qemu

PASSWORD = "audio-pässword"
SOUND = ["-audiodev", "spice,id=snd0", "-device", "ich9-intel-hda", "-device", "hda-output,audiodev=snd0"]


@pytest.fixture(scope="module")
def qemu_audio(tmp_path_factory):
    vm = start_qemu(tmp_path_factory.mktemp("qemu-audio"), password=PASSWORD, name="audio", extra=SOUND)
    yield vm
    vm.stop()


def _service(pulse, qemu, password_file) -> AudioService:
    cfg = config.load([f"audio:server={pulse.server}", f"audio:sink={pulse.sink48}", "audio:spice=yes",
                       "spice:host=127.0.0.1", f"spice:port={qemu.port}", f"spice:passwordFile={password_file}",
                       "spice:enable=no"], user_file=False)
    return AudioService(cfg)


def _wait(source, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not source.connections and not source.error:
        time.sleep(0.05)


def test_spice_playback_links_with_the_password_file(pulse, qemu_audio, tmp_path, monkeypatch):
    monkeypatch.delenv("KVMFR_SPICE_PASSWORD", raising=False)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    service = _service(pulse, qemu_audio, pw)
    service.start()
    try:
        source = service.sources[0]
        _wait(source, 15)
        assert source.connections == 1, f"not linked: {source.error}\n{qemu_audio.output()[-2000:]}"
        assert source.channel is not None and source.error is None
    finally:
        service.stop()


def test_a_wrong_password_is_refused_by_name(pulse, qemu_audio, tmp_path, monkeypatch):
    monkeypatch.delenv("KVMFR_SPICE_PASSWORD", raising=False)
    pw = tmp_path / "pw"
    pw.write_text("not-the-password\n")
    service = _service(pulse, qemu_audio, pw)
    service.start()
    try:
        source = service.sources[0]
        _wait(source, 15)
        assert source.connections == 0 and source.error and "password" in source.error, source.error
    finally:
        service.stop()
