"""Wayland: choosing the window's back end, checking the compositor before glfw meets it, and the protocols
glfw gives no API for (keyboard-shortcut inhibit, idle inhibit of a window, xdg-activation), through pywayland.

The back end is chosen like Looking Glass: Wayland when ``WAYLAND_DISPLAY`` is set, else X11;
``win:backend`` forces one. The glfw Python package loads its Wayland or its X11 build by
``PYGLFW_LIBRARY_VARIANT`` when it is first imported, so :func:`select_backend` runs before anything
imports glfw (``viewer.app.run`` calls it first).

GLFW 3.4 dies with SIGSEGV in ``glfwInit`` on a compositor that offers no ``wl_seat`` (weston's headless
back end): :func:`probe` connects first, on its own connection, and says so in one line.

The extra protocols are bound on glfw's own ``wl_display`` (objects that name glfw's surface must live on
the connection that made it), only when pywayland uses the same libwayland-client as glfw
(:func:`libwayland_copies`). Every call here runs on the window thread, between glfw calls, like glfw's
own dispatching. Each is a no-op returning False when the compositor does not offer the protocol (weston 10
offers none of the three; see docs/desktop.md). GLFW 3.4 itself already uses xdg-activation (focusing a
window), idle inhibit (full screen only) and wp_fractional_scale_v1 + wp_viewporter where offered.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from kvmfr_client.config.options import WIN_BACKENDS

log = logging.getLogger(__name__)


SHORTCUTS_INHIBIT = "zwp_keyboard_shortcuts_inhibit_manager_v1"
IDLE_INHIBIT = "zwp_idle_inhibit_manager_v1"
ACTIVATION = "xdg_activation_v1"
# What glfw itself uses for capture mode; listed so the log says whether pointer lock can work.
POINTER_LOCK = ("zwp_pointer_constraints_v1", "zwp_relative_pointer_manager_v1")


class BackendError(RuntimeError):
    """The window's display server cannot be used; the message is the one line the user sees."""


@dataclass
class Compositor:
    """What a Wayland compositor offers: its globals' interface names and versions."""
    name: str
    globals: dict[str, int] = field(default_factory=dict)

    @property
    def has_seat(self) -> bool:
        return "wl_seat" in self.globals


def probe(name: str) -> Compositor:
    """Connect to the compositor ``name`` (a WAYLAND_DISPLAY value) on a connection of our own, read its
    globals and disconnect. Raises :class:`BackendError` when it cannot be reached."""
    try:
        from pywayland.client import Display
    except ImportError as exc:   # a broken install: say what is missing rather than crash in glfw
        raise BackendError(f"cannot check the Wayland compositor: pywayland is not installed ({exc}); "
                           "reinstall kvmfr-client or set win:backend=x11") from None
    display = Display(name)
    try:
        display.connect()
    except ValueError:
        runtime = os.environ.get("XDG_RUNTIME_DIR") or "(XDG_RUNTIME_DIR not set)"
        raise BackendError(f"cannot connect to the Wayland compositor {name!r} in {runtime}: check "
                           "WAYLAND_DISPLAY and XDG_RUNTIME_DIR, or set win:backend=x11") from None
    found = Compositor(name)
    try:
        registry = display.get_registry()
        registry.dispatcher["global"] = lambda _reg, _id, iface, version: found.globals.__setitem__(iface, version)
        if display.roundtrip() < 0:
            raise BackendError(f"the Wayland compositor {name!r} closed the connection while listing what it "
                               "offers")
    finally:
        display.disconnect()
    return found


