#!/usr/bin/env bash
# One command for a first look on a fresh Debian 12 machine: installs everything (apt, .venv, the native
# helper) and runs `kvmfr-vm demo`: a tiny Linux VM under QEMU whose own agent draws the test pattern into
# its IVSHMEM device and plays a tone over Scream, shown in the viewer (keys typed there reach the guest).
# Where QEMU cannot be had, it says so in one line and runs the host-side demo instead: the agent on this
# machine writing into a file in /dev/shm. Without a display it reads 300 frames headless and prints them.
#   scripts/demo.sh [kvmfr-view options, e.g. -F or win:size=1280x720]     (host-side demo only)
# Environment: DEMO=host forces the host-side demo; SHM (default /dev/shm/kvmfr-demo), SIZE (default
# 1280x720), FORMAT (default BGRA) for it; SECONDS_HEADLESS (default 120) bounds the VM demo without a display.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
size=${SIZE:-1280x720}

vm_packages() {   # install what the VM demo needs (scripts/deps/apt-demo.txt); what is still missing in $missing
    mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/deps/apt-demo.txt)
    missing=()
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo -n); fi
    echo "demo: installing ${missing[*]} for the VM demo"
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 && missing=()
    return 0
}

vm_needs() {   # what the VM demo cannot do without (PulseAudio is optional: the guest then plays no tone)
    needs=()
    command -v qemu-system-x86_64 >/dev/null || needs+=(qemu-system-x86)
    [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || needs+=(busybox-static)
    [ "${#needs[@]}" -eq 0 ]
}

if [ "${DEMO:-vm}" != host ]; then
    vm_packages
    if vm_needs; then
        if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
            exec .venv/bin/kvmfr-vm demo --size "$size"
        fi
        echo "demo: no display (DISPLAY is unset): the VM demo without a window, 300 of its frames read headless"
        log=$(mktemp)
        # its output is shown and kept: the reader starts at its "running" line, after the first run's
        # download and build of the guest, so that its timeout counts from the guest's start
        .venv/bin/kvmfr-vm demo --no-viewer --size "$size" --seconds "${SECONDS_HEADLESS:-120}" > >(tee "$log") &
        vm=$!
        trap 'kill -INT "$vm" 2>/dev/null; wait "$vm" 2>/dev/null; rm -f "$log"' EXIT
        until grep -q "^kvmfr-demo: running, QEMU pid" "$log"; do
            if ! kill -0 "$vm" 2>/dev/null; then   # it ended before the guest ran: it said why
                status=0
                wait "$vm" || status=$?
                trap - EXIT
                rm -f "$log"
                exit $(( status ? status : 1 ))
            fi
            sleep 0.5
        done
        status=0
        .venv/bin/kvmfr-view -f /dev/shm/kvmfr-demo-0 --headless --frames 300 --timeout 180 || status=$?
        kill -INT "$vm" 2>/dev/null || true
        wait "$vm" || true
        trap - EXIT
        rm -f "$log"
        exit "$status"
    fi
    echo "demo: ${needs[*]} missing and cannot be installed here (apt-get install ${needs[*]} as root): running the host-side demo instead"
fi

shm=${SHM:-/dev/shm/kvmfr-demo}
.venv/bin/kvmfr-agent --shm "$shm" --size "$size" --fps 60 --format "${FORMAT:-BGRA}" &
agent=$!
trap 'kill "$agent" 2>/dev/null; wait "$agent" 2>/dev/null; rm -f "$shm"' EXIT
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    .venv/bin/kvmfr-view --shm "$shm" "$@"
else
    echo "demo: no display (DISPLAY is unset): reading 300 frames without a window instead"
    .venv/bin/kvmfr-view --shm "$shm" --headless --frames 300
fi
