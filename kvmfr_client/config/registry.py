"""The option registry: one :class:`Option` per ``section:option``, plus the other spellings of some of them.

Every option is declared once, with its type (its ``parse`` function), its default and its help text, in
:mod:`kvmfr_client.config.options` (the guest agent's in :mod:`guest_agent.options`). Looking Glass B7 names we
spell differently are :class:`Alias` entries pointing at ours. Names are looked up case-insensitively, as
Looking Glass does.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable


class ConfigError(ValueError):
    """An option name or value that cannot be used; the message says which and why."""


def bounded(convert: Callable[[str], Any], ok: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """A parser: ``convert`` the text (int, float), then check ``ok(value)``; ``expected`` names what is
    allowed, with its range (it is the whole error message: "must be <expected>, got <text>"). Text that is
    no number at all gets the same message; so do inf and nan, which no ``ok`` with an upper bound accepts."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not ok(value):
            raise ValueError(f"must be {expected}, got {text.strip() or 'an empty value'}")
        return value
    parse.__name__ = f"parse_{convert.__name__}"
    return parse


def number(convert: Callable[[str], Any], low: float, high: float, unit: str = "",
           also: str = "") -> Callable[[str], Any]:
    """A :func:`bounded` parser for ``low <= value <= high``: "must be 1..1000 milliseconds, got 0"."""
    whole = " (a whole number)" if convert is int and not unit else ""
    text = f"{_g(low)}..{_g(high)}{' ' + unit if unit else whole}{also}"
    return bounded(convert, lambda v: low <= v <= high, text)


def _g(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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


def size_within(max_side: int, what: str) -> Callable[[str], tuple[int, int]]:
    """:func:`parse_size` with each side at most ``max_side`` (``what`` says whose limit it is)."""
    def parse(text: str) -> tuple[int, int]:
        try:
            w, h = parse_size(text)
        except ValueError:
            raise ValueError(f"expected WIDTHxHEIGHT, each side 1..{max_side} pixels, got {text.strip()!r}") from None
        if w > max_side or h > max_side:
            raise ValueError(f"{w}x{h} is larger than {what} can be: at most {max_side} per side")
        return w, h
    parse.__name__ = "parse_size"
    return parse


def show_value(value: Any) -> str:
    """A value as a user would type it: ``yes``/``no``, ``1024x768``, ``""`` for empty, ``(none)`` for unset."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "x".join(show_value(v) for v in value)
    text = str(value)
    return text if text else '""'


@dataclass(frozen=True)
class Option:
    """One setting. ``default`` is the value, or a function computing it when the configuration is loaded
    (``app:shmFile`` looks for /dev/kvmfr0). ``lg`` says how it differs from the Looking Glass B7 option of
    the same name (None: it acts the same, or Looking Glass has no such option)."""

    section: str
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    show: Callable[[Any], str] = show_value
    lg: str | None = None

    @property
    def key(self) -> str:
        return f"{self.section}:{self.name}"

    @property
    def is_bool(self) -> bool:
        return self.parse is parse_bool

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def convert(self, text: Any) -> Any:
        try:
            value = self.parse(text) if isinstance(text, str) else text
        except ValueError as exc:
            why = str(exc)
            if why.startswith(("invalid literal", "could not convert")):   # int() / float()'s own words
                why = f"expected a number, got {text!r}"
            raise ConfigError(f"{self.key}: {why}") from None
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.key}: {value!r} is not one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class Alias:
    """Another name for one of our options: a Looking Glass B7 name we spell differently, or an old name of
    ours. ``translate`` maps the alias's value text to ours (``egl:scale=1`` -> ``nearest``); ``lg`` says
    how it differs from Looking Glass (None: it acts the same)."""

    key: str
    target: str
    translate: Callable[[str], str] | None = None
    lg: str | None = None


_REGISTRY: dict[str, Option] = {}
_ALIASES: dict[str, Alias] = {}
_BY_LOWER: dict[str, str] = {}   # lower-case spelling -> the key as declared (option or alias)


def register(*options: Option) -> None:
    for opt in options:
        if opt.key in _REGISTRY and _REGISTRY[opt.key] != opt:
            raise RuntimeError(f"option {opt.key} declared twice")
        _claim(opt.key)
        _REGISTRY[opt.key] = opt


def register_alias(*aliases: Alias) -> None:
    for alias in aliases:
        if alias.target not in _REGISTRY:
            raise RuntimeError(f"alias {alias.key} names no option: {alias.target}")
        _claim(alias.key)
        _ALIASES[alias.key] = alias


def _claim(key: str) -> None:
    owner = _BY_LOWER.setdefault(key.lower(), key)
    if owner != key:
        raise RuntimeError(f"{key} and {owner} differ only in case")


def option(key: str) -> Option:
    """Our option named ``key`` (exact spelling); KeyError if there is none."""
    return _REGISTRY[key]


def options(sections: tuple[str, ...] | None = None) -> list[Option]:
    return sorted((o for o in _REGISTRY.values() if sections is None or o.section in sections),
                  key=lambda o: o.key)


def aliases() -> list[Alias]:
    return sorted(_ALIASES.values(), key=lambda a: a.key)


def aliases_of(key: str) -> list[str]:
    return [a.key for a in aliases() if a.target == key]


def resolve(name: str) -> tuple[Option, Alias | None] | None:
    """``name`` in any letter case -> (our option, the alias it was spelled as or None); None if unknown."""
    key = _BY_LOWER.get(name.strip().lower())
    if key is None:
        return None
    if key in _ALIASES:
        alias = _ALIASES[key]
        return _REGISTRY[alias.target], alias
    return _REGISTRY[key], None


def suggest(name: str, extra: list[str]) -> str | None:
    """The known name closest to ``name`` (ours, an alias, or one of ``extra``), for a "did you mean"."""
    known = {k.lower(): k for k in [*_REGISTRY, *_ALIASES, *extra]}
    match = difflib.get_close_matches(name.strip().lower(), list(known), n=1, cutoff=0.6)
    return known[match[0]] if match else None