def select_backend(wanted: str, env=None) -> str:
    """Choose "x11" or "wayland" for ``win:backend`` = ``wanted`` and make glfw load that build.

    Must run before glfw is imported. Raises :class:`BackendError` with the line to show when the
    forced back end, or the only one there is, cannot work.
    """
    env = os.environ if env is None else env
    if wanted not in WIN_BACKENDS:
        raise BackendError(f"win:backend: {wanted!r} is not one of {', '.join(WIN_BACKENDS)}")
    wayland_display = env.get("WAYLAND_DISPLAY", "")
    chosen = wanted
    if wanted == "wayland" and not wayland_display:
        raise BackendError("win:backend=wayland, but WAYLAND_DISPLAY is not set: run inside a Wayland session")
    if wanted == "auto":
        chosen = "wayland" if wayland_display else "x11"
    if chosen == "wayland":
        try:
            comp = probe(wayland_display)
            if not comp.has_seat:
                raise BackendError(f"the Wayland compositor {wayland_display!r} offers no seat (no keyboard or "
                                   "pointer), which glfw cannot run without: use a desktop session's "
                                   "compositor, or set win:backend=x11 with DISPLAY")
        except BackendError as exc:
            if wanted == "wayland" or not env.get("DISPLAY"):
                raise
            log.warning("%s; using X11 (DISPLAY=%s) instead", exc, env.get("DISPLAY"))
            chosen = "x11"
        else:
            global _COMPOSITOR
            _COMPOSITOR = comp
            wanted = (*POINTER_LOCK, SHORTCUTS_INHIBIT, IDLE_INHIBIT, ACTIVATION)
            missing = [g for g in wanted if g not in comp.globals]
            log.info("Wayland compositor %s; not offered: %s", wayland_display, ", ".join(missing) or "nothing")
    _load_glfw_variant(chosen, env)
    return chosen


def _load_glfw_variant(chosen: str, env) -> None:
    if env.get("PYGLFW_LIBRARY"):   # the user points at their own libglfw: it decides
        log.info("PYGLFW_LIBRARY=%s: glfw's platform is chosen by that library", env["PYGLFW_LIBRARY"])
        return
    loaded = sys.modules.get("glfw")
    if loaded is not None:
        path = getattr(getattr(loaded, "_glfw", None), "_name", "") or ""
        if f"/{chosen}/" not in path:
            # a programming error (something imported glfw first), not a user's: say it plainly
            raise BackendError(f"glfw was loaded before the window's back end was chosen ({path or 'unknown'}); "
                               f"cannot switch to {chosen}")
        return
    env["PYGLFW_LIBRARY_VARIANT"] = chosen
    if env is not os.environ:
        os.environ["PYGLFW_LIBRARY_VARIANT"] = chosen
    if chosen == "wayland":
        _preload_imgui_glfw()


def _preload_imgui_glfw() -> None:
    """imgui_bundle's native module (the overlay UI) asks for ``libglfw.so.3`` and calls X11 entry points
    in it; glfw's Wayland build has that soname too but no X11 entry points, and once loaded it would
    answer imgui_bundle's request (the import then fails: "undefined symbol: glfwGetX11Window"). Loading
    imgui_bundle's own libglfw first gives it the soname; glfw's Wayland build is still loaded by path and
    is the one the window uses (imgui_bundle's copy is never initialised: the overlay only draws)."""
    import ctypes
    import importlib.util
    spec = importlib.util.find_spec("imgui_bundle")
    if spec is None or spec.origin is None:
        return
    path = os.path.join(os.path.dirname(spec.origin), "libglfw.so.3")
    if os.path.exists(path):
        try:
            ctypes.CDLL(path)
        except OSError as exc:
            log.debug("could not preload %s: %s", path, exc)


# ---- protocols on glfw's connection ---------------------------------------------------------------------

class _Foreign:
    """A wl_proxy made by glfw, passed as a request argument (pywayland needs only ``_ptr``); never
    wrapped as a pywayland proxy, which would take it over and destroy it."""

    def __init__(self, ptr):
        self._ptr = ptr


