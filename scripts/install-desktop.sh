#!/usr/bin/env bash
# Install kvmfr-view's desktop entry, icon and the man pages for one user, so the desktop's menu, window
# matching (StartupWMClass / app-id kvmfr-view) and `man kvmfr-view` find them. `pip install --user` does
# the same by itself (the package's data files go to ~/.local/share); a virtual environment keeps them in
# .venv/share, where desktops do not look, and an editable install (scripts/setup.sh) installs none: run this.
#
#   scripts/install-desktop.sh [--prefix DIR] [--exec PATH] [--uninstall]
#
#   --prefix DIR   install under DIR/share instead of ${XDG_DATA_HOME:-~/.local/share}
#   --exec PATH    the kvmfr-view to start (default: kvmfr-view on PATH, else this checkout's .venv/bin/kvmfr-view)
#   --uninstall    remove what this installs
# Exit status: 0 done, 2 bad arguments, 1 a file could not be written.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
share=${XDG_DATA_HOME:-$HOME/.local/share}
exec_path=""
uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || { echo "install-desktop.sh: --prefix needs a folder" >&2; exit 2; }
                  share="$2/share"; shift 2 ;;
        --exec) [ $# -ge 2 ] || { echo "install-desktop.sh: --exec needs a path" >&2; exit 2; }
                exec_path="$2"; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-desktop.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

icons=$(cd "$repo/data/icons/hicolor" && find . -name 'kvmfr-view.*' | sed 's|^\./||')
if [ "$uninstall" = 1 ]; then
    rm -f "$share/applications/kvmfr-view.desktop" "$share"/man/man1/kvmfr-*.1
    for f in $icons; do rm -f "$share/icons/hicolor/$f"; done
    echo "removed kvmfr-view's desktop entry, icons and man pages from $share"
    exit 0
fi

if [ -z "$exec_path" ]; then
    if command -v kvmfr-view >/dev/null 2>&1; then exec_path=kvmfr-view
    elif [ -x "$repo/.venv/bin/kvmfr-view" ]; then exec_path="$repo/.venv/bin/kvmfr-view"
    else exec_path=kvmfr-view; echo "install-desktop.sh: warning: kvmfr-view is not on PATH; the menu entry" \
         "starts it only once it is (or give --exec PATH)" >&2
    fi
fi
case "$exec_path" in *[[:space:]\"\'\\\$\`]*)
    echo "install-desktop.sh: --exec $exec_path: a path with spaces or quotes cannot go on the Exec= line" >&2; exit 2 ;;
esac

mkdir -p "$share/applications" "$share/man/man1" || exit 1
sed "s|^Exec=kvmfr-view\$|Exec=$exec_path|" "$repo/data/kvmfr-view.desktop" > "$share/applications/kvmfr-view.desktop"
for f in $icons; do
    install -D -m 644 "$repo/data/icons/hicolor/$f" "$share/icons/hicolor/$f"
done
install -m 644 "$repo"/docs/man/*.1 "$share/man/man1/"
# Refresh the caches where the desktop has them (absent on minimal systems; then nothing to do).
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$share/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$share/icons/hicolor" || true
echo "installed kvmfr-view's desktop entry (Exec=$exec_path), icons and man pages under $share"
