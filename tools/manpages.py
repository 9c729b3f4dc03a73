"""Writes the man pages of every program into docs/man/ from their argparse parsers and the option
registry, so a page cannot drift from the code::

    python -m tools.manpages            # (re)write docs/man/*.1
    python -m tools.manpages --check    # exit 1 when a committed page differs from what this writes

Each page: NAME, SYNOPSIS, DESCRIPTION (the parser's description), OPTIONS (the program's flags, as argparse
has them, grouped as in --help), SETTINGS (every section:option the program reads, with its default, its
flags and other spellings, from kvmfr_client.config), FILES, EXIT STATUS (kvmfr_client.config.exits), SEE
ALSO. Installed with the package as share/man/man1 (pyproject.toml) or by scripts/install-desktop.sh.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tools import generated

REPO = Path(__file__).resolve().parents[1]
MAN_DIR = REPO / "docs" / "man"


# (page name, "module:function" returning the parser, one-line summary, config program or None)
PROGRAMS = (
    ("kvmfr-view", "kvmfr_client.cli.view:build_parser", "show a virtual machine's screen from IVSHMEM shared "
     "memory (Looking Glass compatible)", "kvmfr-view"),
    ("kvmfr-agent", "guest_agent.cli:build_parser", "write frames and cursor into IVSHMEM shared memory in the "
     "Looking Glass wire format (the guest side)", "kvmfr-agent"),
    ("kvmfr-agent-audio", "guest_agent.audio.cli:build_parser", "send a Linux guest's sound as Scream (UDP or "
     "IVSHMEM)", None),
    ("kvmfr-input", "kvmfr_client.spice.cli:build_parser", "send scripted keyboard and mouse input to a VM over "
     "SPICE", "kvmfr-input"),
    ("kvmfr-audio", "kvmfr_client.audio.cli:build_parser", "play a VM's Scream or SPICE audio without a window",
     "kvmfr-audio"),
    ("kvmfr-vm", "kvmfr_client.vm.cli:build_parser", "create, start, stop and list QEMU VMs with Looking Glass "
     "displays, SPICE and Scream wired", None),
)


def esc(text: str) -> str:
    """Text for roff: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n"))


def bold(text: str) -> str:
    return f"\\fB{esc(text)}\\fR"


def ital(text: str) -> str:
    return f"\\fI{esc(text)}\\fR"


