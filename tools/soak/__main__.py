"""``python -m tools.soak MODE [options]`` (what ``scripts/soak.sh`` runs); see docs/robustness.md.

Exit status: 0 every criterion passed; 1 a criterion failed; 2 bad command line; 3 the soak could not
set up (a missing tool, a program that never started); 4 the harness itself failed (a bug: -v shows the
traceback); 130 interrupted (Ctrl+C, SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time

from .children import interrupt_on_term


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="soak.sh", description="Live corruption and restart soaks (docs/robustness.md).")
    sub = p.add_subparsers(dest="mode", required=True)
    v = sub.add_parser("vandal", help="random writes into the live memory while every reader reads")
    v.add_argument("--minutes", type=float, default=1.0)
    v.add_argument("--seconds", type=float, help="instead of --minutes (for short runs)")
    v.add_argument("--asan", action="store_true", help="readers with the native helper built with AddressSanitizer")
    v.add_argument("--no-window", action="store_true", help="skip the viewer window (no Xvfb)")
    for name, default, what in (("agent-restart", 100, "SIGKILL the agent and restart it"),
                                ("viewer-restart", 100, "SIGKILL a reader mid-copy"),
                                ("spice-restart", 20, "kill QEMU's SPICE server while keys are held"),
                                ("sound-restart", 5, "restart PulseAudio while kvmfr-audio plays")):
        s = sub.add_parser(name, help=what)
        s.add_argument("--count", type=int, default=default)
        if name == "agent-restart":
            s.add_argument("--no-window", action="store_true", help="skip the viewer window (no Xvfb)")
    for s in sub.choices.values():
        s.add_argument("--seed", type=int, help="random seed (default: from the clock; printed)")
        s.add_argument("--json", metavar="FILE", help="write the figures here (default: a file in $TMPDIR, printed)")
        s.add_argument("-v", "--verbose", action="store_true")
    return p


def positive(value: float, what: str) -> None:
    if not value > 0:
        print(f"soak.sh: {what} must be above 0", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="soak: %(message)s")
    interrupt_on_term()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    out = args.json or os.path.join(tempfile.gettempdir(), f"kvmfr-soak-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}.json")

    def log(line: str) -> None:
        print(line, flush=True)

    from .rig import SoakSetupError
    try:
        if args.mode == "vandal":
            seconds = args.seconds if args.seconds is not None else args.minutes * 60
            positive(seconds, "--minutes")
            from .vandal_soak import run_vandal
            asan_env = asan_cwd = None
            build = None
            if args.asan:
                from .asan import AsanBuild
                build = AsanBuild.create(log)
                asan_env, asan_cwd = build.env(), build.cwd
            try:
                report = run_vandal(seconds, seed, asan_env=asan_env, asan_cwd=asan_cwd,
                                    window=not args.no_window, log=log,
                                    progress_s=30.0 if seconds > 120 else 15.0)
            finally:
                if build is not None:
                    build.check_reports(report if "report" in locals() else None)
                    build.close()
        else:
            positive(args.count, "--count")
            from . import restarts
            run = {"agent-restart": restarts.run_agent_restart, "viewer-restart": restarts.run_viewer_restart,
                   "spice-restart": restarts.run_spice_restart, "sound-restart": restarts.run_sound_restart}[args.mode]
            kw = {"window": not args.no_window} if args.mode == "agent-restart" else {}
            report = run(args.count, seed, log=log, **kw)
    except SoakSetupError as exc:
        print(f"soak.sh: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("soak.sh: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a harness bug: one line, the traceback with -v
        logging.debug("harness failure", exc_info=True)
        print(f"soak.sh: the harness itself failed: {type(exc).__name__}: {exc} (rerun with -v for details)",
              file=sys.stderr)
        return 4
    report.params["seed"] = seed
    print(report.table())
    report.write(out)
    print(f"figures: {out} (rerun: scripts/soak.sh {args.mode} --seed {seed} ...)")
    if report.interrupted:
        return 130
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
