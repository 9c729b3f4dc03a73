"""Every option of kvmfr-view, kvmfr-audio and kvmfr-input, declared once: type, default, help.

Names follow Looking Glass B7 where it has the option, so a Looking Glass ``client.ini`` carries over; where
a B7 name means the same as one of ours under another name, an :class:`Alias` maps it (at the end). An
``lg=`` note says how an option differs from B7's of the same name; ``docs/looking-glass-users.md`` is
generated from these notes. The guest agent's options (``agent:*``) are in :mod:`guest_agent.options`.
"""

from __future__ import annotations

import os
import re

from kvmfr_client.core.ivshmem_ids import MAX_DISPLAYS   # one window per display; as many as kvmfr-vm gives a VM

from .registry import Alias, Option, bounded, number, parse_bool, register, register_alias, size_within

# audio:micDefault's choices (kvmfr_client.audio.mic checks its policy against them too).
MIC_POLICIES = ("prompt", "allow", "deny")


# -- defaults computed when the configuration is loaded ---------------------------------------------------

def default_shm() -> str:
    """Like Looking Glass: /dev/kvmfr0 when the kvmfr module made it, else /dev/shm/looking-glass."""
    return "/dev/kvmfr0" if os.path.exists("/dev/kvmfr0") else "/dev/shm/looking-glass"


# -- value types --------------------------------------------------------------------------------------------

def parse_shm(text: str) -> str:
    """A path, or (as in Looking Glass) the name of a kvmfr device: ``kvmfr0`` -> ``/dev/kvmfr0``."""
    text = text.strip()
    if not text:
        raise ValueError("expected a file or a kvmfr device name, got an empty value")
    return f"/dev/{text}" if re.fullmatch(r"kvmfr\d+", text) else text


# X11 window coordinates are signed 16-bit; sizes are capped below what GL drivers and X servers allow
# (a GL framebuffer of 16384 per side is the common maximum), so a mistyped size is an error here rather
# than an X error or a silently smaller window later.
MAX_WINDOW_SIDE = 16384
POSITION_RANGE = (-32768, 32767)


def parse_position(text: str) -> tuple[int, int] | None:
    """``center`` (None: let the window manager choose) or ``X,Y`` / ``XxY``, each -32768..32767."""
    value = text.strip().lower()
    if value in ("", "center", "auto"):
        return None
    low, high = POSITION_RANGE
    for sep in (",", "x"):
        if sep in value:
            try:
                x, y = (int(v) for v in value.split(sep, 1))
            except ValueError:
                break
            if not (low <= x <= high and low <= y <= high):
                raise ValueError(f"each coordinate must be {low}..{high}, got {text.strip()}")
            return x, y
    raise ValueError(f"expected X,Y (whole numbers) or center, got {text!r}")


def show_position(value: tuple[int, int] | None) -> str:
    return "center" if value is None else f"{value[0]},{value[1]}"


parse_window_size = size_within(MAX_WINDOW_SIDE, "a window")
parse_rotation = bounded(int, lambda v: v in (0, 90, 180, 270), "0, 90, 180 or 270")
# Kept for other modules: a positive number with a sane ceiling (inf is no number of anything).
parse_positive_float = bounded(float, lambda v: 0 < v <= 1e9, "a positive number")


def parse_fps_min(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value == -1 or 0 <= value <= 1000):
        raise ValueError(f"must be 0..1000 frames per second, or -1 (auto), got {text.strip()}")
    return max(value, 0.0)   # Looking Glass's -1 (auto) is our 0: redraw only on change


parse_port = number(int, 0, 65535, also=" (0: spice:host is a UNIX socket)")
parse_sens = number(int, -9, 9)
parse_help_delay_ms = number(int, 0, 60_000, "milliseconds")


def parse_key(text: str) -> int:
    """An evdev key code (70) or a key name (scrolllock, KEY_RIGHTCTRL)."""
    from kvmfr_client.spice.keymap import key_from_name
    return key_from_name(text)


parse_poll_us = number(int, 1, 1_000_000, "microseconds")
parse_peak_nits = number(float, 1.0, 10000.0, "nits")
parse_latency_ms = number(int, 1, 1000, "milliseconds")
parse_max_latency_ms = number(int, 1, 10000, "milliseconds")
parse_device_latency_ms = number(float, 0.1, 1000.0, "milliseconds")


