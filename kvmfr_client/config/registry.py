"""Looking-Glass-style configuration: ``section:option`` names, INI files and command-line overrides.

Every option is declared once, with its default and help text, by the part of the program that uses it
(``kvmfr_client/*/options.py`` call :func:`register`). The CLI, the INI loader and the README's option
table all read that one registry.

Precedence, lowest first: declared default, ``~/.config/kvmfr-client/client.ini``, files given with
``--config``, then ``section:option=value`` arguments on the command line.
"""

from __future__ import annotations

import configparser
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

# Modules that declare options. Each one calls register() when imported.
_OPTION_MODULES = (
    "kvmfr_client.options",
    "kvmfr_client.viewer.options",
    "kvmfr_client.spice.options",
    "kvmfr_client.audio.options",
)

USER_CONFIG = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "kvmfr-client" / "client.ini"


class ConfigError(ValueError):
    """An option name or value that cannot be used; the message says which and why."""


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"expected yes/no, got {text!r}")


def parse_size(text: str) -> tuple[int, int]:
    """``1920x1080`` -> (1920, 1080)."""
    try:
        w, h = text.lower().split("x")
        size = int(w), int(h)
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return size


@dataclass(frozen=True)
class Option:
    section: str
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}:{self.name}"

    def convert(self, text: str) -> Any:
        try:
            value = self.parse(text) if isinstance(text, str) else text
        except ValueError as exc:
            raise ConfigError(f"{self.key}: {exc}") from None
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.key}: {value!r} is not one of {', '.join(self.choices)}")
        return value


_REGISTRY: dict[str, Option] = {}


def register(*options: Option) -> None:
    for opt in options:
        if opt.key in _REGISTRY and _REGISTRY[opt.key] != opt:
            raise RuntimeError(f"option {opt.key} declared twice")
        _REGISTRY[opt.key] = opt


def all_options() -> list[Option]:
    _import_option_modules()
    return sorted(_REGISTRY.values(), key=lambda o: o.key)


def _import_option_modules() -> None:
    for name in _OPTION_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A part of the program that is not installed declares no options; any other
            # import failure is a real bug and propagates.
            if exc.name != name:
                raise


class Config(Mapping[str, Any]):
    """Resolved option values, looked up as ``cfg["win:fullscreen"]``."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def section(self, name: str) -> dict[str, Any]:
        prefix = name + ":"
        return {k[len(prefix):]: v for k, v in self._values.items() if k.startswith(prefix)}


def load(overrides: Iterable[str] = (), files: Iterable[str | Path] = (), user_file: bool = True) -> Config:
    """Build a :class:`Config` from defaults, INI files and ``section:option=value`` overrides."""
    _import_option_modules()
    values = {key: opt.default for key, opt in _REGISTRY.items()}
    paths = ([USER_CONFIG] if user_file else []) + [Path(p) for p in files]
    for path in paths:
        if not path.exists():
            if path != USER_CONFIG:
                raise ConfigError(f"config file {path} does not exist")
            continue
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str   # option names are camelCase, as in Looking Glass
        parser.read(path)
        for section in parser.sections():
            for name, text in parser.items(section):
                _set(values, f"{section}:{name}", text, origin=str(path))
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"expected section:option=value, got {item!r}")
        _set(values, key.strip(), text, origin="command line")
    return Config(values)


def _set(values: dict[str, Any], key: str, text: str, origin: str) -> None:
    opt = _REGISTRY.get(key)
    if opt is None:
        raise ConfigError(f"unknown option {key!r} ({origin}); `kvmfr-view --help-options` lists them")
    values[key] = opt.convert(text)


def help_text() -> str:
    lines = []
    for opt in all_options():
        choices = f" [{'|'.join(opt.choices)}]" if opt.choices else ""
        lines.append(f"  {opt.key:<28} {opt.help}{choices} (default: {opt.default!r})")
    return "\n".join(lines)
