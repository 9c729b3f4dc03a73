"""``soak.sh vandal``: readers keep going while a vandal scribbles on the live memory.

Rounds of a burst (0.2-2 s of random writes) and a quiet gap (3-6 s). In each quiet gap the agent is
watched through the memory (tools/soak/shmwatch.py); an agent that stays unhealthy for 3 s of a quiet
gap is stuck: it gets SIGTERM, 1 s, then SIGKILL of its process group, and a fresh agent. A reader
*hangs* when, in a quiet gap, from the moment the agent is healthy (``h0 = max(quiet start, agent
healthy since)``) to the end of the gap, it goes more than 2 s without a frame (the edges count: no
frame in the first 2 s after h0 is a hang too); gaps in which the healthy stretch is shorter than
2.5 s are not judged and are counted as such. At the end the vandal stops, the agent is restarted, and
each reader's recovery is the time from the new agent's session being up to the reader's first frame
captured after the old agent ended.
"""

from __future__ import annotations

import json
import random
import signal
import sys
import time

from .children import PYTHON
from .report import Criterion, Report, fmt_ms
from .rig import Rig, SoakSetupError
from .tracks import max_gap_ns

HANG_S = 2.0
JUDGE_MIN_S = 2.5
RECOVERY_S = 1.5
RSS_GROWTH_PCT = 10.0
AGENT_STUCK_S = 3.0