parse_nv_gain = number(int, 0, 100, also=", at most egl:nvGainMax")
parse_nv_gain_max = number(int, 1, 100)
parse_cb_mode = number(int, 0, 3, also=" (0 off, 1 protanope, 2 deuteranope, 3 tritanope)")
parse_sharpness = number(float, 0.0, 1.0)


def parse_filter_order(text: str) -> str:
    """``eglFilter:order``: filter names separated by commas (checked now, kept as written)."""
    from kvmfr_client.viewer.filters import parse_order
    parse_order(text)
    return text.strip()


def egl_scale_to_filter(text: str) -> str:
    """Looking Glass's ``egl:scale`` (0 auto, 1 nearest, 2 linear) as our ``win:filter``."""
    names = {"0": "linear", "1": "nearest", "2": "linear"}
    if text.strip() not in names:
        raise ValueError(f"egl:scale: expected 0 (auto), 1 (nearest) or 2 (linear), got {text!r}")
    return names[text.strip()]


# -- win: how the window fits into the desktop (docs/viewer.md, "The window on the desktop") ------------------

TITLE_PLACEHOLDERS = {   # win:title's {placeholders}; kvmfr_client.viewer.identity fills them in
    "width": "the guest frame's width in pixels (? before the first frame)",
    "height": "the guest frame's height in pixels",
    "fps": "frames drawn per second in the last second",
    "ups": "guest frame updates received per second",
    "os": "the guest's operating system, as the host reports it",
    "host": "the Looking Glass host's version string",
    "protocol": "the protocol spoken with the host: B7 or master",
    "state": "the session's state (waiting for the host, connected, ...)",
}
TITLE_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z]*)\}")


def parse_title(text: str) -> str:
    """``win:title``: any text; each ``{name}`` must be a known placeholder (``{{`` is no escape: braces
    that name nothing are an error, so a typo is caught at start)."""
    unknown = sorted({m.group(1) for m in TITLE_PLACEHOLDER_RE.finditer(text)} - set(TITLE_PLACEHOLDERS))
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; known: "
                         + ", ".join(f"{{{n}}}" for n in TITLE_PLACEHOLDERS))
    return text


register(
    Option("win", "title", "kvmfr-view", "window title; {width} {height} {fps} {ups} {os} {host} {protocol} "
           "{state} are filled in from the session, and the guest's OS and host (or the session's state) are "
           "appended after ' - '; the window's WM_CLASS and app-id stay kvmfr-view", parse=parse_title,
           lg="default kvmfr-view; {placeholders} are ours (B7's title is plain text); the guest's OS and host "
              "version are appended"),
    Option("win", "noScreensaver", False, "keep the desktop's screensaver off while the window is open "
           "(the compositor's idle inhibit on Wayland, else org.freedesktop.ScreenSaver on the session bus, "
           "else the X server's XScreenSaverSuspend)",
           parse=parse_bool, lg="through the compositor's idle inhibit on Wayland where offered, else the "
                                "desktop's D-Bus ScreenSaver service, else X11's own"),
    Option("win", "autoScreensaver", False, "keep the screensaver off while the guest asks (its frames carry "
           "KVMFR's block-screensaver flag)", parse=parse_bool),
    Option("win", "minimizeOnFocusLoss", False, "minimize the window when it loses focus while full screen",
           parse=parse_bool),
    Option("win", "requestActivation", True, "when the guest asks for attention (KVMFR's request-activation "
           "flag) and the window is not focused, ask the desktop for attention (X11: urgency; Wayland: "
           "xdg-activation where offered)",
           parse=parse_bool, lg="on X11 the window is marked urgent (glfw's window attention), not raised; on "
                                "Wayland xdg-activation may raise and focus it"),
)


# -- the options --------------------------------------------------------------------------------------------

