"""Command-line flags: every flag that sets an option is a spelling of it, listed once in :data:`FLAGS`.

A boolean flag without a fixed value toggles the option, as Looking Glass's short flags do (``-s`` turns
SPICE off, since ``spice:enable`` defaults to yes); our long switches (``--fullscreen``) set a fixed value;
other flags take a value (``-c HOST``). ``section:option=value`` (or ``section:option`` alone, which toggles
a boolean) may stand anywhere on the command line; every item is applied in command-line order.

Flags that choose what a program does rather than a setting (``--headless``, ``--inspect``, ``--json``,
``--frames``, ``--benchmark``, ``--exit-after``, ``--stats-json``, ``--list-sinks``, ``--delay``...) stay plain
argparse flags of that program; :func:`build_parser` adds ``--version`` and ``--help-options`` to each.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

from . import exits, lg_b7, loader, registry
from .registry import ConfigError

VIEW, AUDIO, INPUT, AGENT = "kvmfr-view", "kvmfr-audio", "kvmfr-input", "kvmfr-agent"


@dataclass(frozen=True)
class Program:
    sections: tuple[str, ...]   # what --help-options lists
    standard_files: bool        # reads the Looking Glass and kvmfr-client INI files (loader.standard_files)


PROGRAMS = {
    VIEW: Program(("app", "win", "egl", "eglFilter", "spice", "input", "audio"), True),
    AUDIO: Program(("audio", "spice"), True),
    INPUT: Program(("spice",), True),
    AGENT: Program(("agent",), False),   # the guest side: no host client files
}


@dataclass(frozen=True)
class Flag:
    spellings: tuple[str, ...]
    key: str                       # the option it spells: ours, an alias, or a Looking Glass name we ignore
    programs: tuple[str, ...]
    value: str | None = None       # a switch's fixed value; None: a boolean toggles, others take a value
    metavar: str | None = None
    expand: Callable[[str], list[str]] | None = None   # one value that sets several options...
    sets: tuple[str, ...] = ()                          # ...these (for --help and the docs)
    help: str | None = None

    def describe(self) -> str:
        """What it sets, e.g. ``win:fullScreen=yes`` or ``audio:spice=yes, spice:host, spice:port``."""
        if self.sets:
            return ", ".join(self.sets)
        return f"{self.key}={self.value}" if self.value is not None else self.key

    @property
    def is_bool(self) -> bool:
        found = registry.resolve(self.key)
        if found is not None:
            return found[0].is_bool
        lg = lg_b7.lookup(self.key)
        return lg is not None and lg.is_bool

    @property
    def takes_value(self) -> bool:
        return self.value is None and (self.expand is not None or not self.is_bool)


def _spice_address(text: str) -> list[str]:
    from kvmfr_client.spice.link import Address
    address = Address.parse(text)
    return [f"spice:host={address.host}", f"spice:port={address.port}"]


def _audio_spice(text: str) -> list[str]:
    if "/" in text or text.startswith("unix:"):
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return ["audio:spice=yes", *_spice_address(text)]


# The one table of flags. Looking Glass B7's short flags first, with its meaning (kvmfr-view).
FLAGS: tuple[Flag, ...] = (
    Flag(("-C", "--config"), "app:configFile", (VIEW, AUDIO, INPUT, AGENT), metavar="FILE",
         help="also read this INI file (repeatable; after the standard files, before the command line)"),
    Flag(("-l",), "app:license", (VIEW,), help="print the licence and exit"),
    Flag(("-g",), "app:renderer", (VIEW,), metavar="RENDERER"),
    Flag(("-f", "--shm"), "app:shmFile", (VIEW,), metavar="PATH"),
    Flag(("-m",), "input:escapeKey", (VIEW,), metavar="KEY"),
    Flag(("-G",), "input:grabKeyboard", (VIEW,)),
    Flag(("-M",), "input:hideCursor", (VIEW,)),
    Flag(("-s",), "spice:enable", (VIEW,)),
    Flag(("-c",), "spice:host", (VIEW,), metavar="HOST"),
    Flag(("-p",), "spice:port", (VIEW,), metavar="PORT"),
    Flag(("-j",), "spice:scaleCursor", (VIEW,)),
    Flag(("-q",), "win:alerts", (VIEW,)),
    Flag(("-n",), "win:allowResize", (VIEW,)),
    Flag(("-a",), "win:autoResize", (VIEW,)),
    Flag(("-d",), "win:borderless", (VIEW,)),
    Flag(("-K",), "win:fpsMin", (VIEW,), metavar="FPS"),
    Flag(("-F",), "win:fullScreen", (VIEW,)),
    Flag(("-Q",), "win:ignoreQuit", (VIEW,)),
    Flag(("-r",), "win:keepAspect", (VIEW,)),
    Flag(("-T",), "win:maximize", (VIEW,)),
    Flag(("-S",), "win:noScreensaver", (VIEW,)),
    Flag(("-k",), "win:showFPS", (VIEW,)),
    # kvmfr-view's own long switches: they set yes (they do not toggle)
    Flag(("--fullscreen",), "win:fullScreen", (VIEW,), value="yes"),
    Flag(("--show-fps",), "win:showFPS", (VIEW,), value="yes"),
    Flag(("--vsync",), "egl:vsync", (VIEW,), value="yes"),
    Flag(("--displays",), "app:displays", (VIEW,), metavar="FILE,FILE,..."),   # several displays (viewer/multi.py)
    # kvmfr-audio
    Flag(("--scream",), "audio:scream", (AUDIO,), metavar="udp://GROUP_OR_HOST:PORT | ivshmem:PATH"),
    Flag(("--interface",), "audio:interface", (AUDIO,), metavar="NAME_OR_IPV4"),
    Flag(("--spice",), "audio:spice", (AUDIO,), metavar="HOST:PORT", expand=_audio_spice,
         sets=("audio:spice=yes", "spice:host", "spice:port"),
         help="also play the SPICE playback channel of this server"),
    Flag(("--spice-password-file",), "spice:passwordFile", (AUDIO,), metavar="FILE"),
    Flag(("--sink",), "audio:sink", (AUDIO,), metavar="NAME"),
    Flag(("--latency",), "audio:latency", (AUDIO,), metavar="MS"),
    Flag(("--max-latency",), "audio:maxLatency", (AUDIO,), metavar="MS"),
    Flag(("--server",), "audio:server", (AUDIO,), metavar="SERVER"),
    # kvmfr-input
    Flag(("--spice",), "spice:host", (INPUT,), metavar="HOST:PORT", expand=_spice_address,
         sets=("spice:host", "spice:port"),
         help="SPICE server: HOST:PORT, or a UNIX socket path (unix:/path or /path); default: as configured"),
    Flag(("--password-file",), "spice:passwordFile", (INPUT,), metavar="FILE"),
    # kvmfr-agent (guest side; options in guest_agent/options.py)
    Flag(("--shm",), "agent:shmFile", (AGENT,), metavar="PATH"),
    Flag(("--source",), "agent:source", (AGENT,), metavar="SOURCE"),
    Flag(("--size",), "agent:size", (AGENT,), metavar="WxH"),
    Flag(("--fps",), "agent:fps", (AGENT,), metavar="FPS"),
    Flag(("--format",), "agent:format", (AGENT,), metavar="FORMAT"),
    Flag(("--frames",), "agent:frames", (AGENT,), metavar="N"),
    Flag(("--no-cursor",), "agent:cursor", (AGENT,), value="no"),
    Flag(("--always",), "agent:always", (AGENT,), value="yes"),
    Flag(("--protocol",), "agent:protocol", (AGENT,), metavar="b7|master"),
    # kvmfr-agent inside a VM: its IVSHMEM device found by itself (guest_agent/device.py)
    Flag(("--device",), "agent:shmFile", (AGENT,), metavar="auto|PCI-ADDRESS|PATH"),
    Flag(("--display",), "agent:display", (AGENT,), metavar="N"),
)

ITEMS = "config_items"    # argparse dest holding every option item, in command-line order
_ITEM = re.compile(r"[A-Za-z][A-Za-z0-9_]*:[A-Za-z][A-Za-z0-9_]*(=.*)?", re.S)

LICENSE = """\
kvmfr-client: a Looking Glass B7 compatible viewer, guest agent and tools.
Copyright (C) the kvmfr-client authors.

