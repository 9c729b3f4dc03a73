"""The Looking Glass B7 client's options, as data: name, short flag, type, default and help.

Written from the option table of Looking Glass B7's ``doc/usage.rst`` and the defaults in its code (see
/work/shared/docs/lg-b7-options.md in the project notes). Every name here is accepted in an INI file or on the
command line: those we implement act through :mod:`kvmfr_client.config.options` (under the same name or an
:class:`~kvmfr_client.config.registry.Alias`); the others are reported in one warning and ignored.
``docs/looking-glass-users.md`` is generated from this table and the registry (``python -m
kvmfr_client.config.lgdoc``).
"""

from __future__ import annotations

from typing import NamedTuple


class LgOption(NamedTuple):
    key: str        # section:name as Looking Glass spells it
    short: str      # its short flag, e.g. "-F", or ""
    type: str       # bool, int, float, string or custom (a string with its own parser)
    default: str    # as Looking Glass shows it
    help: str

    @property
    def is_bool(self) -> bool:
        return self.type == "bool"


B7_OPTIONS: tuple[LgOption, ...] = tuple(LgOption(*row) for row in (
    ('app:allowDMA', '', 'bool', 'yes', 'Allow direct DMA transfers if supported (see `README.md` in the `module` dir)'),
    ('app:configFile', '-C', 'string', '', 'A file to read additional configuration from'),
    ('app:cursorPollInterval', '', 'int', '1000', 'How often to check for a cursor update in microseconds'),
    ('app:framePollInterval', '', 'int', '1000', 'How often to check for a frame update in microseconds'),
    ('app:license', '-l', 'bool', 'no', 'Show the license for this application and then terminate'),
    ('app:renderer', '-g', 'custom', 'EGL', 'Specify the renderer to use'),
    ('app:shmFile', '-f', 'string', '/dev/kvmfr0', 'The path to the shared memory file, or the name of the kvmfr device to use, e.g. kvmfr0'),
    ('audio:bufferLatency', '', 'int', '13', 'Additional buffer latency in milliseconds'),
    ('audio:micDefault', '', 'custom', 'prompt', 'Default action when an application opens the microphone (prompt, allow, deny)'),
    ('audio:micShowIndicator', '', 'bool', 'yes', 'Display microphone usage indicator'),
    ('audio:periodSize', '', 'int', '2048', 'Requested audio device period size in samples'),
    ('audio:syncVolume', '', 'bool', 'yes', 'Synchronize the volume level with the guest'),
    ('egl:cbMode', '', 'int', '0', 'Color Blind Mode (0 = Off, 1 = Protanope, 2 = Deuteranope, 3 = Tritanope)'),
    ('egl:debug', '', 'bool', 'no', 'Enable debug output'),
    ('egl:doubleBuffer', '', 'bool', 'no', 'Enable double buffering'),
    ('egl:mapHDRtoSDR', '', 'bool', 'yes', 'Map HDR content to the SDR color space'),
    ('egl:maxCLL', '', 'int', '10000', 'Maximum content light level in nits for HDR to SDR mapping'),
    ('egl:multisample', '', 'bool', 'yes', 'Enable Multisampling'),
    ('egl:noBufferAge', '', 'bool', 'no', 'Disable partial rendering based on buffer age'),
    ('egl:noSwapDamage', '', 'bool', 'no', 'Disable swapping with damage'),
    ('egl:nvGain', '', 'int', '0', 'The initial night vision gain at startup'),
    ('egl:nvGainMax', '', 'int', '1', 'The maximum night vision gain'),
    ('egl:peakLuminance', '', 'int', '250', 'The peak luminance level in nits for HDR to SDR mapping'),
    ('egl:preset', '', 'string', '', 'The initial filter preset to load'),
    ('egl:scale', '', 'int', '0', 'Set the scale algorithm (0 = auto, 1 = nearest, 2 = linear)'),
    ('egl:scalePointer', '', 'bool', 'yes', 'Keep the pointer size 1:1 when downscaling'),
    ('egl:vsync', '', 'bool', 'no', 'Enable vsync'),
    ('eglFilter:downscale', '', 'bool', 'no', 'Enable downscaling'),
    ('eglFilter:downscaleFilter', '', 'int', '0', 'Downscale filter type'),
    ('eglFilter:downscaleHOffset', '', 'float', '0.0', 'Downscale filter horizontal offset'),
    ('eglFilter:downscalePixelSize', '', 'float', '2.0', 'Downscale filter pixel size'),
    ('eglFilter:downscaleVOffset', '', 'float', '0.0', 'Downscale filter vertical offset'),
    ('eglFilter:ffxCAS', '', 'bool', 'no', 'AMD FidelityFX CAS'),
    ('eglFilter:ffxCASSharpness', '', 'float', '0.0', 'AMD FidelityFX CAS Sharpness'),
    ('eglFilter:ffxFSR', '', 'bool', 'no', 'AMD FidelityFX FSR'),
    ('eglFilter:ffxFSRSharpness', '', 'float', '1.0', 'AMD FidelityFX FSR Sharpness'),
    ('eglFilter:order', '', 'string', '', 'The order of filters to use'),
    ('i3:globalFullScreen', '', 'bool', 'no', "Use i3's global full screen feature (spans all monitors)"),
    ('input:autoCapture', '', 'bool', 'no', 'Try to keep the mouse captured when needed'),
    ('input:captureOnFocus', '', 'bool', 'no', 'Enable capture mode when the window becomes focused'),
    ('input:captureOnly', '', 'bool', 'no', 'Only enable input via SPICE if in capture mode'),
    ('input:escapeKey', '-m', 'int', 'KEY_SCROLLLOCK', 'Specify the escape/menu key to use (use "help" to see valid values)'),
    ('input:grabKeyboard', '-G', 'bool', 'yes', 'Grab the keyboard in capture mode'),
    ('input:grabKeyboardOnFocus', '', 'bool', 'no', 'Grab the keyboard when focused'),
    ('input:helpMenuDelay', '', 'int', '200', 'Show help menu after holding down the escape key for this many milliseconds'),
    ('input:hideCursor', '-M', 'bool', 'yes', 'Hide the local mouse cursor'),
    ('input:ignoreWindowsKeys', '', 'bool', 'no', 'Do not pass events for the windows keys to the guest'),
    ('input:mouseRedraw', '', 'bool', 'yes', 'Mouse movements trigger redraws (ignores FPS minimum)'),
    ('input:mouseSens', '', 'int', '0', 'Initial mouse sensitivity when in capture mode (-9 to 9)'),
    ('input:mouseSmoothing', '', 'bool', 'yes', 'Apply simple mouse smoothing when rawMouse is not in use (helps reduce aliasing)'),
    ('input:rawMouse', '', 'bool', 'no', 'Use RAW mouse input when in capture mode (good for gaming)'),
    ('input:releaseKeysOnFocusLoss', '', 'bool', 'yes', 'On focus loss, send key up events to guest for all held keys'),
    ('opengl:amdPinnedMem', '', 'bool', 'yes', 'Use GL_AMD_pinned_memory if it is available'),
    ('opengl:mipmap', '', 'bool', 'yes', 'Enable mipmapping'),
    ('opengl:preventBuffer', '', 'bool', 'yes', 'Prevent the driver from buffering frames'),
    ('opengl:vsync', '', 'bool', 'no', 'Enable vsync'),
    ('pipewire:outDevice', '', 'string', '', 'The default playback device to use'),
    ('pipewire:recDevice', '', 'string', '', 'The default record device to use'),
    ('spice:alwaysShowCursor', '', 'bool', 'no', 'Always show host cursor'),
    ('spice:audio', '', 'bool', 'yes', 'Enable SPICE audio support'),
    ('spice:captureOnStart', '', 'bool', 'no', 'Capture mouse and keyboard on start'),
    ('spice:clipboard', '', 'bool', 'yes', 'Use SPICE to synchronize the clipboard contents with the guest'),
    ('spice:clipboardToLocal', '', 'bool', 'yes', 'Allow the clipboard to be synchronized FROM the VM'),
    ('spice:clipboardToVM', '', 'bool', 'yes', 'Allow the clipboard to be synchronized TO the VM'),
    ('spice:enable', '-s', 'bool', 'yes', 'Enable the built in SPICE client for input and/or clipboard support'),
    ('spice:host', '-c', 'string', '127.0.0.1', 'The SPICE server host or UNIX socket'),
    ('spice:input', '', 'bool', 'yes', 'Use SPICE to send keyboard and mouse input events to the guest'),
    ('spice:largeCursorDot', '', 'bool', 'no', 'Use a larger version of the "dot" cursor'),
    ('spice:port', '-p', 'int', '5900', 'The SPICE server port (0 = unix socket)'),
    ('spice:scaleCursor', '-j', 'bool', 'yes', 'Scale cursor input position to screen size when up/down scaled'),
    ('spice:showCursorDot', '', 'bool', 'yes', 'Use a "dot" cursor when the window does not have focus'),
    ('wayland:fractionScale', '', 'bool', 'yes', 'Enable fractional scale'),
    ('wayland:warpSupport', '', 'bool', 'yes', 'Enable cursor warping'),
    ('win:alerts', '-q', 'bool', 'yes', 'Show on screen alert messages'),
    ('win:allowResize', '-n', 'bool', 'yes', 'Allow the window to be manually resized'),
    ('win:appId', '', 'string', 'looking-glass-client', 'The application Id'),
    ('win:autoResize', '-a', 'bool', 'no', 'Auto resize the window to the guest'),
    ('win:autoScreensaver', '', 'bool', 'no', 'Prevent the screensaver from starting when guest requests it'),
    ('win:borderless', '-d', 'bool', 'no', 'Borderless mode'),
    ('win:dontUpscale', '', 'bool', 'no', 'Never try to upscale the window'),
    ('win:forceAspect', '', 'bool', 'yes', 'Force the window to maintain the aspect ratio'),
    ('win:fpsMin', '-K', 'int', '-1', 'Frame rate minimum (0 = disable - not recommended, -1 = auto detect)'),
    ('win:fullScreen', '-F', 'bool', 'no', 'Launch in fullscreen borderless mode'),
    ('win:ignoreQuit', '-Q', 'bool', 'no', 'Ignore requests to quit (i.e. Alt+F4)'),
    ('win:intUpscale', '', 'bool', 'no', 'Allow only integer upscaling'),
    ('win:jitRender', '', 'bool', 'no', 'Enable just-in-time rendering'),
    ('win:keepAspect', '-r', 'bool', 'yes', 'Maintain the correct aspect ratio'),
    ('win:maximize', '-T', 'bool', 'no', 'Launch window maximized'),
    ('win:minimizeOnFocusLoss', '', 'bool', 'no', 'Minimize window on focus loss'),
    ('win:noScreensaver', '-S', 'bool', 'no', 'Prevent the screensaver from starting'),
    ('win:overlayDimsDesktop', '', 'bool', 'yes', 'Dim the desktop when in interactive overlay mode'),
    ('win:position', '', 'custom', 'center', 'Initial window position at startup'),
    ('win:quickSplash', '', 'bool', 'no', 'Skip fading out the splash screen when a connection is established'),
    ('win:requestActivation', '', 'bool', 'yes', 'Request activation when attention is needed'),
    ('win:rotate', '', 'int', '0', 'Rotate the displayed image (0, 90, 180, 270)'),
    ('win:showFPS', '-k', 'bool', 'no', 'Enable the FPS & UPS display'),
    ('win:shrinkOnUpscale', '', 'bool', 'no', 'Limit the window dimensions when dontUpscale is enabled'),
    ('win:size', '', 'custom', '1024x768', 'Initial window size at startup'),
    ('win:title', '', 'string', 'Looking Glass (client)', 'The window title'),
    ('win:uiFont', '', 'string', 'DejaVu Sans Mono', 'The font to use when rendering on-screen UI'),
    ('win:uiSize', '', 'int', '14', 'The font size to use when rendering on-screen UI'),
))


BY_LOWER: dict[str, LgOption] = {o.key.lower(): o for o in B7_OPTIONS}


def lookup(name: str) -> LgOption | None:
    """The Looking Glass B7 option named ``name`` in any letter case, or None."""
    return BY_LOWER.get(name.strip().lower())