register(
    # app: the shared memory and the reader
    Option("app", "shmFile", default_shm, "shared-memory file or kvmfr device (a name such as kvmfr0 means "
           "/dev/kvmfr0); default: /dev/kvmfr0 if it exists, else /dev/shm/looking-glass", parse=parse_shm),
    Option("app", "pollUs", 250, "how often (microseconds) the reader checks the frame and cursor queues when "
           "idle (1..1000000)", parse=parse_poll_us),
    Option("app", "configFile", "", "an INI file to read after the standard ones (repeatable on the command "
           "line: -C FILE)"),
    Option("app", "license", False, "print the licence and exit", parse=parse_bool),

    # win: the window
    Option("win", "size", (1024, 768), f"initial window size WIDTHxHEIGHT, at most {MAX_WINDOW_SIDE} per side",
           parse=parse_window_size),
    Option("win", "position", None, "initial window position X,Y or XxY; center: the window manager places it",
           parse=parse_position, show=show_position),
    Option("win", "autoResize", False, "resize the window to the guest's frame size when it changes",
           parse=parse_bool),
    Option("win", "allowResize", True, "let the user resize the window", parse=parse_bool),
    Option("win", "borderless", False, "no window decorations", parse=parse_bool),
    Option("win", "fullScreen", False, "start full screen (key: escape key + F)", parse=parse_bool),
    Option("win", "maximize", False, "start maximized", parse=parse_bool),
    Option("win", "keepAspect", True, "keep the guest's aspect ratio (letterbox) when scaling", parse=parse_bool),
    Option("win", "intUpscale", False, "scale up only by whole multiples (sharp pixels)", parse=parse_bool),
    Option("win", "dontUpscale", False, "never scale the frame above its size (smaller windows still scale down)",
           parse=parse_bool),
    Option("win", "rotate", 0, "rotate the picture clockwise by 0, 90, 180 or 270 degrees, on top of the "
           "rotation the host asks for", parse=parse_rotation),
    Option("win", "filter", "linear", "scaling filter when the frame is not shown 1:1",
           choices=("nearest", "linear")),
    Option("win", "fpsMin", 0.0, "redraw at least this often (frames/s) even when nothing changed; 0: only on "
           "change", parse=parse_fps_min,
           lg="frames/s as a number; 0 and -1 (Looking Glass's auto) both mean: redraw only on change; "
              "default 0"),
    Option("win", "setGuestRes", True, "when the host can (Looking Glass master's IDD host), set the guest's "
           "resolution to the window's size in device pixels: at connect and 0.3 s after the last resize; not "
           "with win:autoResize", parse=parse_bool,
           lg="Looking Glass master's option (B7 has none); the host must advertise the window-size feature"),
    Option("win", "alerts", True, "show short on-screen alerts (capture on/off, host restarted, overlay toggled)",
           parse=parse_bool),
    Option("win", "showFPS", False, "show the stats overlay at start (key: escape key + D)", parse=parse_bool,
           lg="the overlay shows frame rates, latency and counters"),

    # egl: the renderer (one OpenGL renderer here; the section keeps Looking Glass's name)
    Option("egl", "vsync", False, "wait for vertical blank before showing a frame (adds latency)",
           parse=parse_bool),
    Option("egl", "mapHDRtoSDR", True, "tone-map HDR frames (HDR flag) into SDR instead of clipping",
           parse=parse_bool),
    Option("egl", "peakLuminance", 250.0, "HDR to SDR: content luminance (nits) that maps to SDR white's top; "
           "brighter highlights clip. SDR white is 80 nits (scRGB 1.0); 1..10000", parse=parse_peak_nits),

    # egl / eglFilter: the picture filters (docs/filters.md); none on by default: the 1:1 blit path
    Option("egl", "nvGain", 0, "night vision gain at start: dark tones lifted as 1 - (1 - c)^(1 + gain); "
           "0 = off; 0..100, at most egl:nvGainMax", parse=parse_nv_gain,
           lg="the gain curve is ours (docs/filters.md); no key steps through the gains yet"),
    Option("egl", "nvGainMax", 1, "the highest night vision gain egl:nvGain may take; 1..100",
           parse=parse_nv_gain_max),
    Option("egl", "cbMode", 0, "colour-blind correction: 0 off, 1 protanope, 2 deuteranope, 3 tritanope "
           "(Machado 2009 matrices, daltonised in linear light)", parse=parse_cb_mode,
           lg="our own correction (docs/filters.md); egl:cbSimulate shows the simulation instead"),
    Option("egl", "cbSimulate", False, "with egl:cbMode: show what that viewer sees instead of correcting",
           parse=parse_bool),
    Option("egl", "preset", "", "filter preset to load at start, from $XDG_CONFIG_HOME/kvmfr-client/presets/"
           "NAME.json; it replaces the eglFilter options", lg="presets are JSON files (docs/filters.md)"),
    Option("eglFilter", "order", "", "order of the filters, names separated by commas: downscale, ffxFSR, "
           "ffxCAS, glsl, nightvision, colorblind; those left out run after, in that order",
           parse=parse_filter_order, lg="names separated by commas (docs/filters.md)"),
    Option("eglFilter", "downscale", False, "downscaler (Lanczos-3 unless eglFilter:downscaleFilter says): down to "
           "the picture's size when it is shown smaller than the frame, or by eglFilter:downscalePixelSize",
           parse=parse_bool,
           lg="Lanczos-3 by default; down to the picture's size unless eglFilter:downscalePixelSize is set"),
    Option("eglFilter", "ffxFSR", False, "edge-adaptive upscaler (in the spirit of AMD FSR 1 EASU, our own) "
           "followed by contrast-adaptive sharpening, when the picture is shown larger than the frame",
           parse=parse_bool, lg="our own EASU-like upscaler and CAS-like sharpener, not AMD's shaders"),
    Option("eglFilter", "ffxFSRSharpness", 1.0, "sharpening after the upscaler, 0..1", parse=parse_sharpness),
    Option("eglFilter", "ffxCAS", False, "contrast-adaptive sharpening", parse=parse_bool,
           lg="our own CAS-like sharpener (docs/filters.md), not AMD's shader"),
    Option("eglFilter", "ffxCASSharpness", 0.0, "contrast-adaptive sharpening strength, 0..1",
           parse=parse_sharpness),
    Option("eglFilter", "glslPath", "", "a user GLSL shader file in mpv's hook syntax (//!HOOK MAIN ...), run "
           "in the filter chain; one that does not parse or compile is reported in one line and left out",
           lg="Looking Glass master's option (B7 has none); the common subset of mpv's syntax (docs/filters.md)"),

    # spice: the SPICE connection
    Option("spice", "enable", True, "connect to the VM's SPICE server for keyboard, mouse and clipboard",
           parse=parse_bool),
    Option("spice", "host", "127.0.0.1", "SPICE server host, or the UNIX socket path when spice:port is 0"),
    Option("spice", "port", 5900, "SPICE server port (0: spice:host is a UNIX socket path)", parse=parse_port),
    Option("spice", "passwordFile", "", "file holding the SPICE password (QEMU password-secret); empty: "
           "$KVMFR_SPICE_PASSWORD, else none"),
    Option("spice", "input", True, "send keyboard and mouse input to the VM over SPICE", parse=parse_bool),
    Option("spice", "mouseMode", "server",
           "SPICE mouse mode: server (relative, as Looking Glass does) or client (absolute, needs a"
           " usb-tablet or the agent)", choices=("server", "client")),
    Option("spice", "captureOnStart", False, "enter capture mode as soon as the window opens", parse=parse_bool),
    Option("spice", "clipboard", True, "share the clipboard with the VM through the SPICE agent",
           parse=parse_bool),
    Option("spice", "clipboardToVM", True, "send the local clipboard to the VM", parse=parse_bool),
    Option("spice", "clipboardToLocal", True, "take the VM's clipboard into the local one", parse=parse_bool),

    # input: keyboard and mouse
    Option("input", "escapeKey", 70,
           "key that toggles capture and starts the escape-key combos (evdev code or name; 70 = ScrollLock)",
           parse=parse_key),
    Option("input", "grabKeyboard", True, "grab the keyboard while capturing (WM shortcuts go to the VM)",
           parse=parse_bool),
    Option("input", "captureOnFocus", False, "enter capture mode when the window gains focus", parse=parse_bool),
    Option("input", "captureOnly", False, "send keys and mouse to the VM only while capturing", parse=parse_bool),
    Option("input", "releaseKeysOnFocusLoss", True, "release every pressed key when the window loses focus",
           parse=parse_bool),
    Option("input", "ignoreWindowsKeys", False, "do not send the Windows (Super) keys", parse=parse_bool),
    Option("input", "rawMouse", True, "use raw (unaccelerated) relative motion while capturing, when available",
           parse=parse_bool, lg="default yes (raw motion where the platform offers it)"),
    Option("input", "helpMenuDelay", 200, "show the list of escape-key bindings after the escape key is held this "
           "long (milliseconds)", parse=parse_help_delay_ms),
    Option("input", "mouseSens", 0, "mouse sensitivity while capturing, -9..9", parse=parse_sens),
    Option("input", "hideCursor", True, "hide the local cursor over the window", parse=parse_bool),
    Option("spice", "showCursorDot", True, "with input:hideCursor, show the local pointer as a small dot while it "
           "does not drive the guest's cursor (another window has the focus, or SPICE input is off)",
           parse=parse_bool),
    Option("spice", "largeCursorDot", False, "make spice:showCursorDot's dot larger",
           parse=parse_bool),
    Option("input", "absoluteOutsideCapture", True,
           "outside capture, position the guest pointer absolutely when the VM offers client mouse mode",
           parse=parse_bool),

    # audio: guest sound (Scream and/or the SPICE playback channel)
    Option("audio", "scream", "",
           "Scream source: udp://GROUP_OR_HOST:PORT (e.g. udp://239.255.77.77:4010) or ivshmem:PATH "
           "(e.g. ivshmem:/dev/shm/scream-ivshmem); empty = off"),
    Option("audio", "interface", "", "network interface (name or IPv4 address) to join the Scream multicast "
           "group on; empty: the default route's"),
    Option("audio", "spice", False, "play the guest's SPICE playback channel (spice:host/spice:port)",
           parse=parse_bool),
    Option("audio", "sink", "", "PulseAudio/PipeWire sink name to play on; empty = the default sink"),
    Option("audio", "latency", 19, "target latency in ms from packet arrival to the sink (the sink device's own "
           "buffer comes on top); 1..1000", parse=parse_latency_ms),
    Option("audio", "deviceLatency", 5.0,
           "latency in ms to ask of the sink device (its period, e.g. PipeWire's quantum); audio in the device no "
           "longer protects against a late packet, so it is kept small; 0.1..1000", parse=parse_device_latency_ms),
    Option("audio", "realtime", False,
           "run the audio threads real-time (round-robin, priority 3: below the sound server's own) instead of "
           "at nice -11, where permitted", parse=parse_bool),
    Option("audio", "maxLatency", 100, "latency (ms) above which the excess is skipped at once to catch up; "
           "1..10000", parse=parse_max_latency_ms),
    Option("audio", "server", "", "PulseAudio server to connect to (as PULSE_SERVER); empty = the usual one"),

    # audio: the microphone for the guest (SPICE record channel; kvmfr_client/audio/mic.py)
    Option("audio", "micDefault", "prompt", "what to do when the guest opens its microphone: prompt (ask; "
           "ScrollLock+E allows), allow or deny; ScrollLock+E toggles it at any time",
           choices=MIC_POLICIES),
    Option("audio", "micShowIndicator", True, "say in the window while the microphone records", parse=parse_bool),
    Option("audio", "micSource", "", "PulseAudio/PipeWire source the microphone records from; empty = the "
           "default source", lg="our own option (Looking Glass records from the default source)"),
)

