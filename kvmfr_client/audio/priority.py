"""Best-effort scheduling priority for the audio threads.

A late audio thread is an audible click, so the threads that receive and play audio ask for the
niceness PulseAudio gives its own main thread (-11). Not real-time scheduling: Pulse's main thread,
which moves our writes into the sink's queue, is not real-time either, and a client thread at a
real-time priority would take the CPU from it exactly when the machine is busy (measured: more
underruns, not fewer). Root or CAP_SYS_NICE grants -11; without it the threads keep the default,
which is logged once and is fine on an idle machine.
"""

from __future__ import annotations

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
