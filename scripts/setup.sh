#!/usr/bin/env bash
# Installs everything kvmfr-client needs on Debian 12: system packages (apt), a virtual environment in
# .venv, and the package itself with its native helper compiled by cffi.
#   scripts/setup.sh run    what the viewer and the guest agent need
#   scripts/setup.sh test   the above plus what the test suite starts (Xvfb, PulseAudio, QEMU, ...)
# The package lists live in scripts/deps/apt-*.txt, one file per part of the project.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

lists=(scripts/deps/apt-run.txt)
if [ "$mode" = test ]; then
    lists+=(scripts/deps/apt-test-*.txt)
fi
mapfile -t wanted < <(cat "${lists[@]}" | sed -e 's/#.*//' -e '/^[[:space:]]*$/d' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
        -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
extras="fast"
if [ "$mode" = test ]; then extras="fast,test"; fi
# Editable install: the cffi build writes kvmfr_client/core/_native*.so next to the sources.
.venv/bin/python -m pip install -q -e ".[$extras]"
.venv/bin/python -c "import kvmfr_client.core._native" || { echo "setup: native helper did not build" >&2; exit 1; }
echo "setup: ready (.venv, mode $mode)"