def run_vandal(seconds: float, seed: int, progress_s: float = 30.0, asan_env: dict | None = None,
               asan_cwd: str | None = None, window: bool = True, log=print) -> Report:
    rng = random.Random(seed)
    warmup = min(10.0, max(3.0, seconds / 10))
    rig = Rig(warmup_s=warmup, reader_env=asan_env, reader_cwd=asan_cwd)
    report = Report("vandal", {"seconds": seconds, "seed": seed, "asan": asan_env is not None, "window": window,
                               "size": list(rig.size), "fps": rig.fps})
    agent_events = {"stuck": 0, "crashed": 0, "sigterm_obeyed": 0, "sigterm_ignored": 0, "restarts": 0}
    judged = {"gaps_judged": 0, "gaps_not_judged": 0}
    hangs: dict[str, list[float]] = {}
    vandal_counts: dict[str, int] = {}
    crashes: list[str] = []
    vandal = None
    try:
        rig.start_agent()
        end_phase = 12.0
        total = warmup + seconds + end_phase + 10.0
        names = ["api", "headless"] + (["window"] if window else [])
        if window:
            rig.start_window(total)
        rig.start_headless(total)
        rig.start_api_reader("api")
        for r in rig.readers.values():
            r.deadline_ns = 0    # their timeouts are a backstop; the soak ends them with SIGTERM
        rig.wait_first_frames(names, timeout=60)
        rig.start_rss_sampler()
        vandal = rig.children.start("vandal", [PYTHON, "-m", "tools.soak.vandal", rig.shm, str(seed)], env=rig.env,
                                    stdin=True, on_line=lambda t, line: _vandal_line(line, vandal_counts))
        time.sleep(warmup)
        log(f"soak vandal: {seconds:.0f} s of rounds, seed {seed}, readers {', '.join(names)}, "
            f"work dir {rig.workdir}")
        t_end = time.monotonic() + seconds
        next_progress = time.monotonic() + progress_s
        rounds = 0
        while time.monotonic() + 1.0 < t_end:
            rounds += 1
            burst = rng.uniform(0.2, 2.0)
            before = sum(vandal_counts.values())
            vandal.proc.stdin.write(f"burst {burst:.3f}\n".encode())
            vandal.proc.stdin.flush()
            deadline = time.monotonic() + burst + 10
            while sum(vandal_counts.values()) == before and time.monotonic() < deadline:
                if not vandal.alive():
                    raise SoakSetupError(f"the vandal process died: {vandal.tail()}")
                time.sleep(0.02)
            crashes += rig.check_exits()
            _quiet_gap(rig, min(rng.uniform(3.0, 6.0), max(1.0, t_end - time.monotonic())), agent_events, judged,
                       hangs, log)
            crashes += rig.check_exits()
            if time.monotonic() >= next_progress:
                next_progress += progress_s
                log(_progress(rig, rounds, seconds - (t_end - time.monotonic()), seconds, agent_events, hangs))
        vandal.proc.stdin.write(b"quit\n")
        vandal.proc.stdin.flush()
        vandal.stop(3.0)
        report.extra["rounds"] = rounds
        # The end: a fresh agent; how long until each reader shows a new good frame.
        t_kill = time.monotonic_ns()
        ended = rig.kill_agent(signal.SIGTERM, 1.0)
        _count_term(ended, agent_events)
        try:
            t_ready = rig.start_agent()
        except SoakSetupError as exc:
            log(f"soak vandal: the agent did not come back after the vandal: {exc}")
            report.extra["end_restart_error"] = str(exc)
            t_ready = time.monotonic_ns()
        for r in rig.readers.values():
            r.track.arm(t_ready, t_kill)
        wait_until = time.monotonic() + 10
        while time.monotonic() < wait_until and any(r.track.recovery.got_ns is None and r.child.alive()
                                                     for r in rig.readers.values()):
            time.sleep(0.02)
        report.extra["agent_start_after_end_ms"] = round((t_ready - t_kill) / 1e6, 1)
        time.sleep(2.0)
        crashes += rig.check_exits()
        rig.finish_readers()
    except KeyboardInterrupt:
        report.interrupted = True
        log("soak vandal: interrupted; stopping every process")
    finally:
        rig.close()

    report.extra["vandal_writes"] = vandal_counts
    report.extra["agent"] = agent_events | {"agent_starts": rig.agent_starts}
    report.extra.update(judged)
    for name, r in rig.readers.items():
        rec = r.track.recovery
        rec_ms = (rec.got_ns - rec.armed_ns) / 1e6 if rec.got_ns is not None and rec.armed_ns else None
        rss = r.rss.result()
        report.readers[name] = {"frames": r.frames(), "exit": r.exit, "hangs_over_2s": len(hangs.get(name, [])),
                                "longest_hang_s": max(hangs.get(name, [0.0])), "rss": rss,
                                "recovery_ms": None if rec_ms is None else round(rec_ms, 1),
                                "errors": r.errors(), "result": _small(r.result)}
        crashed = bool(r.exit and (r.exit.get("early") or r.exit.get("overdue")
                                   or (r.exit.get("signal") is not None and not r.exit.get("stopped_by_soak"))))
        report.add(Criterion(f"{name}: no crash, ends when due", not crashed and not r.track.exception,
                             r.exit_text()))
        report.add(Criterion(f"{name}: no frame wait > {HANG_S:.0f} s (quiet vandal, healthy agent)",
                             not hangs.get(name), f"{len(hangs.get(name, []))} hangs"
                             + (f", longest {max(hangs[name]):.1f} s" if hangs.get(name) else "")))
        growth = rss["growth_pct"]
        # Under ASan the allocator's quarantine and shadow memory grow by design: shown, not judged.
        report.add(Criterion(f"{name}: RSS growth < {RSS_GROWTH_PCT:.0f} % after warm-up"
                             + (" (ASan: not judged)" if asan_env is not None else ""),
                             growth is not None and growth < RSS_GROWTH_PCT,
                             f"{_kib(rss['warm_kib'])} -> {_kib(rss['end_kib'])} ({growth} %)",
                             informative=asan_env is not None))
        what = "reconnected" if name == "headless" else "new frame"
        report.add(Criterion(f"{name}: {what} < {RECOVERY_S} s after agent restart",
                             rec_ms is not None and rec_ms < RECOVERY_S * 1000, fmt_ms(rec_ms)))
    report.add(Criterion("agent: never stuck or crashed under the vandal (producer hardening)",
                         agent_events["stuck"] == 0 and agent_events["crashed"] == 0,
                         f"stuck {agent_events['stuck']}, crashed {agent_events['crashed']}, SIGTERM ignored "
                         f"{agent_events['sigterm_ignored']}"))
    report.add(Criterion("gaps judged for hangs", judged["gaps_judged"] > 0,
                         f"{judged['gaps_judged']} judged, {judged['gaps_not_judged']} not (agent unhealthy)",
                         informative=True))
    if crashes:
        report.extra["early_exits"] = crashes
    return report


