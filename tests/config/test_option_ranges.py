"""Every numeric option of every program, walked from the one registry: a negative, huge, non-numeric,
infinite or (where it means nothing) zero value is refused when the command line and the INI files are
read, by each program that reads the option, with one line naming the option and what it accepts, exit
status 2. Each program's own ``main`` is called as the console script calls it."""

from __future__ import annotations

import re
import signal

import pytest

import guest_agent.options  # noqa: F401  (declares agent:*)
from guest_agent import cli as agent_cli
from kvmfr_client.audio import cli as audio_cli
from kvmfr_client.cli import view
from kvmfr_client.config import exits, flags, registry
from kvmfr_client.spice import cli as input_cli

MAINS = {flags.VIEW: view.main, flags.AUDIO: audio_cli.main, flags.INPUT: input_cli.main, flags.AGENT: agent_cli.main}
WITH_ITEMS = {flags.VIEW, flags.AUDIO, flags.AGENT}   # kvmfr-input takes commands, not section:option words

NUMBERS = ["-99999999999", "99999999999", "1e400", "inf", "-inf", "nan", "twelve", ""]
WHOLE = ["1.5"]
SIZES = ["0x0", "-5x600", "99999x99999", "70000x600", "1.5x2", "junk", ""]
POSITIONS = ["99999,0", "0,-99999", "left,top", "1.5,2"]
# Options where 0 is no value at all (a poll interval, a latency, a rate): 0 is refused too.
ZERO_IS_NOTHING = {"app:pollUs", "egl:peakLuminance", "audio:latency", "audio:maxLatency", "audio:deviceLatency",
                   "agent:fps"}
# The message must say what is accepted: a range, a size limit, a form, or the few values allowed.
SAYS_WHAT_IS_ACCEPTED = re.compile(r"\.\.|per side|WIDTHxHEIGHT|X,Y|0, 90, 180 or 270|key name|test pattern")


def _bad_values(opt: registry.Option) -> list[str] | None:
    default = opt.default_value()
    if opt.key == "win:position":
        return POSITIONS
    if isinstance(default, bool) or opt.choices:
        return None
    if isinstance(default, tuple):
        return SIZES
    if isinstance(default, (int, float)):
        values = NUMBERS + (WHOLE if isinstance(default, int) and opt.key != "input:escapeKey" else [])
        return values + (["0"] if opt.key in ZERO_IS_NOTHING else [])
    return None


def _cases():
    for program, spec in flags.PROGRAMS.items():
        for opt in registry.options(spec.sections):
            for value in _bad_values(opt) or []:
                for route in ("ini", "item") if program in WITH_ITEMS else ("ini",):
                    yield pytest.param(program, opt.key, value, route, id=f"{program}-{opt.key}={value or 'empty'}-{route}")


CASES = list(_cases())


@pytest.fixture
def signals_kept():
    """The programs' main takes SIGINT/SIGTERM over (config.exits); pytest gets its own back."""
    saved = {s: signal.getsignal(s) for s in exits.STOP_SIGNALS}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_the_walk_covers_every_numeric_option():
    walked = {key for _, key, _, _ in (c.values for c in CASES)}
    assert {"app:pollUs", "win:size", "win:position", "win:rotate", "win:fpsMin", "egl:peakLuminance",
            "spice:port", "input:mouseSens", "input:escapeKey", "audio:latency", "audio:maxLatency",
            "audio:deviceLatency", "agent:size", "agent:fps", "agent:frames"} <= walked


@pytest.mark.parametrize("program, key, value, route", CASES)
def test_a_bad_number_is_one_line_naming_the_option_exit_2(program, key, value, route, places, tmp_path, capsys,
                                                           signals_kept):
    section, name = key.split(":")
    if route == "ini":
        ini = tmp_path / "bad.ini"
        ini.write_text(f"[{section}]\n{name}={value}\n")
        argv = ["-C", str(ini)]
    else:
        argv = [f"{key}={value}"]
    if program == flags.INPUT:
        argv.append("key")   # a command, so that only the option can be wrong
    with pytest.raises(SystemExit) as ended:
        MAINS[program](argv)
    assert ended.value.code == exits.USAGE
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    line = lines[0]
    assert line.startswith(f"{program}: error: {key}"), line
    assert SAYS_WHAT_IS_ACCEPTED.search(line), line
    assert "invalid literal" not in line and "could not convert" not in line, line
