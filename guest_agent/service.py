"""``kvmfr-agent install-service`` / ``uninstall-service``: the agent and its Scream sender as systemd units.

    kvmfr-agent install-service [--system | --user] [--dry-run] [--no-audio] [--no-start]
                                [--env NAME=VALUE]... [--audio-args "ARGS"] [-- AGENT OPTIONS...]
    kvmfr-agent uninstall-service [--system | --user] [--dry-run]

Writes ``kvmfr-agent.service`` (``kvmfr-agent`` with the options after ``--``; its device is ``auto`` by
default inside a VM) and ``kvmfr-agent-audio.service`` (``kvmfr-agent audio --ivshmem auto`` or
``--audio-args``; with ``--system`` only when ``--audio-args`` or ``--env PULSE_SERVER=...`` is given, as a root
unit cannot reach a session's sound server by itself) into
/etc/systemd/system (``--system``, the default: root, which the device's sysfs memory needs) or
~/.config/systemd/user (``--user``: the user's session, its X display and sound server; the device must then
be the user's, e.g. the kvmfr module's /dev/kvmfrN with a udev rule), then ``systemctl daemon-reload`` and
``enable --now``. ``--dry-run`` prints the files and the commands and touches nothing.

Both units run this Python with ``-m guest_agent`` (the installation the command was run from). They restart
after a failure but not after a bad command line (2) or no usable device (3): those need a person.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kvmfr_client.config import exits
from kvmfr_client.config.flags import Parser

PROG = "kvmfr-agent"
VIDEO_UNIT = "kvmfr-agent.service"
AUDIO_UNIT = "kvmfr-agent-audio.service"
SYSTEM_DIR = Path("/etc/systemd/system")
DEFAULT_AUDIO_ARGS = "--ivshmem auto"


@dataclass(frozen=True)
class Unit:
    name: str
    text: str


def _systemd_quote(arg: str, dollar: bool = True) -> str:
    """One ExecStart argument as systemd reads it: % and $ doubled, quoted when it holds spaces or quotes.
    ``dollar=False``: an Environment= assignment, where systemd expands % but not $."""
    arg = arg.replace("%", "%%")
    if dollar:
        arg = arg.replace("$", "$$")
    if arg and not any(c in arg for c in " \t\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unit(description: str, argv: list[str], env: list[str], user: bool, after_sound: bool) -> str:
    lines = ["[Unit]", f"Description={description}", "Documentation=man:systemd.service(5)"]
    if after_sound and user:
        lines += ["After=pipewire-pulse.service pulseaudio.service"]
    lines += ["", "[Service]", "Type=simple", "ExecStart=" + " ".join(_systemd_quote(a) for a in argv)]
    if env:
        lines.append("Environment=" + " ".join(_systemd_quote(e, dollar=False) for e in env))
    lines += ["Restart=on-failure", "RestartSec=2",
              f"RestartPreventExitStatus={exits.USAGE} {exits.SHM}",   # a bad option or no device: a person's job
              "KillSignal=SIGTERM", "TimeoutStopSec=5",                # SIGTERM ends the agent within a second
              "", "[Install]", f"WantedBy={'default.target' if user else 'multi-user.target'}", ""]
    return "\n".join(lines)


def units(agent_args: list[str], audio_args: list[str], env: list[str], user: bool, audio: bool = True,
          python: str = sys.executable) -> list[Unit]:
    """The unit files' names and text."""
    # No --device auto added: it is the agent's default inside a VM, and it would override a config file's
    # agent:shmFile.
    made = [Unit(VIDEO_UNIT, _unit("kvmfr-agent: this guest's screen into its Looking Glass IVSHMEM device",
                                   [python, "-m", "guest_agent", *agent_args], env, user, False))]
    if audio:
        made.append(Unit(AUDIO_UNIT, _unit("kvmfr-agent audio: this guest's sound to the host as Scream",
                                           [python, "-m", "guest_agent", "audio", *audio_args], env, user, True)))
    return made


