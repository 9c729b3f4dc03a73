"""Every numeric option of every program, walked from the one registry: a negative, huge, non-numeric,
infinite or (where it means nothing) zero value is refused when the command line and the INI files are
read, by each program that reads the option, with one line naming the option and what it accepts, exit
status 2. Each program's own ``main`` is called as the console script calls it."""

from __future__ import annotations

import re

import pytest

import guest_agent.options  # noqa: F401  (declares agent:*)
from guest_agent import cli as agent_cli
from kvmfr_client.audio import cli as audio_cli
from kvmfr_client.cli import view
from kvmfr_client.config import exits, flags, registry
from kvmfr_client.spice import cli as input_cli
from tests.cli.programs import one_line

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


def _usage_error(main, argv: list[str], capsys) -> str:
    """``main(argv)`` called as the console script calls it must end with exit status 2 and one line on
    stderr, no traceback: that line."""
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == exits.USAGE
    return one_line(capsys.readouterr().err)


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
    line = _usage_error(MAINS[program], argv, capsys)
    assert line.startswith(f"{program}: error: {key}"), line
    assert SAYS_WHAT_IS_ACCEPTED.search(line), line
    assert "invalid literal" not in line and "could not convert" not in line, line


# -- plain flags: a program's own flags that are no option (--frames, --delay, --duration...) -------------------

VIEW_BENCH, AGENT_AUDIO = "kvmfr-view --benchmark", "kvmfr-agent audio"
# (the program as its error line names it, what comes before the flag, what after, how it is called)
PLAIN_PROGRAMS = {
    flags.VIEW: ((), (), view.main),
    VIEW_BENCH: (("--benchmark",), (), view.main),
    flags.INPUT: ((), ("key", "a"), input_cli.main),
    flags.AUDIO: ((), (), audio_cli.main),
    AGENT_AUDIO: (("audio",), (), agent_cli.main),
}
# Every plain flag that takes a number (or a size), with whether 0 means nothing and whether it is whole.
# test_every_plain_flag_with_a_value_type_is_listed keeps this table complete.
PLAIN_NUMBERS = {
    (flags.VIEW, "--frames"): dict(zero=True, whole=True),
    (flags.VIEW, "--timeout"): dict(zero=True),
    (flags.VIEW, "--exit-after"): dict(zero=True),
    (VIEW_BENCH, "--duration"): dict(zero=True),
    (VIEW_BENCH, "--warmup"): dict(zero=False),
    (VIEW_BENCH, "--fps"): dict(zero=True),
    (VIEW_BENCH, "--poll-ms"): dict(zero=True),
    (VIEW_BENCH, "--size"): dict(size=True),
    (flags.INPUT, "--delay"): dict(zero=False),
    (flags.INPUT, "--key-delay"): dict(zero=False),
    (flags.INPUT, "--timeout"): dict(zero=True),
    (flags.AUDIO, "--stats"): dict(zero=False),       # 0 is "off"; 0.01 would log a hundred times a second
    (AGENT_AUDIO, "--ivshmem-size"): dict(zero=True, whole=True),
    (AGENT_AUDIO, "--rate"): dict(zero=True, whole=True),
    (AGENT_AUDIO, "--bits"): dict(zero=True, whole=True),
    (AGENT_AUDIO, "--channels"): dict(zero=True, whole=True),
    (AGENT_AUDIO, "--ttl"): dict(zero=False, whole=True),
    (AGENT_AUDIO, "--silence-threshold"): dict(zero=False, whole=True),
}
EXTRA_BAD = {(flags.AUDIO, "--stats"): ["0.01"], (AGENT_AUDIO, "--bits"): ["8"], (AGENT_AUDIO, "--channels"): ["9"],
             (AGENT_AUDIO, "--ttl"): ["256"], (AGENT_AUDIO, "--rate"): ["4000"], (flags.INPUT, "--key-delay"): ["60"]}
SAYS_THE_RANGE = re.compile(r"\.\.|per side|WIDTHxHEIGHT|test pattern|16, 24 or 32")


def _plain_parsers():
    from guest_agent.audio import cli as agent_audio_cli
    from kvmfr_client.latency import benchmark
    return {flags.VIEW: view.build_parser(), VIEW_BENCH: benchmark.build_parser(), flags.INPUT: input_cli.build_parser(),
            flags.AUDIO: audio_cli.build_parser(), AGENT_AUDIO: agent_audio_cli.build_parser()}


def _plain_cases():
    for (program, flag), how in PLAIN_NUMBERS.items():
        if how.get("size"):
            values = SIZES
        else:
            values = NUMBERS + (WHOLE if how.get("whole") else []) + (["0"] if how["zero"] else [])
        for value in values + EXTRA_BAD.get((program, flag), []):
            yield pytest.param(program, flag, value, id=f"{program}-{flag}={value or 'empty'}")


def test_every_plain_flag_with_a_value_type_is_listed():
    """A new numeric flag of any program must be added to PLAIN_NUMBERS (and so be range-checked): none
    converts its value with a bare int or float, which would take -5, 1e400, inf or nan."""
    typed = {(program, action.option_strings[-1]): action.type
             for program, parser in _plain_parsers().items() for action in parser._actions
             if action.option_strings and action.type is not None and not isinstance(action, flags._FlagAction)}
    assert set(typed) == set(PLAIN_NUMBERS), set(typed) ^ set(PLAIN_NUMBERS)
    bare = [key for key, convert in typed.items() if convert in (int, float)]
    assert not bare, f"not range-checked: {bare}"


@pytest.mark.parametrize("program, flag, value", list(_plain_cases()))
def test_a_bad_plain_flag_value_is_one_line_naming_the_flag_exit_2(program, flag, value, places, capsys,
                                                                  signals_kept):
    before, after, main = PLAIN_PROGRAMS[program]
    line = _usage_error(main, [*before, f"{flag}={value}", *after], capsys)
    assert line.startswith(f"{program}: error: argument {flag}: "), line
    assert SAYS_THE_RANGE.search(line), line
    assert "invalid" not in line and "could not convert" not in line, line


@pytest.mark.parametrize("program, flag, value", [
    (flags.INPUT, "--delay", "0"), (flags.INPUT, "--key-delay", "0"), (VIEW_BENCH, "--warmup", "0"),
    (flags.AUDIO, "--stats", "0"), (AGENT_AUDIO, "--ttl", "0"), (AGENT_AUDIO, "--silence-threshold", "0"),
    (flags.VIEW, "--timeout", "0.1"), (VIEW_BENCH, "--fps", "0.01"), (VIEW_BENCH, "--size", "320x240")])
def test_the_edges_of_each_range_are_accepted(program, flag, value):
    """The range is inclusive: its edges (and a 0 that means "none" or "off") parse."""
    parser = _plain_parsers()[program]
    before, after, _ = PLAIN_PROGRAMS[program]
    if program == AGENT_AUDIO:
        before = ()   # "audio" is the agent's word for this parser
    args = parser.parse_args([*before, f"{flag}={value}", *after])
    assert getattr(args, flag.lstrip("-").replace("-", "_")) is not None