# -- several displays in one viewer process (kvmfr_client/viewer/multi.py) ----------------------------------



def parse_displays(text: str) -> tuple[str, ...]:
    """``app:displays``: shared-memory files separated by commas, each as ``app:shmFile`` takes it; empty: None."""
    if not text.strip():
        return None
    paths = tuple(parse_shm(part) for part in text.split(","))
    if len(paths) > MAX_DISPLAYS:
        raise ValueError(f"at most {MAX_DISPLAYS} displays, got {len(paths)}")
    if len(set(paths)) != len(paths):
        raise ValueError(f"a file is named twice in {text.strip()!r}: each display needs its own")
    return paths


register(
    Option("app", "displays", None, "several displays in one viewer: their shared-memory files separated by commas "
           f"(at most {MAX_DISPLAYS}), one window each; input goes to the focused window's display; empty: the "
           "one display of app:shmFile", parse=parse_displays, show=lambda v: ",".join(v) if v else '""'),
    Option("win", "closeAll", False, "with several displays (app:displays), closing one window closes them all; "
           "no: the others stay open", parse=parse_bool),
)


# Other spellings: Looking Glass B7 names for options we spell differently, and our own old names.
register_alias(
    Alias("opengl:vsync", "egl:vsync"),
    Alias("win:vsync", "egl:vsync"),   # kvmfr-view's name before the Looking Glass one
    Alias("app:framePollInterval", "app:pollUs",
          lg="one interval for the frame and the cursor queues; default 250 µs here"),
    Alias("egl:scale", "win:filter", translate=egl_scale_to_filter,
          lg="1 = nearest, 2 = linear as in Looking Glass; 0 (auto) = linear"),
    Alias("pipewire:outDevice", "audio:sink", lg="the PipeWire node (or PulseAudio sink) name to play on"),
    Alias("spice:audio", "audio:spice",
          lg="default no here: SPICE audio plays only when asked (`audio:spice`)"),
)