def unit_dir(user: bool) -> Path:
    if not user:
        return SYSTEM_DIR
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def _parser(uninstall: bool) -> argparse.ArgumentParser:
    p = Parser(prog=f"{PROG} {'uninstall' if uninstall else 'install'}-service",
               description="Remove the kvmfr-agent systemd units." if uninstall else
               "Install kvmfr-agent and kvmfr-agent audio as systemd units, enabled and started.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--system", dest="user", action="store_false", help="system units, run as root (default)")
    where.add_argument("--user", dest="user", action="store_true", help="units of this user's session")
    p.set_defaults(user=False)
    p.add_argument("--dry-run", action="store_true", help="print the unit files and the commands; touch nothing")
    if not uninstall:
        p.add_argument("--no-audio", action="store_true", help="no kvmfr-agent-audio unit")
        p.add_argument("--no-start", action="store_true", help="write and enable the units, start nothing now")
        p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                       help="an environment variable for both units (e.g. DISPLAY=:0 for --source x11)")
        p.add_argument("--audio-args", default=None, metavar="ARGS",
                       help="kvmfr-agent audio's options (default: --ivshmem auto)")
        p.add_argument("agent_args", nargs="*", metavar="-- AGENT OPTIONS",
                       help="kvmfr-agent's options (its device: auto inside a VM)")
    return p


def main(argv: list[str]) -> int:
    uninstall = argv[0] == "uninstall-service"
    args = _parser(uninstall).parse_args(argv[1:])
    systemctl = ["systemctl", "--user"] if args.user else ["systemctl"]
    folder = unit_dir(args.user)
    if uninstall:
        present = [n for n in (VIDEO_UNIT, AUDIO_UNIT) if (folder / n).exists()]
        before = [[*systemctl, "disable", "--now", *present]] if present else []
        return _apply(args, [], [folder / n for n in present], before, [[*systemctl, "daemon-reload"]])
    for e in args.env:
        name, eq, _ = e.partition("=")
        if not eq or not name.isidentifier():
            print(f"{PROG} install-service: --env wants NAME=VALUE, got {e!r}", file=sys.stderr)
            return exits.USAGE
    try:
        audio_args = shlex.split(args.audio_args if args.audio_args is not None else DEFAULT_AUDIO_ARGS)
    except ValueError as exc:
        print(f"{PROG} install-service: --audio-args: {exc}", file=sys.stderr)
        return exits.USAGE
    audio = not args.no_audio
    if audio and not args.user and args.audio_args is None and not any(e.startswith("PULSE_SERVER=")
                                                                        for e in args.env):
        # A root unit cannot reach a session's sound server: it would fail and restart every 2 s forever.
        print(f"{PROG} install-service: no {AUDIO_UNIT} with --system unless --env PULSE_SERVER=... or "
              "--audio-args is given (--user runs it in the session, with its sound server)", file=sys.stderr)
        audio = False
    made = units(args.agent_args, audio_args, args.env, args.user, audio=audio)
    after = [[*systemctl, "daemon-reload"],
             [*systemctl, "enable", *(() if args.no_start else ("--now",)), *[u.name for u in made]]]
    return _apply(args, made, [], [], after)


def _apply(args, made: list[Unit], remove: list[Path], before: list[list[str]], after: list[list[str]]) -> int:
    """``before`` (systemctl), then write ``made`` / remove ``remove``, then ``after``; or print it all."""
    folder = unit_dir(args.user)
    if args.dry_run:
        for step in before:
            print(shlex.join(step))
        for u in made:
            print(f"# {folder / u.name}\n{u.text}")
        for path in remove:
            print(f"# remove {path}")
        for step in after:
            print(shlex.join(step))
        return exits.OK
    if shutil.which("systemctl") is None:
        print(f"{PROG}: systemctl is not installed: this needs systemd (--dry-run prints the unit files)",
              file=sys.stderr)
        return exits.FAILED
    if not _run_all(before):
        return exits.FAILED
    try:
        if made:
            folder.mkdir(parents=True, exist_ok=True)
        for u in made:
            tmp = folder / f".{u.name}.tmp"
            tmp.write_text(u.text)
            tmp.chmod(0o644)
            tmp.replace(folder / u.name)
            print(f"wrote {folder / u.name}")
        for path in remove:
            path.unlink(missing_ok=True)
            print(f"removed {path}")
    except OSError as exc:
        print(f"{PROG}: cannot change {folder}: {exc.strerror}"
              + (" (system units need root: sudo, or --user)" if not args.user else ""), file=sys.stderr)
        return exits.FAILED
    return exits.OK if _run_all(after) else exits.FAILED


def _run_all(steps: list[list[str]]) -> bool:
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode:
            said = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"{PROG}: `{shlex.join(step)}` failed ({proc.returncode}): {said}", file=sys.stderr)
            return False
        print(shlex.join(step))
    return True