def _vandal_line(line: str, counts: dict) -> None:
    if line.startswith("done "):
        for k, v in json.loads(line[5:]).items():
            counts[k] = counts.get(k, 0) + v


def _count_term(ended: dict, agent_events: dict) -> None:
    if ended.get("obeyed") is True:
        agent_events["sigterm_obeyed"] += 1
    elif ended.get("obeyed") is False:
        agent_events["sigterm_ignored"] += 1


def _quiet_gap(rig: Rig, seconds: float, agent_events: dict, judged: dict, hangs: dict, log) -> None:
    q0 = time.monotonic_ns()
    q1 = q0 + int(seconds * 1e9)
    unhealthy_since = None
    while time.monotonic_ns() < q1:
        time.sleep(0.05)
        now = time.monotonic_ns()
        if rig.agent is not None and not rig.agent.alive():
            agent_events["crashed"] += 1
            log(f"soak vandal: the agent exited with status {rig.agent.proc.returncode}: {rig.agent.tail(2)}; restarting it")
            rig.agent.kill()
            _restart_agent(rig, agent_events)
            unhealthy_since = None
            continue
        if rig.health.healthy():
            unhealthy_since = None
            continue
        unhealthy_since = unhealthy_since or now
        if now - unhealthy_since > AGENT_STUCK_S * 1e9:
            agent_events["stuck"] += 1
            ended = rig.kill_agent(signal.SIGTERM, 1.0)
            _count_term(ended, agent_events)
            log(f"soak vandal: the agent is stuck (no heartbeat or frame for {AGENT_STUCK_S:.0f} s while the vandal "
                f"is quiet); SIGTERM {'ended it' if ended.get('obeyed') else 'was ignored, SIGKILLed'}; restarting it")
            _restart_agent(rig, agent_events)
            unhealthy_since = None
    since = rig.health.healthy_since_ns
    if since is None or q1 - max(q0, since) < JUDGE_MIN_S * 1e9:
        judged["gaps_not_judged"] += 1
        return
    judged["gaps_judged"] += 1
    h0 = max(q0, since)
    for name, r in rig.readers.items():
        if r.exit is not None or not r.child.alive():
            continue
        gap = max_gap_ns(r.track.times_between(h0, q1), h0, q1)
        if gap > HANG_S * 1e9:
            hangs.setdefault(name, []).append(round(gap / 1e9, 2))
            if len(hangs[name]) > 1000:
                hangs[name] = hangs[name][-1000:]


def _restart_agent(rig: Rig, agent_events: dict) -> None:
    agent_events["restarts"] += 1
    try:
        rig.start_agent()
    except RuntimeError as exc:
        print(f"soak vandal: {exc}", file=sys.stderr)


def _progress(rig, rounds, done_s, total_s, agent_events, hangs) -> str:
    parts = [f"{r.name} {r.frames()} fr, {_kib(r.rss.last[-1] if r.rss.last else r.rss.first)}"
             + ("" if r.child.alive() else " EXITED") for r in rig.readers.values()]
    return (f"[{time.strftime('%H:%M:%S')}] {done_s / 60:.1f}/{total_s / 60:.1f} min, {rounds} rounds; agent stuck "
            f"{agent_events['stuck']}, crashed {agent_events['crashed']}; hangs "
            f"{sum(len(v) for v in hangs.values())}; " + "; ".join(parts))


def _small(result: dict | None) -> dict | None:
    if not result:
        return None
    keep = ("frames", "pattern_errors", "session_restarts", "data_errors", "error_counts", "state",
            "frames_received", "frames_shown", "sessions", "dropped")
    return {k: result[k] for k in keep if k in result}


def _kib(v) -> str:
    return "-" if v is None else f"{v / 1024:.1f} MiB"
