"""Files a tool writes into the repository from what the code declares (the icon files, the man pages):
written, or with ``--check`` compared with the committed ones (nothing written)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(tool: str, description: str, files: dict[Path, bytes], argv: list[str] | None = None) -> int:
    """``python -m tools.<tool> [--check]``: write ``files``, or (``--check``) list the stale ones and
    return 1."""
    p = argparse.ArgumentParser(prog=f"python -m tools.{tool}", description=description)
    p.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    args = p.parse_args(argv)
    stale = []
    for path, content in files.items():
        if args.check:
            if not path.is_file() or path.read_bytes() != content:
                stale.append(path.name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    if stale:
        print(f"out of date (run python -m tools.{tool}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0
