#!/usr/bin/env bash
# One command for a first look on a fresh Debian 12 machine: installs everything (apt, .venv, the
# native helper), starts the guest agent's moving test pattern into a file in /dev/shm, and opens the
# viewer on it. Without a display it reads the frames headless and prints what it saw.
#   scripts/demo.sh [kvmfr-view options, e.g. -F or win:size=1280x720]
# Environment: SHM (default /dev/shm/kvmfr-demo), SIZE (default 1280x720), FORMAT (default BGRA).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
shm=${SHM:-/dev/shm/kvmfr-demo}
.venv/bin/kvmfr-agent --shm "$shm" --size "${SIZE:-1280x720}" --fps 60 --format "${FORMAT:-BGRA}" &
agent=$!
trap 'kill "$agent" 2>/dev/null; wait "$agent" 2>/dev/null; rm -f "$shm"' EXIT
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    .venv/bin/kvmfr-view --shm "$shm" "$@"
else
    echo "demo: no display (DISPLAY is unset): reading 300 frames without a window instead"
    .venv/bin/kvmfr-view --shm "$shm" --headless --frames 300
fi
