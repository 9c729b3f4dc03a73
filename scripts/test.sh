#!/usr/bin/env bash
# One command for the whole test suite on a fresh Debian 12 machine: installs what the tests need,
# builds the native helper and runs pytest. The fixtures start Xvfb, PulseAudio and QEMU themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$rc"
