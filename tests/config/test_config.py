"""section:option configuration: defaults, INI files, command-line overrides, clear errors."""

from __future__ import annotations

import pytest

from kvmfr_client import config


def test_ini_file_then_command_line(tmp_path):
    ini = tmp_path / "client.ini"
    ini.write_text("[input]\nescapeKey = 69\n[win]\nfullScreen = yes\nsize = 800x600\n")
    cfg = config.load(files=[ini], user_file=False)
    assert cfg["input:escapeKey"] == 69 and cfg["win:fullScreen"] is True and cfg["win:size"] == (800, 600)
    cfg = config.load(overrides=["win:fullScreen=no", "input:escapeKey=70"], files=[ini], user_file=False)
    assert cfg["win:fullScreen"] is False and cfg["input:escapeKey"] == 70


def test_defaults_are_declared_once():
    keys = [opt.key for opt in config.all_options()]
    assert len(keys) == len(set(keys))
    assert {"app:shmFile", "win:fullScreen", "spice:port", "input:escapeKey", "audio:latency"} <= set(keys)


@pytest.mark.parametrize("override, message", [
    ("win:nosuch=1", "unknown option 'win:nosuch'"),
    ("win:fullScreen=maybe", "win:fullScreen: expected yes/no"),
    ("win:size=big", "win:size: expected WIDTHxHEIGHT"),
    ("novalue", "expected section:option=value"),
])
def test_bad_options_say_what_is_wrong(override, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(overrides=[override], user_file=False)
