"""A Looking Glass user's configuration, as kvmfr-view reads it: B7 INI files at Looking Glass's places, its
short flags (booleans toggle), case-insensitive names, one warning for what we do not implement."""

from __future__ import annotations

import pytest

from kvmfr_client.cli.view import parse_command_line
from kvmfr_client.config import lg_b7

# A B7 client.ini with every section of B7's option table; the options marked "ignored" are B7's but not ours.
B7_INI = """\
; Looking Glass B7 client configuration
[app]
shmFile=kvmfr0
renderer=EGL
allowDMA=yes
framePollInterval=500

[win]
title=Windows VM
size=1920x1080
position=100x50
fullScreen=yes
keepAspect=no
jitRender=yes
quickSplash=yes
noScreensaver=yes

[egl]
vsync=yes
scale=1
doubleBuffer=no

[eglFilter]
ffxFSR=yes
downscaleFilter=1

[i3]
globalFullScreen=no

[input]
escapeKey=97
rawMouse=no
mouseSens=3
autoCapture=yes

[opengl]
mipmap=no

[pipewire]
outDevice=alsa_output.pci-0000_00_1f.3.analog-stereo
recDevice=alsa_input.usb-mic

[spice]
host=192.168.1.5
port=5901
audio=yes
showCursorDot=no

[wayland]
warpSupport=no

[audio]
periodSize=256
bufferLatency=12
"""

HONOURED = {
    "app:shmFile": "/dev/kvmfr0", "app:pollUs": 500,
    "win:title": "Windows VM", "win:size": (1920, 1080), "win:position": (100, 50), "win:fullScreen": True,
    "win:keepAspect": False, "egl:vsync": True, "win:filter": "nearest",
    "input:escapeKey": 97, "input:rawMouse": False, "input:mouseSens": 3,
    "audio:sink": "alsa_output.pci-0000_00_1f.3.analog-stereo",
    "spice:host": "192.168.1.5", "spice:port": 5901, "audio:spice": True, "eglFilter:ffxFSR": True,
    "win:noScreensaver": True, "eglFilter:downscaleFilter": 1, "spice:showCursorDot": False,
}
IGNORED = ["app:renderer", "app:allowDMA", "win:jitRender", "win:quickSplash",
           "egl:doubleBuffer", "i3:globalFullScreen", "input:autoCapture", "opengl:mipmap",
           "pipewire:recDevice", "wayland:warpSupport", "audio:periodSize",
           "audio:bufferLatency"]


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "warning:" in line]


def test_the_ini_covers_every_section_of_the_b7_table():
    sections = {o.key.split(":")[0] for o in lg_b7.B7_OPTIONS}
    assert sections == {line[1:-1] for line in B7_INI.splitlines() if line.startswith("[")}


@pytest.mark.parametrize("where", ["system", "home_dotfile", "xdg_lg"])
def test_b7_ini_at_each_looking_glass_place_is_honoured_with_one_warning(places, capsys, where):
    places.write(getattr(places, where), B7_INI)
    _, cfg = parse_command_line([])
    for key, value in HONOURED.items():
        assert cfg[key] == value, key
    assert cfg.ignored == IGNORED
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1, warnings
    assert all(name in warnings[0] for name in IGNORED)


def test_precedence_across_the_sources(places, capsys):
    """Each later source wins: /etc, ~/.looking-glass-client.ini, XDG looking-glass, ours, -C, command line."""
    keys = ["win:title", "spice:host", "audio:sink", "audio:server", "audio:interface", "spice:passwordFile"]
    layers = ["system", "home_dotfile", "xdg_lg", "ours", "cfile"]
    for n, layer in enumerate(layers):
        # layer n sets keys[n:], so keys[j] is last set by layer j
        text = "".join(f"[{k.split(':')[0]}]\n{k.split(':')[1]}={layer}\n" for k in keys[n:])
        path = places.etc.parent / "extra.ini" if layer == "cfile" else getattr(places, layer)
        places.write(path, text)
    _, cfg = parse_command_line(["-C", str(places.etc.parent / "extra.ini"), "spice:passwordFile=cli"])
    assert [cfg[k] for k in keys] == [*layers, "cli"]
    assert _warnings(capsys.readouterr().err) == []


def test_c_file_is_read_after_ours_wherever_it_stands_and_the_command_line_last(places):
    places.write(places.ours, "[win]\ntitle=ours\nsize=800x600\n")
    extra = places.write(places.home / "more.ini", "[win]\ntitle=more\n")
    _, cfg = parse_command_line(["win:title=cli", "-C", str(extra)])
    assert cfg["win:title"] == "cli" and cfg["win:size"] == (800, 600)
    _, cfg = parse_command_line(["--config", str(extra)])
    assert cfg["win:title"] == "more"


# Every B7 short flag with its B7 meaning: boolean flags toggle the current value, the others take one.
VALUE_FLAGS = [("-f", "kvmfr1", "app:shmFile", "/dev/kvmfr1"), ("-c", "10.0.0.2", "spice:host", "10.0.0.2"),
               ("-p", "5930", "spice:port", 5930), ("-m", "97", "input:escapeKey", 97),
               ("-K", "30", "win:fpsMin", 30.0)]
TOGGLES = [("-s", "spice:enable"), ("-k", "win:showFPS"), ("-F", "win:fullScreen"), ("-d", "win:borderless"),
           ("-a", "win:autoResize"), ("-n", "win:allowResize"), ("-r", "win:keepAspect"), ("-T", "win:maximize"),
           ("-G", "input:grabKeyboard"), ("-M", "input:hideCursor")]


