#!/usr/bin/env bash
# Live corruption and restart soaks (issue 12 items 4 and 5); docs/robustness.md says what each does.
#   scripts/soak.sh vandal [--minutes N] [--asan] [--no-window]
#   scripts/soak.sh agent-restart [--count 100]      viewer-restart [--count 100]
#   scripts/soak.sh spice-restart [--count 20]       sound-restart [--count N]
# Every mode prints a table of its pass criteria, writes the figures as JSON (--json FILE) and exits
# 0 (pass), 1 (a criterion failed), 2 (bad command line), 3 (could not set up), 130 (interrupted).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
    echo "soak.sh: no virtual environment in .venv: run scripts/setup.sh first" >&2
    exit 3
fi
# exec: Ctrl+C and SIGTERM reach the harness itself, which stops every process group it started.
exec "$PY" -m tools.soak "$@"
