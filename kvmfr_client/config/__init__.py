"""Looking-Glass-style configuration: ``section:option`` names, INI files and command-line flags.

    exits.py      the exit statuses every program shares, and the clean stop on SIGINT / SIGTERM
    registry.py   Option / Alias and the one registry (case-insensitive lookup, "did you mean")
    options.py    every option of kvmfr-view, kvmfr-audio and kvmfr-input, declared once
    lg_b7.py      the Looking Glass B7 client's options, as data (names, short flags, types)
    loader.py     defaults -> Looking Glass INI files -> ours -> -C files -> command line
    flags.py      the one table of command-line flags (each a spelling of an option), argparse glue,
                  --version, --help-options
    (tools/lgdoc.py generates docs/looking-glass-users.md from the above)

Programs call :func:`build_parser` and :func:`start_program` (or :func:`load_config`); library code and tests call :func:`load`.
"""

from . import options as _options  # noqa: F401  (declares the options)
from . import exits
from . import registry as _registry
from .flags import FLAGS, Flag, build_parser, help_options, load_config, start_program, version_text
from .loader import Config, defaults, load, standard_files, with_defaults
from .options import default_shm, parse_position, parse_positive_float
from .registry import (Alias, ConfigError, Option, bounded, option, parse_bool, parse_size, register,
                       register_alias, show_value)


def all_options() -> list[Option]:
    """Every option of kvmfr-view, kvmfr-audio and kvmfr-input (and the agent's, once it is imported)."""
    return _registry.options()


__all__ = [
    "FLAGS", "Alias", "Config", "ConfigError", "Flag", "Option", "all_options", "exits", "build_parser", "default_shm",
    "bounded", "defaults", "help_options", "load", "load_config", "option", "parse_bool", "parse_position",
    "parse_positive_float", "parse_size", "register", "register_alias", "show_value", "standard_files", "start_program", "version_text", "with_defaults",
]