# -- issue 14: the overlay UI's font, the downscaler's kernel and the cursor's scaling (Looking Glass names) --

UI_FONT_PX = 18   # the overlay UI's font size when win:uiSize is not set
DOWNSCALE_LANCZOS = 2   # eglFilter:downscaleFilter: 0 nearest, 1 linear, 2 Lanczos-3
DOWNSCALE_PIXEL_MAX = 256.0   # eglFilter:downscalePixelSize's (and a preset's pixel_size) upper bound
DOWNSCALE_OFFSET_MAX = 2.0    # eglFilter:downscaleHOffset/VOffset (and a preset's hoffset/voffset): +-this

register(
    Option("win", "uiFont", "", "font of the overlay UI: a TrueType file, or a family name fontconfig knows "
           "(fc-match); empty: DejaVu Sans", lg="a family name (fontconfig) or a .ttf file; default DejaVu Sans "
           "(proportional), not DejaVu Sans Mono"),
    Option("win", "uiSize", UI_FONT_PX, "font size of the overlay UI in pixels, 8..72",
           parse=number(int, 8, 72, "pixels"), lg=f"pixels; default {UI_FONT_PX}"),
    Option("eglFilter", "downscaleFilter", DOWNSCALE_LANCZOS, "the downscaler's kernel (eglFilter:downscale): "
           "0 nearest, 1 linear, 2 Lanczos-3", parse=number(int, 0, 2, also=" (0 nearest, 1 linear, 2 Lanczos-3)"),
           lg=f"default {DOWNSCALE_LANCZOS} (Lanczos-3) here; 0 nearest and 1 linear as in Looking Glass"),
    Option("eglFilter", "downscalePixelSize", 0.0, "the downscaler's pixel size: each N x N block of frame "
           f"pixels becomes one (N above 1, up to {DOWNSCALE_PIXEL_MAX:g}; fractions allowed), for a guest that "
           "renders at N times its screen, whatever the window's size; 1 or less: off; 0: down to the picture's "
           "size in the window", parse=number(float, 0, DOWNSCALE_PIXEL_MAX, "frame pixels"),
           lg="default 0 here (down to the picture's size); Looking Glass's default is 2; 1 or less is off in both"),
    Option("eglFilter", "downscaleHOffset", 0.0, "moves the downscaler's sampling grid right by this fraction of "
           f"one output pixel, -{DOWNSCALE_OFFSET_MAX:g}..{DOWNSCALE_OFFSET_MAX:g} (with nearest: which pixel of "
           "each block is kept)", parse=number(float, -DOWNSCALE_OFFSET_MAX, DOWNSCALE_OFFSET_MAX),
           lg="in output pixels, Looking Glass's range; applied with every kernel here (Looking Glass: nearest only)"),
    Option("eglFilter", "downscaleVOffset", 0.0, "moves the downscaler's sampling grid down by this fraction of "
           f"one output pixel, -{DOWNSCALE_OFFSET_MAX:g}..{DOWNSCALE_OFFSET_MAX:g}",
           parse=number(float, -DOWNSCALE_OFFSET_MAX, DOWNSCALE_OFFSET_MAX),
           lg="in output pixels, Looking Glass's range; applied with every kernel here (Looking Glass: nearest only)"),
    Option("egl", "scalePointer", True, "keep the guest cursor at its own size (1:1) when the picture is shown "
           "smaller than the guest's screen; no: the cursor shrinks with the picture", parse=parse_bool),
)

# -- the window's display server (docs/desktop.md) --------------------------------------------------------
WIN_BACKENDS = ("auto", "x11", "wayland")   # kvmfr_client.viewer.wayland.select_backend takes these
register(
    Option("win", "backend", "auto", "display server for the window: auto (Wayland when WAYLAND_DISPLAY is "
           "set, as Looking Glass chooses, else X11), x11 or wayland", choices=WIN_BACKENDS,
           lg="Looking Glass has no option: it chooses as auto does"),
)

# ---- the frame upload path (issue 15; kvmfr_client/viewer/upload.py) -------------------------------------
UPLOAD_MODES = ("auto", "pbo", "direct")
register(
    Option("egl", "upload", "auto",
           "how frames reach the texture: pbo (the copy out of shared memory writes a mapped pixel buffer, "
           "persistent with fences where GL 4.4 / ARB_buffer_storage allows), direct (our own buffer, "
           "glTexSubImage2D from it) or auto (direct on CPU renderers such as llvmpipe, where it measures "
           "faster, pbo elsewhere)", choices=UPLOAD_MODES),
)
