"""``soak.sh spice-restart``: QEMU (its SPICE server) killed and started again while keys and a mouse
button are held in capture mode; after each reconnect nothing may stay down in the guest.

The input path is the viewer's own (``ViewerInput`` -> ``InputController`` -> ``SpiceThread`` built by
``spice_from_config``, default back-off), fed with window events; what reached QEMU comes from its
``input_event_*`` trace (tests/support/vm.py starts the bare traced machine, as the SPICE tests do).
Each round: capture on, hold A + Shift + left button; SIGKILL QEMU; while it is gone the user lets go
of Shift and presses B; a new QEMU on the same port; the client reconnects; the user lets go of
everything and types C. A key or button is *stuck* when the new QEMU's trace ends with it down.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path

from .report import Criterion, Report, fmt_summary
from .tracks import summary_ms

KEY_A, KEY_B, KEY_C, KEY_LEFTSHIFT = 30, 48, 46, 42


def _held(events: list[tuple]) -> set[str]:
    state: dict[str, bool] = {}
    for kind, name, value in events:
        if kind in ("key", "btn"):
            state[f"{kind} {name}"] = value
    return {k for k, down in state.items() if down}


def run(count: int, seed: int, log=print) -> Report:
    from kvmfr_client import config
    from kvmfr_client.input.events import BTN_LEFT, ButtonEvent, EnterEvent, FocusEvent, KeyEvent
    from kvmfr_client.input.viewer_input import ViewerInput
    from kvmfr_client.spice import spice_from_config
    from tests.support.vm import free_port, start_qemu

    from .rig import SoakSetupError

    report = Report("spice-restart", {"count": count, "seed": seed})
    workdir = Path(tempfile.mkdtemp(prefix="kvmfr-soak-spice-"))
    port = free_port()
    cfg = config.load(["spice:host=127.0.0.1", f"spice:port={port}"], user_file=False)
    reconnect_ms: list[float] = []
    stuck_rounds: list[str] = []
    lost_input = 0
    last_events: list[tuple] = []
    held_before: list[int] = []
    vm = None
    vi = None
    done = 0
    try:
        def qemu(n: int):
            try:
                return start_qemu(workdir / f"q{n}", port=port, name=f"soak{n}")
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # the test support's pytest.fail when QEMU is missing or dies
                text = str(exc).strip()
                raise SoakSetupError(f"QEMU did not start: {text.splitlines()[0] if text else repr(exc)}") from None

        vm = qemu(0)
        vi = ViewerInput(cfg, spice_from_config(cfg)).start()
        ctl = vi.controller
        if not _until(lambda: vi.spice.connected, 15):
            raise SoakSetupError(f"the SPICE client did not connect to QEMU on port {port}")
        ctl.handle(FocusEvent(True))
        ctl.handle(EnterEvent(True))
        log(f"soak spice-restart: {count} QEMU kills, port {port}")
        for i in range(count):
            if not ctl.captured:
                ctl.handle(KeyEvent(ctl.escape_key, True))
                ctl.handle(KeyEvent(ctl.escape_key, False))
            vm.trace.mark()
            ctl.handle(KeyEvent(KEY_A, True))
            ctl.handle(KeyEvent(KEY_LEFTSHIFT, True))
            ctl.handle(ButtonEvent(BTN_LEFT, True))
            before = _held(vm.trace.take(timeout=1.0, settle=0.1))
            held_before.append(len(before))
            if i == 0:
                report.extra["held_before_kill"] = sorted(before)
            vm.stop(signal.SIGKILL)
            if not _until(lambda: not vi.spice.connected, 5):
                log("soak spice-restart: the client did not notice QEMU was gone within 5 s")
            ctl.handle(KeyEvent(KEY_LEFTSHIFT, False))
            ctl.handle(KeyEvent(KEY_B, True))
            vm = qemu(i + 1)
            t_up = time.monotonic()
            if not _until(lambda: vi.spice.connected, 15):
                stuck_rounds.append(f"round {i + 1}: no reconnect within 15 s")
                done += 1
                continue
            reconnect_ms.append((time.monotonic() - t_up) * 1000)
            time.sleep(0.3)
            ctl.handle(KeyEvent(KEY_A, False))
            ctl.handle(KeyEvent(KEY_B, False))
            ctl.handle(ButtonEvent(BTN_LEFT, False))
            ctl.handle(KeyEvent(KEY_C, True))
            ctl.handle(KeyEvent(KEY_C, False))
            events = vm.trace.take(timeout=2.0, settle=0.3)
            last_events = events[:40]
            held = _held(events)
            if held:
                stuck_rounds.append(f"round {i + 1}: {', '.join(sorted(held))} left down")
            if ("key", "c", False) not in events:
                lost_input += 1
            done += 1
            if (i + 1) % 5 == 0 or i + 1 == count:
                log(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{count} restarts; stuck {len(stuck_rounds)}, "
                    f"worst reconnect {max(reconnect_ms or [0]):.0f} ms")
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if vi is not None:
            vi.stop()
        if vm is not None:
            vm.stop()
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    s = summary_ms(reconnect_ms)
    report.extra.update({"restarts": done, "reconnect": s, "stuck": stuck_rounds, "typing_lost_after_reconnect": lost_input,
                         "last_round_trace": [list(e) for e in last_events]})
    report.add(Criterion("no key or button stuck down in the guest after a reconnect", done > 0 and not stuck_rounds,
                         f"{len(stuck_rounds)} of {done} rounds" + (f": {stuck_rounds[0]}" if stuck_rounds else "")))
    report.add(Criterion("typing reaches the new QEMU after each reconnect", done > 0 and lost_input == 0,
                         f"{lost_input} of {done} rounds lost the C key"))
    report.add(Criterion("A, Shift and the left button held in the guest before each kill",
                         bool(held_before) and min(held_before) == 3,
                         f"{report.extra.get('held_before_kill')} in round 1; fewest {min(held_before or [0])}"))
    report.add(Criterion("reconnect (new QEMU listening -> connected), not judged", True, fmt_summary(s),
                         informative=True))
    return report


def _until(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