def paragraphs(text: str) -> list[str]:
    """A --help description as roff: indented lines stay as they are (examples, tables), the rest flows."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        run: list[str] = []
        indented = None
        for line in block.split("\n") + [None]:
            kind = None if line is None else line.startswith((" ", "\t"))
            if run and kind != indented:
                if indented:
                    out += [".PP", ".RS 2", ".nf", *(esc(item.rstrip()) for item in run), ".fi", ".RE"]
                else:
                    out += [".PP", esc(" ".join(item.strip() for item in run))]
                run = []
            if line is not None:
                run.append(line)
                indented = kind
    return out


def flag_label(action: argparse.Action) -> str:
    names = ", ".join(bold(s) for s in action.option_strings)
    if action.nargs == 0:
        return names
    meta = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if isinstance(meta, tuple):
        meta = " ".join(meta)
    return f"{names} {ital(str(meta))}"


def help_text(action: argparse.Action, prog: str) -> str:
    text = action.help or ("say more of what the program does (the debug log)" if action.dest == "verbose" else "")
    if "%" in text:
        text = text % {**vars(action), "prog": prog}
    if action.choices and not action.option_strings and not isinstance(action.choices, dict):
        text += f" (one of {', '.join(map(str, action.choices))})"
    return text


def option_sections(parser: argparse.ArgumentParser, prog: str) -> list[str]:
    out = []
    for group in parser._action_groups:
        shown = [a for a in group._group_actions
                 if a.help is not argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)]
        if not shown:
            continue
        title = group.title or "options"
        out += [".SS " + esc(title[:1].upper() + title[1:])]
        for action in shown:
            label = flag_label(action) if action.option_strings else ital(action.metavar or action.dest)
            out += [".TP", label, esc(help_text(action, prog) or "(no description)")]
    return out


def synopsis(parser: argparse.ArgumentParser, name: str) -> list[str]:
    usage = parser.format_usage().strip()
    usage = re.sub(r"^usage:\s*", "", usage)
    usage = re.sub(r"\s+", " ", usage)
    if len(usage) < 90:
        return [".nf", esc(usage), ".fi"]
    if len(usage) < 300:
        return [esc(usage)]     # filled by man to the page width
    positionals = [a for a in parser._actions if not a.option_strings and a.help is not argparse.SUPPRESS]
    return [bold(name) + " [" + ital("options") + "] " + " ".join(f"[{ital(str(a.metavar or a.dest))} ...]"
                                                               for a in positionals)]


def settings(program: str) -> list[str]:
    from kvmfr_client.config import flags, registry
    out = [".SH SETTINGS",
           esc("Settings are Looking Glass style section:option names: given as section:option=value on the "
               "command line (a boolean alone toggles it), or in an INI file under [section] (see FILES). yes/no "
               "also read true/false, on/off, 1/0.")]
    for opt in registry.options(flags.PROGRAMS[program].sections):
        default = "(computed at start, see its text)" if callable(opt.default) else \
            opt.show(opt.default_value())
        spelled = flags.spellings_of(opt.key, program)
        label = bold(opt.key) + "=" + ital(default)
        out += [".TP", label]
        text = opt.help + (f" [{'|'.join(opt.choices)}]" if opt.choices else "")
        extra = []
        if spelled:
            extra.append("flags: " + ", ".join(spelled))
        also = registry.aliases_of(opt.key)
        if also:
            extra.append("also spelled: " + ", ".join(also))
        out.append(esc(text + (f" ({'; '.join(extra)})" if extra else "")))
    return out


@contextmanager
def _env(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def files_section(program: str | None) -> list[str]:
    from kvmfr_client.config import flags, loader
    if program is None or not flags.PROGRAMS[program].standard_files:
        return [".SH FILES", esc("Reads only the files named on its command line (-C FILE where it has it).")]
    with _env(KVMFR_SYSCONFDIR=None, HOME="~", XDG_CONFIG_HOME="$XDG_CONFIG_HOME"):
        paths = [str(p) for p in loader.standard_files()]
    out = [".SH FILES", esc("INI files read in this order, later ones winning, then -C files, then the command "
                            "line ($XDG_CONFIG_HOME defaults to ~/.config; $KVMFR_SYSCONFDIR replaces /etc):")]
    for p in paths:
        out += [".TP", ital(p)]
    return out


def exit_section() -> list[str]:
    """From the table in kvmfr_client.config.exits' docstring: NAME number meaning (continued lines)."""
    from kvmfr_client.config import exits
    out = [".SH EXIT STATUS"]
    rows: list[list[str]] = []
    for line in (exits.__doc__ or "").split("\n"):
        m = re.match(r"^\s{4}(?:[A-Z]+\s+)?(\d+(?: \+ N)?)\s{2,}(\S.*)$", line)
        if m:
            rows.append([m.group(1), m.group(2)])
        elif rows and line.startswith(" " * 10) and line.strip():
            rows[-1][1] += " " + line.strip()
    for number, meaning in rows:
        out += [".TP", bold(number), esc(meaning)]
    return out


def page(name: str, factory: str, summary: str, program: str | None) -> str:
    module, func = factory.split(":")
    parser: argparse.ArgumentParser = getattr(importlib.import_module(module), func)()
    lines = ['.\\" Generated by python -m tools.manpages from the program\'s parser; do not edit.',
             f'.TH {esc(name.upper())} 1 "" "kvmfr\\-client" "kvmfr\\-client manual"',
             ".nh",   # no hyphenation: flags and option names stay whole
             ".SH NAME", f"{esc(name)} \\- {esc(summary)}", ".SH SYNOPSIS", *synopsis(parser, name),
             ".SH DESCRIPTION", *paragraphs(parser.description or summary)]
    lines += [".SH OPTIONS", *option_sections(parser, name)]
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        lines.append(".SH COMMANDS")
        helps = {c.dest: c.help for c in subs[0]._choices_actions}
        for cmd, sub in subs[0].choices.items():
            lines += [".SS " + esc(f"{name} {cmd}"), *synopsis(sub, f"{name} {cmd}"),
                      ".PP", esc(helps.get(cmd) or "")]
            for action in sub._actions:
                if action.help is argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                    continue
                label = flag_label(action) if action.option_strings else ital(str(action.metavar or action.dest))
                lines += [".TP", label, esc(help_text(action, f"{name} {cmd}") or "(no description)")]
    if parser.epilog:
        lines += [".SH USAGE", *paragraphs(parser.epilog)]
    if program is not None:
        lines += settings(program)
    lines += files_section(program)
    lines += exit_section()
    others = [n for n, *_ in PROGRAMS if n != name]
    lines += [".SH SEE ALSO", ", ".join(f"{bold(n)}(1)" for n in others),
              esc("and the project's README.md and docs/ (docs/looking-glass-users.md for Looking Glass users).")]
    return "\n".join(lines) + "\n"


def pages() -> dict[Path, str]:
    return {MAN_DIR / f"{name}.1": page(name, factory, summary, program)
            for name, factory, summary, program in PROGRAMS}


def main(argv: list[str] | None = None) -> int:
    return generated.main("manpages", __doc__.split("\n\n")[0],
                          {path: text.encode() for path, text in pages().items()}, argv)


if __name__ == "__main__":
    sys.exit(main())