class WindowProtocols:
    """The protocols bound for one glfw window (:func:`attach`). Attributes are None when not offered."""

    def __init__(self, handle):
        import glfw
        from pywayland import ffi
        from pywayland.client import Display

        self.display = Display()                          # never connect()ed: it borrows glfw's connection
        self.display._ptr = ffi.cast("struct wl_display *", glfw.get_wayland_display())
        self.surface = _Foreign(ffi.cast("struct wl_proxy *", glfw.get_wayland_window(handle)))
        self.globals: dict[str, int] = {}
        self.shortcuts = self.idle = self.activation = self.seat = None
        self._shortcut_inhibitor = self._idle_inhibitor = None
        self.shortcuts_active = False
        self.registry = self.display.get_registry()
        self.registry.dispatcher["global"] = self._global
        self.display.roundtrip()

    def _global(self, registry, name: int, iface: str, version: int) -> None:
        self.globals[iface] = version
        try:
            if iface == "wl_seat" and self.seat is None:
                from pywayland.protocol.wayland import WlSeat
                self.seat = registry.bind(name, WlSeat, 1)
            elif iface == SHORTCUTS_INHIBIT:
                from pywayland.protocol.keyboard_shortcuts_inhibit_unstable_v1 import \
                    ZwpKeyboardShortcutsInhibitManagerV1
                self.shortcuts = registry.bind(name, ZwpKeyboardShortcutsInhibitManagerV1, 1)
            elif iface == IDLE_INHIBIT:
                from pywayland.protocol.idle_inhibit_unstable_v1 import ZwpIdleInhibitManagerV1
                self.idle = registry.bind(name, ZwpIdleInhibitManagerV1, 1)
            elif iface == ACTIVATION:
                from pywayland.protocol.xdg_activation_v1 import XdgActivationV1
                self.activation = registry.bind(name, XdgActivationV1, 1)
        except Exception:   # a binding that does not know the protocol: go on without it
            log.warning("could not bind %s", iface, exc_info=True)

    def inhibit_shortcuts(self, on: bool) -> bool:
        if self.shortcuts is None or self.seat is None:
            return False
        if on and self._shortcut_inhibitor is None:
            inhibitor = self.shortcuts.inhibit_shortcuts(self.surface, self.seat)
            inhibitor.dispatcher["active"] = lambda _i: setattr(self, "shortcuts_active", True)
            inhibitor.dispatcher["inactive"] = lambda _i: setattr(self, "shortcuts_active", False)
            self._shortcut_inhibitor = inhibitor
        elif not on and self._shortcut_inhibitor is not None:
            self._shortcut_inhibitor.destroy()
            self._shortcut_inhibitor = None
            self.shortcuts_active = False
        self.display.flush()
        return True

    def inhibit_idle(self, on: bool) -> bool:
        if self.idle is None:
            return False
        if on and self._idle_inhibitor is None:
            self._idle_inhibitor = self.idle.create_inhibitor(self.surface)
        elif not on and self._idle_inhibitor is not None:
            self._idle_inhibitor.destroy()
            self._idle_inhibitor = None
        self.display.flush()
        return True

    def request_activation(self) -> bool:
        if self.activation is None:
            return False
        token = os.environ.pop("XDG_ACTIVATION_TOKEN", None)   # one a launcher gave us is used once
        if token is None:
            got: list[str] = []
            request = self.activation.get_activation_token()
            request.dispatcher["done"] = lambda _r, value: got.append(value)
            request.set_surface(self.surface)
            request.commit()
            self.display.roundtrip()
            request.destroy()
            if not got:
                log.info("the compositor gave no activation token")
                return False
            token = got[0]
        self.activation.activate(token, self.surface)
        self.display.flush()
        return True

    def close(self) -> None:
        """Destroy what was made here, before glfw destroys the window and its connection."""
        self.inhibit_shortcuts(False)
        self.inhibit_idle(False)
        for proxy in (self.shortcuts, self.idle, self.activation):
            if proxy is not None:
                proxy.destroy()
        if self.seat is not None:
            self.seat.destroy()     # bound at version 1, which has no release request: client side only
        self.registry.destroy()
        self.display.flush()
        self.display._ptr = None     # not ours to disconnect
        self.shortcuts = self.idle = self.activation = self.seat = None


_WINDOWS: dict[int, WindowProtocols] = {}
_COMPOSITOR: Compositor | None = None    # what select_backend found (its own connection)