@pytest.mark.parametrize("flag, value, key, expected", VALUE_FLAGS)
def test_value_flags(places, flag, value, key, expected):
    _, cfg = parse_command_line([flag, value])
    assert cfg[key] == expected


@pytest.mark.parametrize("flag, key", TOGGLES)
def test_boolean_flags_toggle(places, flag, key):
    _, default = parse_command_line([])
    _, once = parse_command_line([flag])
    _, twice = parse_command_line([flag, flag])
    assert once[key] is (not default[key]) and twice[key] is default[key]
    # ... and they toggle what the INI files set, as in Looking Glass
    section, name = key.split(":")
    places.write(places.home_dotfile, f"[{section}]\n{name}={'no' if default[key] else 'yes'}\n")
    _, after_ini = parse_command_line([flag])
    assert after_ini[key] is default[key]


def test_q_toggles_the_alerts_we_implement(places, capsys):
    _, cfg = parse_command_line(["-q"])
    assert cfg["win:alerts"] is False and not cfg.ignored
    assert not _warnings(capsys.readouterr().err)


def test_s_turns_spice_off_and_long_switches_set_yes(places):
    _, cfg = parse_command_line(["-s", "--fullscreen", "--fullscreen", "--show-fps", "--vsync"])
    assert cfg["spice:enable"] is False
    assert cfg["win:fullScreen"] is True and cfg["win:showFPS"] is True and cfg["egl:vsync"] is True


@pytest.mark.parametrize("flags, ignored", [
    (["-g", "OpenGL"], ["app:renderer"]), (["-j"], ["spice:scaleCursor"]),
    (["-Q"], ["win:ignoreQuit"]), (["-S", "-Q"], ["win:ignoreQuit"]),   # -S (win:noScreensaver) is implemented
    (["-S", "win:jitRender", "-Q", "-S"], ["win:jitRender", "win:ignoreQuit"]),
])
def test_flags_of_options_we_do_not_implement_warn_once(places, capsys, flags, ignored):
    _, cfg = parse_command_line(flags)
    assert cfg.ignored == ignored
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and all(name in warnings[0] for name in ignored)


def test_l_prints_the_licence_and_exits_0(places, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_command_line(["-l"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "GNU General Public License" in out and "version 2" in out and "any later version" in out


def test_the_flag_table_gives_every_b7_short_flag_its_b7_option():
    from kvmfr_client.config import flags, registry
    for lg in (o for o in lg_b7.B7_OPTIONS if o.short):
        [flag] = [f for f in flags.flags_for(flags.VIEW) if lg.short in f.spellings]
        ours = registry.resolve(lg.key)
        assert flag.key == (ours[0].key if ours else lg.key), lg.short
        assert flag.takes_value is not lg.is_bool, lg.short


def test_every_b7_short_flag_is_accepted(places, capsys):
    for lg in lg_b7.B7_OPTIONS:
        if not lg.short or lg.short == "-l":
            continue
        argv = [lg.short] if lg.is_bool else [lg.short, {"-C": str(places.write(places.home / "c.ini", "")),
                                                         "-f": "kvmfr0", "-m": "70", "-K": "60", "-c": "h",
                                                         "-p": "1", "-g": "EGL"}[lg.short]]
        parse_command_line(argv)   # no SystemExit


def test_long_form_toggles_and_names_match_in_any_case(places):
    places.write(places.xdg_lg, "[WIN]\nFULLSCREEN=yes\n[Spice]\nPort=5902\n")
    _, cfg = parse_command_line(["win:fullscreen", "EGL:VSYNC=yes", "Win:Size=640x480"])
    assert cfg["win:fullScreen"] is False      # yes from the file, toggled by the bare name
    assert cfg["spice:port"] == 5902 and cfg["egl:vsync"] is True and cfg["win:size"] == (640, 480)


def test_vsync_has_one_option_under_its_names(places):
    for name in ("egl:vsync", "opengl:vsync", "win:vsync", "OpenGL:VSync"):
        _, cfg = parse_command_line([f"{name}=yes"])
        assert cfg["egl:vsync"] is True, name


@pytest.mark.parametrize("argv, ini, expected", [
    (["win:fullscren=yes"], None, "did you mean win:fullScreen?"),
    (["wn:size=10x10"], None, "did you mean win:size?"),
    (["win:jitRendr"], None, "did you mean win:jitRender?"),
    ([], "[win]\nfulScreen=yes\n", "did you mean win:fullScreen?"),
])
def test_unknown_names_are_one_error_line_with_did_you_mean(places, capsys, argv, ini, expected):
    if ini is not None:
        places.write(places.ours, ini)
    with pytest.raises(SystemExit) as exit_:
        parse_command_line(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kvmfr-view: error: unknown option") and expected in err[0], err
    if ini is not None:
        assert str(places.ours) in err[0]


@pytest.mark.parametrize("argv, message", [
    (["-p", "99999"], "spice:port: must be 0..65535"),
    (["-K", "fast"], "win:fpsMin: must be 0..1000 frames per second, or -1 (auto), got fast"),
    (["win:size"], "win:size needs a value"),
    (["-C", "/nonexistent/x.ini"], "config file /nonexistent/x.ini does not exist"),
    (["-c"], "expected one argument"),
])
def test_bad_values_are_one_error_line_and_exit_2(places, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        parse_command_line(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_bad_value_in_a_file_names_the_file(places, capsys):
    places.write(places.home_dotfile, "[win]\nfullScreen=maybe\n")
    with pytest.raises(SystemExit):
        parse_command_line([])
    err = capsys.readouterr().err
    assert "win:fullScreen: expected yes/no" in err and str(places.home_dotfile) in err
