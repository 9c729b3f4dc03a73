"""What runs beside the window: the input path (with its SPICE session, when configured) and guest audio.

Both are built from the same configuration as the window, started before it and stopped after it.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from kvmfr_client.input import ViewerInput

log = logging.getLogger(__name__)


def start_services(cfg: Mapping[str, Any]) -> tuple[ViewerInput, Any]:
    """Start the window's input (SPICE when ``spice:enable`` and ``spice:input``) and audio (``audio:*``)."""
    viewer_input = ViewerInput.from_config(cfg).start()
    # The microphone (SPICE record channel) joins the same session; ScrollLock+E toggles it.
    if viewer_input.spice is not None:
        from kvmfr_client.audio.mic import Microphone
        viewer_input.microphone = Microphone.from_config(cfg, viewer_input.spice).start()
        viewer_input.add_combo("e", "toggle the microphone", viewer_input.microphone.toggle)
    audio = None
    if cfg["audio:scream"] or cfg["audio:spice"]:
        from kvmfr_client.audio import AudioService
        from kvmfr_client.audio.priority import freeze_startup_objects
        # QEMU's SPICE server takes one client: the playback channel joins the window's session.
        audio = AudioService(cfg, spice=viewer_input.spice)
        try:
            audio.start()
        except Exception as exc:   # no sound is better than no picture: say why and go on
            log.error("audio disabled: %s", exc)
            audio = None
        # Full garbage collections of start-up objects stalled the audio threads (underruns).
        freeze_startup_objects()
    return viewer_input, audio


def stop_services(viewer_input: ViewerInput, audio) -> None:
    # In the reverse order of start_services: the playback's state hook wraps the microphone's.
    if audio is not None:
        audio.stop()
    if viewer_input.microphone is not None:
        viewer_input.microphone.stop()
    viewer_input.stop()
