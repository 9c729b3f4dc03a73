"""Best-effort scheduling priority for the audio threads, and keeping the garbage collector out of their way.

A late audio thread is an audible click, so the threads that receive and play audio ask for the
niceness PulseAudio gives its own main thread (-11). Not real-time scheduling: Pulse's main thread,
which moves our writes into the sink's queue, is not real-time either, and a client thread at a
real-time priority would take the CPU from it exactly when the machine is busy (measured: more
underruns, not fewer). Root or CAP_SYS_NICE grants -11; without it the threads keep the default,
which is logged once and is fine on an idle machine.
"""

from __future__ import annotations

import gc
import logging
import os
import threading

log = logging.getLogger(__name__)

AUDIO_NICE = -11
_told = False


def raise_thread_priority() -> bool:
    """Lower the calling thread's niceness to :data:`AUDIO_NICE`; False when not permitted."""
    global _told
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), AUDIO_NICE)
        return True
    except (OSError, AttributeError) as exc:
        if not _told:
            _told = True
            log.info("audio threads keep normal priority (%s); under heavy CPU load raise audio:latency", exc)
        return False


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, numpy, pulsectl: tens of thousands) out of the cyclic
    garbage collector's reach. A full collection walks them all while holding the GIL, 15-50 ms on a
    small machine, and every audio thread of the process waits that long: measured as underruns
    about once a minute. Call once, after start-up; later objects are collected as usual."""
    gc.collect()
    gc.freeze()