This program is free software; you can redistribute it and/or modify it under the terms of the GNU General
Public License as published by the Free Software Foundation; either version 2 of the License, or (at your
option) any later version.

This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY; without even the
implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU General Public License
for more details.

You should have received a copy of the GNU General Public License along with this program; if not, see
<https://www.gnu.org/licenses/>.  SPDX-License-Identifier: GPL-2.0-or-later"""


def checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` for a program's own flag (``--frames``) from a registry parser such as
    ``registry.number(int, 1, 10**9)``: its message becomes the one error line ("--frames: must be ...")."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def flags_for(program: str) -> list[Flag]:
    return [f for f in FLAGS if program in f.programs]


def spellings_of(key: str, program: str) -> list[str]:
    """The flags of ``program`` that set ``key`` (or one of its aliases), e.g. ["-F", "--fullscreen"]."""
    out = []
    for flag in flags_for(program):
        found = registry.resolve(flag.key)
        if flag.key == key or (found is not None and found[0].key == key):
            out += flag.spellings
    return out


def version_text(program: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    from kvmfr_client.core.native import lib
    try:
        package = version("kvmfr-client")
    except PackageNotFoundError:
        package = "(not installed)"
    return (f"{program} {package} (Looking Glass B7 wire format: LGMP {lib.LGMP_PROTOCOL_VERSION}, "
            f"KVMFR {lib.KVMFR_VERSION})")


def help_options(program: str) -> str:
    """Each option ``program`` reads, once, with its default as you would type it, its flags and aliases."""
    lines = []
    for opt in registry.options(PROGRAMS[program].sections):
        spelled = spellings_of(opt.key, program)
        flags = f"  ({', '.join(spelled)})" if spelled else ""
        lines.append(f"{opt.key}={opt.show(opt.default_value())}{flags}")
        choices = f" [{'|'.join(opt.choices)}]" if opt.choices else ""
        lines.append(f"    {opt.help}{choices}")
        also = registry.aliases_of(opt.key)
        if also:
            lines.append(f"    also spelled: {', '.join(also)}")
    lines += ["", "yes/no also read true/false, on/off, 1/0; `section:option` alone toggles a boolean."]
    if PROGRAMS[program].standard_files:
        lines += ["A Looking Glass short flag of a boolean toggles it too. Looking Glass B7 options not listed here",
                  "are accepted and ignored, with one warning that lists them (docs/looking-glass-users.md)."]
    return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2) and the option items of :data:`FLAGS` and
    ``section:option[=value]`` collected in command-line order (``args.config_items``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._mark_items(argv), namespace)

    def _mark_items(self, argv: list[str]) -> list[str]:
        """Turn each ``section:option[=value]`` word into ``--set=word``, so it keeps its place among the
        flags (argparse would gather positionals apart)."""
        if "--set" not in self._option_string_actions:
            return argv
        out, i = [], 0
        while i < len(argv):
            word = argv[i]
            if word == "--":
                return out + argv[i:]
            action = self._option_string_actions.get(word)
            if action is not None and action.nargs is None:   # its value follows: leave it alone
                out += argv[i:i + 2]
                i += 2
                continue
            out.append(f"--set={word}" if _ITEM.fullmatch(word) else word)
            i += 1
        return out


class _FlagAction(argparse.Action):
    def __init__(self, option_strings, dest, flag: Flag, **kw):
        self.flag = flag
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, value, option_string=None):
        flag = self.flag
        if flag.value is not None:
            new = [f"{flag.key}={flag.value}"]
        elif not flag.takes_value:
            new = [flag.key]   # a toggle, as in Looking Glass
        elif flag.expand is not None:
            try:
                new = flag.expand(value)
            except ValueError as exc:
                parser.error(f"{option_string}: {exc}")
        else:
            new = [f"{flag.key}={value}"]
        _append(namespace, new)


class _ItemAction(argparse.Action):
    def __call__(self, parser, namespace, value, option_string=None):
        _append(namespace, [value])


def _append(namespace, items: list[str]) -> None:
    setattr(namespace, ITEMS, [*(getattr(namespace, ITEMS, None) or []), *items])


class _PrintAndExit(argparse.Action):
    def __init__(self, option_strings, dest, text: Callable[[], str], **kw):
        self.text = text
        super().__init__(option_strings, dest, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(self.text())
        parser.exit(0)


def build_parser(program: str, description: str | None = None, *, items: bool = True, **kw: Any) -> Parser:
    """A parser for ``program`` with its option flags (:data:`FLAGS`), ``--version`` and ``--help-options``;
    with ``items``, ``section:option[=value]`` words too. The program adds its own mode flags."""
    parser = Parser(prog=program, description=description, **kw)
    parser.set_defaults(**{ITEMS: []})
    parser.add_argument("--version", action=_PrintAndExit, text=lambda: version_text(program),
                        help="print the version and the wire format, and exit")
    parser.add_argument("--help-options", action=_PrintAndExit, text=lambda: help_options(program),
                        help="list every section:option with its default, flags and other names, and exit")
    group = parser.add_argument_group("options (each flag sets a section:option; see --help-options)")
    for flag in flags_for(program):
        found = registry.resolve(flag.key)
        what = flag.help or (found[0].help if found else f"Looking Glass's {flag.key}: accepted, not implemented here")
        what += f" (toggles {flag.key})" if flag.value is None and not flag.takes_value else f" ({flag.describe()})"
        group.add_argument(*flag.spellings, action=_FlagAction, flag=flag, dest=f"_flag_{flag.spellings[-1]}",
                           nargs=None if flag.takes_value else 0, metavar=flag.metavar,
                           help=what.replace("%", "%%"))
    if items:
        parser.add_argument("--set", action=_ItemAction, dest="_set", help=argparse.SUPPRESS)
        parser.add_argument("options", nargs="*", metavar="section:option[=value]",
                            help="set an option (a boolean given alone toggles); any number, anywhere")
    return parser


def plain_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The parser's flags that are not spellings of options: what to do (modes, tools), not settings."""
    return [", ".join(a.option_strings) for a in parser._actions
            if a.option_strings and not isinstance(a, (_FlagAction, _PrintAndExit, _ItemAction, argparse._HelpAction))]


def load_config(parser: Parser, args: argparse.Namespace) -> loader.Config:
    """The configuration of ``parser``'s program for parsed ``args``: a bad name or value is one error line
    and exit status 2; Looking Glass options we ignore are listed in one warning on stderr."""
    program = parser.prog
    items = list(getattr(args, ITEMS))
    for word in getattr(args, "options", None) or []:   # only words after "--" get here
        if not _ITEM.fullmatch(word):
            parser.error(f"expected section:option=value, got {word!r}")
        items.append(word)
    try:
        cfg = loader.load(overrides=items, user_file=PROGRAMS[program].standard_files)
    except ConfigError as exc:
        parser.error(str(exc))
    if cfg.ignored:
        print(f"{program}: warning: Looking Glass options not implemented here, ignored: "
              f"{', '.join(cfg.ignored)} (see docs/looking-glass-users.md)", file=sys.stderr)
    if cfg["app:license"]:
        print(LICENSE)
        parser.exit(0)
    return cfg


def start_program(parser: Parser, argv: list[str] | None, log_format: str, *, quiet: int = logging.WARNING,
                  verbose: int = logging.DEBUG) -> tuple[argparse.Namespace, loader.Config]:
    """A program's start: parse its command line, set up logging (``-v``: ``verbose``, else ``quiet``) and
    load its configuration. Bad flags or values end here with one line and exit status 2. From here on
    SIGINT and SIGTERM raise :class:`exits.Stopped` (the program's loop may take them over)."""
    exits.raise_on_stop_signals()
    args = parser.parse_args(argv)
    logging.basicConfig(level=verbose if getattr(args, "verbose", 0) else quiet, format=log_format)
    return args, load_config(parser, args)
