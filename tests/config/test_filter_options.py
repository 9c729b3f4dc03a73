"""The picture filter options (egl:nvGain, egl:nvGainMax, egl:cbMode, egl:preset, eglFilter:*): what one
option cannot say alone is checked before the window opens, in one line with exit status 2; presets are
saved with --save-preset and loaded with egl:preset."""

from __future__ import annotations

import json

import pytest

from kvmfr_client.cli import view
from kvmfr_client.config import exits
from tests.cli.programs import one_line


def _usage(argv, capsys) -> str:
    with pytest.raises(SystemExit) as ended:
        view.main(argv)
    assert ended.value.code == exits.USAGE
    return one_line(capsys.readouterr().err)


@pytest.mark.parametrize("argv, says", [
    (["egl:nvGain=3"], "egl:nvGain: 3 is above egl:nvGainMax (1)"),
    (["egl:nvGain=101", "egl:nvGainMax=100"], "egl:nvGain: must be 0..100"),
    (["egl:nvGainMax=0"], "egl:nvGainMax: must be 1..100"),
    (["egl:cbMode=4"], "egl:cbMode: must be 0..3"),
    (["eglFilter:ffxCASSharpness=1.5"], "eglFilter:ffxCASSharpness: must be 0..1"),
    (["eglFilter:order=ffxCAS,bilateral"], "eglFilter:order: unknown filter 'bilateral'"),
    (["eglFilter:order=cas,ffxCAS"], "eglFilter:order: ffxCAS is named twice"),
    (["egl:preset=nothing-here"], "egl:preset: no preset 'nothing-here'"),
    (["egl:preset=../escape"], "preset name '../escape'"),
])
def test_bad_filter_values_are_one_line_exit_2(places, capsys, signals_kept, tmp_path, argv, says):
    line = _usage([f"app:shmFile={tmp_path / 'none'}", *argv], capsys)
    assert line.startswith("kvmfr-view: error: ") and says in line, line


def test_save_preset_then_load_it(places, capsys, signals_kept, tmp_path):
    shm = f"app:shmFile={tmp_path / 'none'}"
    rc = view.main([shm, "--save-preset", "night", "egl:nvGainMax=4", "egl:nvGain=3", "egl:cbMode=2",
                    "eglFilter:ffxCAS=yes", "eglFilter:ffxCASSharpness=0.25", "eglFilter:order=nightvision"])
    assert rc == exits.OK
    path = places.xdg / "kvmfr-client" / "presets" / "night.json"
    assert "saved the filter chain as preset 'night'" in capsys.readouterr().out
    assert json.loads(path.read_text())["passes"] == [
        {"filter": "nightvision", "gain": 3.0}, {"filter": "cas", "sharpness": 0.25},
        {"filter": "colorblind", "mode": 2, "simulate": False}]
    from kvmfr_client.config import load
    from kvmfr_client.viewer import filters
    assert filters.from_config(load(["egl:preset=night"], user_file=False)) == json.loads(path.read_text())["passes"]
    path.write_text('{"passes": [{"filter": "cas", "sharpness": 7}]}')
    line = _usage([shm, "egl:preset=night"], capsys)
    assert "sharpness must be 0..1, got 7" in line, line
