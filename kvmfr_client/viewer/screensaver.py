"""Keep the desktop's screensaver (and screen blanking) off while the viewer asks, through the desktop's own
interface:

1. on Wayland, the compositor's idle-inhibit protocol through ``kvmfr_client.viewer.wayland`` when the
   compositor offers it and the binding can be used (its ``inhibit_idle(window, on)``);
2. the session bus's ``org.freedesktop.ScreenSaver`` service (GNOME, KDE, Xfce, and what
   xdg-desktop-portal users run) when a session bus offers it: ``Inhibit(app, reason)`` -> cookie,
   ``UnInhibit(cookie)``, over a connection kept open (services drop an inhibit when its caller leaves);
3. on X11, the X server's own screensaver: ``XScreenSaverSuspend`` (libXss, through ctypes) on glfw's
   display connection, which the server also undoes if the viewer dies.

Which one serves is chosen the first time the viewer inhibits, and said once in the log (``-v``).
``win:noScreensaver`` inhibits for the whole run; ``win:autoScreensaver`` while the guest's frames carry
KVMFR's ``FRAME_FLAG_BLOCK_SCREENSAVER`` (the Windows host sets it while a program there keeps the display
on, e.g. a video player), as Looking Glass does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

from kvmfr_client.viewer.identity import APP_ID

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.ScreenSaver"
PATH = "/org/freedesktop/ScreenSaver"
DBUS_TIMEOUT_S = 2.0


class _DBus:
    name = "D-Bus org.freedesktop.ScreenSaver"

    def __init__(self):
        from jeepney import DBusAddress
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection
        self.conn = open_dbus_connection(bus="SESSION")   # OSError/KeyError/ValueError: no session bus
        try:
            reply = self.conn.send_and_get_reply(message_bus.NameHasOwner(SERVICE), timeout=DBUS_TIMEOUT_S)
        except BaseException:
            self.conn.close()
            raise
        if not reply.body or not reply.body[0]:
            self.conn.close()
            raise LookupError(f"nothing on the session bus serves {SERVICE}")
        self.address = DBusAddress(PATH, bus_name=SERVICE, interface=SERVICE)
        self.cookie: int | None = None

    def _call(self, method: str, signature: str, body: tuple):
        from jeepney import MessageType, new_method_call
        reply = self.conn.send_and_get_reply(new_method_call(self.address, method, signature, body),
                                             timeout=DBUS_TIMEOUT_S)
        if reply.header.message_type == MessageType.error:
            raise RuntimeError(f"{SERVICE}.{method}: {reply.header.fields.get(4, 'error')} {reply.body!r}"[:300])
        return reply.body

    def set(self, on: bool, reason: str) -> None:
        if on and self.cookie is None:
            body = self._call("Inhibit", "ss", (APP_ID, reason))
            cookie = body[0] if body and isinstance(body[0], int) else None
            if cookie is None:
                raise RuntimeError(f"{SERVICE}.Inhibit answered no cookie: {body!r}"[:200])
            self.cookie = cookie
        elif not on and self.cookie is not None:
            cookie, self.cookie = self.cookie, None
            self._call("UnInhibit", "u", (cookie,))

    def close(self) -> None:
        try:
            self.set(False, "")
        finally:
            self.conn.close()


class _XScreenSaver:
    name = "X11 XScreenSaverSuspend"

    def __init__(self):
        import glfw
        path = ctypes.util.find_library("Xss") or "libXss.so.1"
        self.xss = ctypes.CDLL(path)            # OSError: libXss1 is not installed
        self.x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        self.display = glfw.get_x11_display()
        if not self.display:
            raise LookupError("glfw has no X display")
        self.suspend = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int)(("XScreenSaverSuspend", self.xss))
        self.flush = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(("XFlush", self.x11))
        self.query = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                      ctypes.POINTER(ctypes.c_int))(("XScreenSaverQueryExtension", self.xss))
        a, b = ctypes.c_int(), ctypes.c_int()
        if not self.query(self.display, ctypes.byref(a), ctypes.byref(b)):
            raise LookupError("the X server has no MIT-SCREEN-SAVER extension")
        self.on = False

    def set(self, on: bool, reason: str) -> None:
        if on != self.on:
            self.suspend(self.display, 1 if on else 0)
            self.flush(self.display)
            self.on = on

    def close(self) -> None:
        self.set(False, "")


class _Wayland:
    name = "Wayland idle-inhibit"

    def __init__(self, window):
        from kvmfr_client.viewer import wayland
        self.module, self.window = wayland, window
        if wayland.IDLE_INHIBIT not in wayland.offered(window):
            raise LookupError(f"the compositor offers no {wayland.IDLE_INHIBIT}")
        if not wayland.can_inhibit_idle(window):
            raise LookupError(f"{wayland.IDLE_INHIBIT} is offered but not bound here (pywayland unusable)")
        self.on = False

    def set(self, on: bool, reason: str) -> None:
        if on != self.on:
            if self.module.inhibit_idle(self.window, on) is False:   # its answer: not offered
                raise RuntimeError("the compositor refused the idle inhibit")
            self.on = on

    def close(self) -> None:
        self.set(False, "")


MIN_CHANGE_INTERVAL_S = 0.5   # a guest flipping its block-screensaver flag every frame costs a D-Bus call at most this often


class Inhibitor:
    """Turns the screensaver inhibit on and off; never raises (a desktop without any way is logged once).

    Changes reach the desktop at most every MIN_CHANGE_INTERVAL_S: one asked for sooner is kept and made by
    :meth:`tick` (the window loop calls it, at least 4 times a second), so the last state asked for always
    wins."""

    def __init__(self, window, platform: str, clock=None):
        import time
        self.window = window          # the viewer's Window (the Wayland module needs it)
        self.platform = platform
        self.backend = None
        self._tried = False
        self.active = False
        self.errors = 0
        self.changes = 0
        self._clock = clock or time.monotonic
        self._changed_at = float("-inf")
        self._pending: tuple[bool, str] | None = None

    def tick(self) -> None:
        """Make a change that :meth:`set` deferred, once its time has come."""
        if self._pending is not None and self._clock() - self._changed_at >= MIN_CHANGE_INTERVAL_S:
            on, reason = self._pending
            self._pending = None
            self._apply(on, reason)

    def _choose(self, on: bool, reason: str):
        """The first backend that can be made and whose first set(on) works (one that fails it is closed
        and the next one tried)."""
        tries = []
        if self.platform == "wayland":
            tries.append((_Wayland.name, lambda: _Wayland(self.window)))
        tries.append((_DBus.name, _DBus))
        if self.platform == "x11":
            tries.append((_XScreenSaver.name, _XScreenSaver))
        why = []
        for name, make in tries:
            try:
                backend = make()
            except Exception as exc:   # each way may be missing: no bus, no service, no library, no module
                why.append(f"{name}: {exc}")
                continue
            try:
                backend.set(on, reason)
            except Exception as exc:
                why.append(f"{name}: {exc}")
                try:
                    backend.close()
                except Exception as close_exc:
                    log.debug("screensaver inhibit: closing %s failed: %s", name, close_exc)
                continue
            log.info("screensaver inhibit through %s", backend.name)
            return backend
        log.warning("cannot keep the screensaver off on this desktop (%s); win:noScreensaver and "
                    "win:autoScreensaver do nothing", "; ".join(why)[:400])
        return None

    def set(self, on: bool, reason: str = "showing a virtual machine") -> None:
        self._pending = None
        if on == self.active:
            return
        if self._clock() - self._changed_at < MIN_CHANGE_INTERVAL_S:
            self._pending = (on, reason)
            return
        self._apply(on, reason)

    def _apply(self, on: bool, reason: str) -> None:
        if on == self.active:
            return
        self._changed_at = self._clock()
        self.changes += 1
        self.active = on
        if not self._tried:
            self._tried = True
            self.backend = self._choose(on, reason)   # its first set(on) already made
            if self.backend is not None:
                log.debug("screensaver %s (%s)", "inhibited" if on else "allowed", self.backend.name)
            return
        if self.backend is None:
            return
        try:
            self.backend.set(on, reason)
            log.debug("screensaver %s (%s)", "inhibited" if on else "allowed", self.backend.name)
        except Exception as exc:
            self.errors += 1
            log.warning("screensaver inhibit %s failed through %s: %s", "on" if on else "off",
                        self.backend.name, exc)

    @property
    def backend_name(self) -> str | None:
        return self.backend.name if self.backend is not None else None

    def close(self) -> None:
        if self.backend is not None:
            try:
                self.backend.close()
            except Exception as exc:
                log.debug("screensaver inhibit: close failed: %s", exc)
            self.backend = None
