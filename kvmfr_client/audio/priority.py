"""Scheduling priority for the audio threads, and keeping the garbage collector out of their way.

A late audio thread is an audible click, so the threads that receive and play audio ask for the
niceness PulseAudio gives its own main thread (-11); root or CAP_SYS_NICE (or RLIMIT_NICE) grants
it, and without it they keep the default, logged once (fine on an idle machine).

``audio:realtime=yes`` asks for real-time round-robin at :data:`AUDIO_RT_PRIORITY` instead: below the
sound server's own real-time threads (PulseAudio's default is 5), above every ordinary thread. It is
off by default because it was measured no better on a VM whose vCPUs the host stops now and then
(benchmarks/audio.py, docs/audio.md: 7 underruns against 3 in one busy half hour, 0 against 1 in a
quiet one), and the audio process used twice the CPU (7.6 % of a core against 4 %). A likely reason,
not measured: the kernel wakes a real-time thread on its previous CPU even while that vCPU is
stopped, where an ordinary thread can be placed beside the thread that woke it. It may still help
where the niceness does not reach: a desktop whose per-application cgroups share the CPU by weight
before niceness counts. Threads a real-time thread starts inherit its scheduling, so the sound-server
connection's thread gets it too.
"""

from __future__ import annotations

import gc
import logging
import os
import threading

log = logging.getLogger(__name__)

AUDIO_NICE = -11
AUDIO_RT_PRIORITY = 3
_realtime = False
_told: set[str] = set()


def use_realtime(enabled: bool) -> None:
    """Whether :func:`raise_thread_priority` asks for real-time scheduling (``audio:realtime``)."""
    global _realtime
    _realtime = enabled


def _tell_once(what: str, message: str, *args) -> None:
    if what not in _told:
        _told.add(what)
        log.info(message, *args)


def raise_thread_priority() -> str:
    """Give the calling thread the audio priority; returns what it got: "realtime", "nice" or "default"."""
    got = _raise_priority(threading.get_native_id())
    _name_os_thread()   # after: the priority is what matters first
    return got


def _raise_priority(tid: int) -> str:
    if _realtime:
        try:
            os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(AUDIO_RT_PRIORITY))
            return "realtime"
        except (OSError, AttributeError) as exc:
            _tell_once("realtime", "audio threads: real-time scheduling refused (%s); using nice %d", exc, AUDIO_NICE)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, AUDIO_NICE)
        return "nice"
    except (OSError, AttributeError) as exc:
        _tell_once("nice", "audio threads keep normal priority (%s); under heavy CPU load raise audio:latency", exc)
        return "default"


def _name_os_thread() -> None:
    """Give the calling thread its Python name in the kernel too (15 bytes), so ``top -H``, ``/proc`` and
    the audio benchmark's per-thread CPU tell audio-player from audio-scream-udp (Python 3.11 leaves
    every thread named after the process)."""
    global _prctl
    current = threading.current_thread()
    if current is threading.main_thread() or current.name.startswith("Dummy-"):
        return   # the process's name (ps, pgrep), or a thread that libpulse named (threaded-ml): left alone
    if _prctl is None:
        import ctypes
        import ctypes.util

        try:
            _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl
        except (OSError, AttributeError):
            _prctl = False
    if _prctl:
        _prctl(15, threading.current_thread().name.encode()[:15], 0, 0, 0)   # PR_SET_NAME


_prctl = None


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, numpy, pulsectl: tens of thousands) out of the cyclic
    garbage collector's reach. A full collection walks them all while holding the GIL, 15-50 ms on a
    small machine, and every audio thread of the process waits that long: measured as underruns
    about once a minute. Call once, after start-up; later objects are collected as usual."""
    gc.collect()
    gc.freeze()
