"""The glfw window: creation and modes, and its input events handed to one consumer.

The back end (X11 or Wayland) is chosen before this module is imported
(:func:`kvmfr_client.viewer.wayland.select_backend`: glfw loads its X11 or Wayland build on import). Call
:func:`init_glfw` before importing anything that imports ``OpenGL.GL``: on Wayland the context comes from
EGL and PyOpenGL must be told so before it loads.

Sizes: glfw's window size is in screen coordinates, its framebuffer in device pixels. On X11 they are the
same; on a Wayland output of scale 2 the framebuffer is twice the window (see docs/desktop.md).
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import glfw

from kvmfr_client.input import glfw_keys, grab
from kvmfr_client.input.events import InputEvent

log = logging.getLogger(__name__)


class WindowError(RuntimeError):
    """The window or its GL context could not be made; the message says what to check."""


def init_glfw() -> str:
    """Initialise glfw; returns the platform name ("x11", "wayland", ...)."""
    glfw.ERROR_REPORTING = "log"
    if not glfw.init():
        display = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
        raise WindowError(f"glfw could not initialise (display: {display or 'none set'}); "
                          "run inside an X11 or Wayland session, or use --headless")
    platform = "x11"
    try:
        platform = {glfw.PLATFORM_WAYLAND: "wayland", glfw.PLATFORM_X11: "x11"}.get(glfw.get_platform(), "other")
    except (AttributeError, TypeError):  # glfw < 3.4 (always X11 here)
        pass
    if platform == "wayland":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    elif platform == "x11":
        # PyOpenGL guesses EGL when WAYLAND_DISPLAY is set, but glfw's X11 context is GLX (the X11 back
        # end on a Wayland desktop: win:backend=x11, or no seat there).
        os.environ.setdefault("PYOPENGL_PLATFORM", "glx")
    return platform


def _platform_name() -> str:   # identity block
    try:
        return "wayland" if glfw.get_platform() == glfw.PLATFORM_WAYLAND else "x11"
    except (AttributeError, TypeError):
        return "x11"


class Window:
    def __init__(self, title: str, size: tuple[int, int], position: tuple[int, int] | None = None,
                 borderless: bool = False, fullscreen: bool = False, maximize: bool = False,
                 resizable: bool = True, vsync: bool = False, visible: bool = True,
                 minimize_on_focus_loss: bool = False):
        glfw.default_window_hints()
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        glfw.window_hint(glfw.DECORATED, not borderless)
        glfw.window_hint(glfw.RESIZABLE, resizable)
        glfw.window_hint(glfw.MAXIMIZED, maximize)
        glfw.window_hint(glfw.VISIBLE, visible)
        glfw.window_hint(glfw.ALPHA_BITS, 8)
        glfw.window_hint(glfw.DEPTH_BITS, 0)
        glfw.window_hint(glfw.STENCIL_BITS, 0)
        # -- the desktop identity (kvmfr_client.viewer.identity): WM_CLASS/app-id, icon, iconify on focus loss
        from kvmfr_client.viewer import identity
        identity.window_hints()
        glfw.window_hint(glfw.AUTO_ICONIFY, minimize_on_focus_loss)   # glfw's own default would be yes
        # -- end of the identity block
        self.handle = glfw.create_window(size[0], size[1], title, None, None)
        if not self.handle:
            raise WindowError("could not create an OpenGL 3.3 core window: check that Mesa (libgl1-mesa-dri) "
                              "or the GPU driver is installed and the display allows GLX/EGL")
        identity.set_icon(self.handle, _platform_name())   # identity block: the window icon
        glfw.make_context_current(self.handle)
        glfw.swap_interval(1 if vsync else 0)
        # Wayland windows have no position a client may read or set (glfw reports an error for each).
        self.wayland = hasattr(glfw, "get_platform") and glfw.get_platform() == glfw.PLATFORM_WAYLAND
        if position is not None and not self.wayland:
            glfw.set_window_pos(self.handle, *position)
        self._windowed = (position or self._pos()) + tuple(size)
        if self.wayland:
            from kvmfr_client.viewer import wayland
            try:
                wayland.attach(self)
            except Exception as exc:   # without the extra protocols the window still works
                log.warning("Wayland protocols beyond glfw's are not available: %s", exc)
            grab.set_shortcut_inhibitor(self.handle, self.inhibit_shortcuts)
        self.fullscreen = False
        if fullscreen:
            self.set_fullscreen(True)
        self.on_input: Callable[[InputEvent], None] | None = None
        self.dirty = True            # something changed that needs a redraw
        self.to_guest_fn: Callable[[float, float], tuple[float, float] | None] | None = None
        # The framebuffer size is cached from the resize callback: asking X for it every frame is a
        # round trip (~1-2 ms per frame on a loaded machine).
        self._fb_size = tuple(glfw.get_framebuffer_size(self.handle))
        glfw_keys.install_callbacks(self.handle, self._deliver)
        glfw.set_framebuffer_size_callback(self.handle, self._on_resize)
        # win:autoResize's size in device pixels, kept so that a new output scale (the window reaching its
        # output after the first frame, or moved to another) keeps the picture 1:1
        self._pixel_target: tuple[int, int] | None = None
        glfw.set_window_content_scale_callback(self.handle, self._on_scale)
        glfw.set_window_refresh_callback(self.handle, self._on_refresh)

    # ---- input -------------------------------------------------------------------------------

    def set_input(self, handler: Callable[[InputEvent], None] | None) -> None:
        """Send every input event (keys and buttons as evdev codes) to ``handler``, on this thread."""
        self.on_input = handler

    def _deliver(self, event: InputEvent) -> None:
        if self.on_input is None:
            return
        try:
            self.on_input(event)
        except Exception:  # an input bug must not take the picture down
            log.exception("input handler failed on %r", event)

    def _on_resize(self, _win, w, h) -> None:
        self._fb_size = (w, h)
        self.dirty = True

    def _on_scale(self, _win, _sx, _sy) -> None:
        self.dirty = True
        if self._pixel_target is not None:
            self.resize_pixels(*self._pixel_target)

    def _on_refresh(self, _win) -> None:
        self.dirty = True

    # ---- state -------------------------------------------------------------------------------

    def size(self) -> tuple[int, int]:
        """Framebuffer size in pixels."""
        return self._fb_size

    def window_size(self) -> tuple[int, int]:
        """Window size in screen coordinates (differs from :meth:`size` on HiDPI)."""
        return glfw.get_window_size(self.handle)

    def pixel_ratio(self) -> tuple[float, float]:
        """Device pixels per screen coordinate (framebuffer / window size): 1 on X11, the output's scale
        on Wayland."""
        if self.wayland:
            # GLFW 3.4 makes the framebuffer the window times its content scale (the output's buffer scale,
            # or wp_fractional_scale_v1's where the compositor offers it); asked rather than divided, since
            # the content-scale callback comes before the framebuffer has changed
            return self.content_scale()
        fw, fh = glfw.get_framebuffer_size(self.handle)
        ww, wh = self.window_size()
        return (fw / ww if ww > 0 and fw > 0 else 1.0, fh / wh if wh > 0 and fh > 0 else 1.0)

    def content_scale(self) -> tuple[float, float]:
        """glfw's content scale: the desktop's text scale (X11: Xft.dpi / 96; Wayland: the output scale)."""
        return tuple(glfw.get_window_content_scale(self.handle))

    def inhibit_shortcuts(self, on: bool) -> bool:
        """Wayland: keep the compositor's keyboard shortcuts for this window (capture mode); False when the
        compositor cannot (and on X11, where grab.py grabs the keyboard instead)."""
        if not self.wayland:
            return False
        from kvmfr_client.viewer import wayland
        return wayland.inhibit_shortcuts(self, on)

    def _pos(self) -> tuple[int, int]:
        return (0, 0) if self.wayland else tuple(glfw.get_window_pos(self.handle))

    def to_guest(self, x: float, y: float) -> tuple[float, float] | None:
        return self.to_guest_fn(x, y) if self.to_guest_fn else None

    def set_title(self, title: str) -> None:
        glfw.set_window_title(self.handle, title)

    # ---- the desktop identity block: attention ---------------------------------------------------

    def focused(self) -> bool:
        return bool(glfw.get_window_attrib(self.handle, glfw.FOCUSED))

    def request_attention(self) -> None:
        """Ask the desktop to draw the user's eye to the window (X11: the urgency/demands-attention state;
        Wayland: xdg-activation through kvmfr_client.viewer.wayland when that module is there)."""
        if _platform_name() == "wayland":
            try:
                from kvmfr_client.viewer import wayland
            except ImportError:
                wayland = None
            if wayland is not None and hasattr(wayland, "request_activation") \
                    and wayland.request_activation(self) is not False:   # False: xdg-activation not offered
                return
        glfw.request_window_attention(self.handle)

    # ---- end of the identity block -------------------------------------------------------------

    def set_fullscreen(self, on: bool) -> None:
        if on == self.fullscreen:
            return
        if on:
            x, y = self._pos()
            w, h = glfw.get_window_size(self.handle)
            self._windowed = (x, y, w, h)
            monitor = glfw.get_primary_monitor()
            mode = glfw.get_video_mode(monitor)
            glfw.set_window_monitor(self.handle, monitor, 0, 0, mode.size.width, mode.size.height,
                                    mode.refresh_rate)
        else:
            x, y, w, h = self._windowed
            glfw.set_window_monitor(self.handle, None, x, y, w, h, 0)
        self.fullscreen = on
        self.dirty = True

    def toggle_fullscreen(self) -> None:
        self.set_fullscreen(not self.fullscreen)

    def resize(self, w: int, h: int) -> None:
        """Resize to ``w`` x ``h`` screen coordinates (not in full screen)."""
        if not self.fullscreen:
            glfw.set_window_size(self.handle, w, h)

    def resize_pixels(self, w: int, h: int) -> None:
        """Resize so that the framebuffer is ``w`` x ``h`` device pixels (a frame shown 1:1 at any output
        scale); on a scale that does not divide the size, the nearest window size."""
        self._pixel_target = (w, h)
        rx, ry = self.pixel_ratio()
        self.resize(max(1, round(w / rx)), max(1, round(h / ry)))

    def should_close(self) -> bool:
        return bool(glfw.window_should_close(self.handle))

    def close_soon(self) -> None:
        glfw.set_window_should_close(self.handle, True)

    def swap(self) -> None:
        glfw.swap_buffers(self.handle)

    @staticmethod
    def wait(timeout: float) -> None:
        if timeout <= 0:
            glfw.poll_events()
        else:
            glfw.wait_events_timeout(timeout)

    @staticmethod
    def wake() -> None:
        """Wake :meth:`wait` from another thread (frame/cursor threads call this)."""
        glfw.post_empty_event()

    def destroy(self) -> None:
        if self.handle:
            if self.wayland:
                from kvmfr_client.viewer import wayland
                grab.set_shortcut_inhibitor(self.handle, None)
                wayland.detach(self)
            glfw.destroy_window(self.handle)
            self.handle = None
