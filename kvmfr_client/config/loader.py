"""Loading a configuration: defaults, then INI files in Looking Glass's order, then the command line.

Precedence, lowest first (later wins), as in Looking Glass B7 with ours added after its files:

1. each option's declared default (computed now, e.g. ``app:shmFile``)
2. ``/etc/looking-glass-client.ini`` (``$KVMFR_SYSCONFDIR`` instead of ``/etc``, for tests and packagers)
3. ``~/.looking-glass-client.ini``
4. ``$XDG_CONFIG_HOME/looking-glass/client.ini`` (``$XDG_CONFIG_HOME`` defaults to ``~/.config``)
5. ``$XDG_CONFIG_HOME/kvmfr-client/client.ini``
6. files given with ``-C``/``--config`` or ``app:configFile`` (in order)
7. the command line: ``section:option=value``, ``section:option`` alone (a boolean: toggles) and flags

Names are matched case-insensitively. A Looking Glass B7 option we do not implement is collected in
:attr:`Config.ignored` (the program prints them in one warning) and never stops the program; any other
unknown name is an error with a "did you mean".
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from . import lg_b7, registry
from .registry import ConfigError, Option

CONFIG_FILE_KEY = "app:configFile"


def standard_files() -> list[Path]:
    """The INI files read before ``-C`` files, lowest precedence first; resolved now, so HOME,
    XDG_CONFIG_HOME and KVMFR_SYSCONFDIR set by a test or a wrapper count."""
    sysconf = Path(os.environ.get("KVMFR_SYSCONFDIR") or "/etc")
    home = Path(os.environ.get("HOME") or Path.home())
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [sysconf / "looking-glass-client.ini", home / ".looking-glass-client.ini",
            xdg / "looking-glass" / "client.ini", xdg / "kvmfr-client" / "client.ini"]


class Config(Mapping[str, Any]):
    """Resolved option values, looked up as ``cfg["win:fullScreen"]``; every registered option is present.

    ``ignored``: the Looking Glass options that were set but are not implemented here (B7 spelling, each once).
    """

    def __init__(self, values: dict[str, Any], ignored: list[str] | None = None):
        self._values = values
        self.ignored = ignored or []

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def defaults() -> dict[str, Any]:
    """Every registered option at its default (computed now)."""
    return {opt.key: opt.default_value() for opt in registry.options()}


def with_defaults(values: Mapping[str, Any]) -> Config:
    """``values`` (a :class:`Config` or a plain mapping of some options) completed with the defaults."""
    if isinstance(values, Config):
        return values
    return Config({**defaults(), **values})


def load(overrides: Iterable[str] = (), files: Iterable[str | Path] = (), user_file: bool = True) -> Config:
    """Build a :class:`Config`.

    ``overrides``: command-line items in order, each ``section:option=value`` or ``section:option`` (a boolean
    toggles); ``app:configFile=FILE`` items add files to read before them. ``files``: ``-C`` files (must
    exist). ``user_file``: read the standard files (:func:`standard_files`); tests turn it off.
    """
    state = _State(defaults())
    overrides = list(overrides)
    extra = [Path(p) for p in files]
    items = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if sep and key.strip().lower() == CONFIG_FILE_KEY.lower():
            extra.append(Path(text))
        else:
            items.append(item)
    if user_file:
        for path in standard_files():
            if path.is_file():
                state.read_ini(path)
    while extra:   # an app:configFile inside a -C file is read after it
        path = extra.pop(0)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        extra[0:0] = state.read_ini(path)
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            if ":" not in key:
                raise ConfigError(f"expected section:option=value, got {item!r}")
            state.toggle(key.strip(), origin="command line")
        else:
            state.set(key.strip(), text, origin="command line")
    return Config(state.values, state.ignored)


class _State:
    def __init__(self, values: dict[str, Any]):
        self.values = values
        self.ignored: list[str] = []

    def read_ini(self, path: Path) -> list[Path]:
        """Apply one INI file; returns the ``app:configFile`` files it names."""
        parser = configparser.ConfigParser(interpolation=None, strict=False, allow_no_value=True,
                                           inline_comment_prefixes=(";",), default_section="\0")
        parser.optionxform = str   # names are camelCase; matched case-insensitively below
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable INI file: {str(exc).splitlines()[0]}") from None
        more = []
        for section in parser.sections():
            for name, text in parser.items(section):
                key = f"{section}:{name}"
                if text is None:
                    raise ConfigError(f"{key} ({path}): needs a value, e.g. {name}=yes")
                if key.lower() == CONFIG_FILE_KEY.lower():
                    more.append((path.parent / text.strip()).resolve())
                else:
                    self.set(key, text, origin=str(path))
        return more

    def set(self, key: str, text: str, origin: str) -> None:
        found = self._find(key, origin)
        if found is None:
            return
        opt, alias = found
        if alias is not None and alias.translate is not None:
            try:
                text = alias.translate(text)
            except ValueError as exc:
                raise ConfigError(f"{exc} ({origin})") from None
        try:
            self.values[opt.key] = opt.convert(text)
        except ConfigError as exc:
            spelled = f" (given as {alias.key})" if alias is not None else ""
            raise ConfigError(f"{exc}{spelled} ({origin})") from None

    def toggle(self, key: str, origin: str) -> None:
        """``section:option`` without a value: a boolean flips, as in Looking Glass."""
        found = self._find(key, origin)
        if found is None:
            return
        opt, _ = found
        if not opt.is_bool:
            raise ConfigError(f"{opt.key} needs a value: {opt.key}=VALUE ({origin})")
        self.values[opt.key] = not self.values[opt.key]

    def _find(self, key: str, origin: str) -> tuple[Option, registry.Alias | None] | None:
        found = registry.resolve(key)
        if found is not None:
            return found
        lg = lg_b7.lookup(key)
        if lg is not None:   # a Looking Glass option we do not implement: reported once, never fatal
            if lg.key not in self.ignored:
                self.ignored.append(lg.key)
            return None
        raise ConfigError(unknown_message(key, origin))


def unknown_message(key: str, origin: str) -> str:
    hint = registry.suggest(key, [o.key for o in lg_b7.B7_OPTIONS])
    did_you_mean = f"did you mean {hint}? " if hint else ""
    return f"unknown option {key!r} ({origin}); {did_you_mean}`--help-options` lists them"
