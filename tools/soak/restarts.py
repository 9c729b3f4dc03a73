"""Restart soaks: the agent SIGKILLed (half the time while it writes a frame), a reader SIGKILLed while
frames flow, QEMU's SPICE server killed while keys are held, PulseAudio restarted while audio plays."""

from __future__ import annotations

import random
import time

from .report import Criterion, Report, fmt_summary
from .rig import Rig
from .shmwatch import FrameWatch
from .tracks import summary_ms

RECOVERY_S = 1.5
STALL_S = 1.0


def _wait(pred, timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def run_agent_restart(count: int, seed: int, log=print, window: bool = True) -> Report:
    """SIGKILL the agent ``count`` times and start it again; each reader's time to its next frame.

    Recovery is measured from the new agent's session being up (its header valid: what the readers can
    react to) to the reader's first frame captured after the kill; the agent's own start (kill -> session
    up, mostly Python's start-up) is reported beside it."""
    rng = random.Random(seed)
    rig = Rig(size=(1280, 720), fps=30.0, warmup_s=5.0)
    report = Report("agent-restart", {"count": count, "seed": seed, "size": [1280, 720], "fps": 30, "window": window})
    recov: dict[str, list[float]] = {}
    misses: dict[str, int] = {}
    agent_start: list[float] = []
    mid_write = 0
    done = 0
    try:
        rig.start_agent()
        if window:
            rig.start_window(10 ** 6)
        rig.start_headless(10 ** 6)
        rig.start_api_reader("api")
        for r in rig.readers.values():
            r.deadline_ns = 0       # these are stopped by the soak at the end
        rig.wait_first_frames([n for n in rig.readers], timeout=60)
        rig.start_rss_sampler()
        log(f"soak agent-restart: {count} kills, seed {seed}, readers {', '.join(rig.readers)}")
        for i in range(count):
            time.sleep(rng.uniform(0.3, 1.0))
            hit = False
            if i % 2 == 0:     # wait for a moment the agent is writing a frame's pixels
                watch = FrameWatch(rig.shm)
                try:
                    hit = _wait(watch.mid_write, 0.5, 0.0002)
                finally:
                    watch.close()
            t_kill = time.monotonic_ns()
            rig.kill_agent()
            mid_write += hit
            t_ready = rig.start_agent()
            agent_start.append((t_ready - t_kill) / 1e6)
            for r in rig.readers.values():
                r.track.arm(t_ready, t_kill)
            _wait(lambda: all(r.track.recovery.got_ns is not None or not r.child.alive() for r in rig.readers.values()),
                  10.0, 0.01)
            for name, r in rig.readers.items():
                got = r.track.recovery.got_ns
                if got is None:
                    misses[name] = misses.get(name, 0) + 1
                else:
                    recov.setdefault(name, []).append(max(0.0, (got - t_ready) / 1e6))
            done += 1
            if rig.check_exits():
                break
            if (i + 1) % 10 == 0 or i + 1 == count:
                worst = {n: f"{max(v):.0f}" for n, v in recov.items() if v}
                log(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{count} kills ({mid_write} mid-write); worst recovery ms {worst}")
        rig.finish_readers()
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        rig.close()
    report.extra.update({"kills": done, "kills_mid_write": mid_write, "agent_start": summary_ms(agent_start)})
    for name, r in rig.readers.items():
        what = "reconnect" if name == "headless" else "next frame"
        s = summary_ms(recov.get(name, []))
        report.readers[name] = {"recovery": s, "missed": misses.get(name, 0), "exit": r.exit, "rss": r.rss.result(),
                                "errors": r.errors()}
        ok = misses.get(name, 0) == 0 and s["n"] == done and done > 0 and s["max_ms"] < RECOVERY_S * 1000
        report.add(Criterion(f"{name}: {what} < {RECOVERY_S} s after each restart", ok,
                             fmt_summary(s) + (f", {misses[name]} never" if misses.get(name) else "")))
        report.add(Criterion(f"{name}: alive to the end", not (r.exit or {}).get("early") and not r.track.exception,
                             r.exit_text()))
    report.add(Criterion("agent start (kill -> session up), not judged", True, fmt_summary(summary_ms(agent_start))
                         + f"; {mid_write} of {done} kills while a frame was being written", informative=True))
    return report


def run_viewer_restart(count: int, seed: int, log=print) -> Report:
    """SIGKILL a reader (an API reader, restarted each time) ``count`` times while frames flow; the agent's
    posting cadence (capture stamps seen by a second reader) must not stall more than 1 s, and the other
    readers keep getting frames. Half the kills land right after the agent posts a frame (the victim is
    then peeking or copying it, or holds it unacknowledged), half at a random moment."""
    rng = random.Random(seed)
    rig = Rig(size=(1280, 720), fps=30.0, warmup_s=5.0)
    report = Report("viewer-restart", {"count": count, "seed": seed, "size": [1280, 720], "fps": 30})
    stalls: list[float] = []
    gaps: list[float] = []
    after_post = 0
    done = 0
    try:
        rig.start_agent()
        observer = rig.start_api_reader("observer")
        rig.start_headless(10 ** 6)
        rig.readers["headless"].deadline_ns = 0
        rig.wait_first_frames(["observer", "headless"], timeout=60)
        rig.start_rss_sampler()
        log(f"soak viewer-restart: {count} kills, seed {seed}")
        for i in range(count):
            victim = rig.start_api_reader("victim")
            if not _wait(lambda: victim.track.frames >= 2, 20.0, 0.01):
                report.add(Criterion("each new reader gets frames", False,
                                     f"kill {i + 1}: no frame within 20 s: {victim.child.tail()[:160]}"))
                break
            if i % 2 == 0:
                watch = FrameWatch(rig.shm)
                try:
                    pos = watch.position()
                    _wait(lambda: watch.position() != pos, 0.2, 0.0002)
                    after_post += 1
                finally:
                    watch.close()
            else:
                time.sleep(rng.uniform(0, 1 / rig.fps))
            t_kill = time.monotonic_ns()
            victim.child.kill()
            del rig.readers["victim"]
            time.sleep(1.5)
            t_end = time.monotonic_ns()
            caps = observer.track.captures_between(t_kill - 500_000_000, t_end)
            stamps = [c * 1000 for _, c in caps]
            stall = max([b - a for a, b in zip(stamps, stamps[1:])] + [t_end - (stamps[-1] if stamps else t_kill)])
            stalls.append(stall / 1e6)
            times = observer.track.times_between(t_kill, t_end)
            from .tracks import max_gap_ns
            gaps.append(max_gap_ns(times, t_kill, t_end) / 1e6)
            done += 1
            if rig.check_exits():
                break
            if (i + 1) % 10 == 0 or i + 1 == count:
                log(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{count} kills; worst agent stall {max(stalls):.0f} ms, "
                    f"worst observer gap {max(gaps):.0f} ms")
        rig.finish_readers()
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        rig.close()
    s, g = summary_ms(stalls), summary_ms(gaps)
    report.extra.update({"kills": done, "kills_right_after_post": after_post, "agent_stall": s, "observer_gap": g})
    report.add(Criterion(f"agent never stalls > {STALL_S:.0f} s (capture stamps seen by the observer)",
                         done > 0 and s["max_ms"] < STALL_S * 1000, fmt_summary(s)))
    report.add(Criterion(f"observer keeps getting frames (no gap > {STALL_S:.0f} s)",
                         done > 0 and g["max_ms"] < STALL_S * 1000, fmt_summary(g)))
    for name in ("observer", "headless"):
        r = rig.readers.get(name)
        if r is not None:
            report.readers[name] = {"exit": r.exit, "rss": r.rss.result(), "errors": r.errors()}
            report.add(Criterion(f"{name}: alive to the end", not (r.exit or {}).get("early") and not r.track.exception,
                                 r.exit_text()))
    return report


def run_spice_restart(count: int, seed: int, log=print) -> Report:
    from .spice_soak import run
    return run(count, seed, log)


def run_sound_restart(count: int, seed: int, log=print) -> Report:
    from .sound_soak import run
    return run(count, seed, log)