def _key(window) -> int | None:
    import ctypes
    handle = getattr(window, "handle", window)     # our Window, or a glfw window handle
    if not handle:
        return None
    return ctypes.cast(handle, ctypes.c_void_p).value


def libwayland_copies() -> list[str]:
    """The libwayland-client files loaded in this process (after pywayland is imported).

    pywayland's manylinux wheel carries its own copy; glfw and Mesa's EGL load the system's. Two copies
    must never touch one connection (each keeps its own idea of the wl_display: a request marshalled by
    one on the other's display crashed here), so the protocols are bound on glfw's connection only when
    pywayland uses the system library (``pip install --no-binary pywayland pywayland``, docs/desktop.md).
    """
    import importlib
    importlib.import_module("pywayland")    # loads its libwayland-client
    found = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                if "libwayland-client" in path:
                    found.add(os.path.realpath(path))
    except OSError:
        return []
    return sorted(found)


def attach(window) -> WindowProtocols | None:
    """Bind the protocols for ``window`` (our Window or a glfw handle) when glfw runs on Wayland; None
    when not on Wayland or when pywayland cannot share glfw's connection (:func:`libwayland_copies`)."""
    import glfw
    if glfw.get_platform() != glfw.PLATFORM_WAYLAND:
        return None
    copies = libwayland_copies()
    if len(copies) != 1:
        log.info("keyboard-shortcut inhibit, idle inhibit and xdg-activation are not used: pywayland carries "
                 "its own libwayland-client (%s), which must not share glfw's connection; install pywayland "
                 "built against the system library to use them", ", ".join(copies) or "none found")
        return None
    key = _key(window)
    if key not in _WINDOWS:
        _WINDOWS[key] = WindowProtocols(getattr(window, "handle", window))
        log.debug("Wayland globals: %s", ", ".join(sorted(_WINDOWS[key].globals)))
    return _WINDOWS[key]


def detach(window) -> None:
    """Release what :func:`attach` made for ``window``; call before the window is destroyed."""
    protocols = _WINDOWS.pop(_key(window), None)
    if protocols is not None:
        protocols.close()


def _protocols(window) -> WindowProtocols | None:
    return _WINDOWS.get(_key(window))


def inhibit_shortcuts(window, on: bool) -> bool:
    """Ask the compositor to send every key, its own shortcuts included, to ``window`` (capture mode).
    False when not on Wayland or the compositor does not offer keyboard-shortcut inhibit."""
    protocols = _protocols(window)
    return protocols is not None and protocols.inhibit_shortcuts(on)


def inhibit_idle(window, on: bool) -> bool:
    """Keep the screen from blanking while ``window`` is visible (on) or let it blank again (off).
    False when not on Wayland or the compositor does not offer idle inhibit (the caller may use the
    desktop's D-Bus interface instead)."""
    protocols = _protocols(window)
    return protocols is not None and protocols.inhibit_idle(on)


def can_inhibit_idle(window) -> bool:
    """True when ``window``'s own connection has bound the compositor's idle-inhibit manager (the compositor
    offering it is not enough: a pywayland that cannot be used binds nothing)."""
    protocols = _protocols(window)
    return protocols is not None and protocols.idle is not None


def request_activation(window) -> bool:
    """Ask the compositor to raise and focus ``window`` (xdg-activation; it may just mark it urgent).
    False when not on Wayland or the compositor does not offer xdg-activation."""
    protocols = _protocols(window)
    if protocols is not None:
        return protocols.request_activation()
    if ACTIVATION not in offered(window):
        return False
    import glfw
    glfw.focus_window(getattr(window, "handle", window))   # GLFW 3.4 asks xdg-activation itself
    return True


def offered(window) -> dict[str, int]:
    """The globals the compositor offers ({} when not on Wayland): those seen on ``window``'s connection,
    else those :func:`select_backend` saw on its own."""
    protocols = _protocols(window)
    if protocols is not None:
        return dict(protocols.globals)
    return dict(_COMPOSITOR.globals) if _COMPOSITOR is not None else {}
