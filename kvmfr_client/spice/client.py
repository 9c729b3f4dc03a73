"""A SPICE session: the main and inputs channels, mouse mode, and reconnection with backoff.

:class:`SpiceClient` lives on an asyncio loop; code on that loop sends input on ``client.inputs``
(an :class:`InputsChannel`). :class:`SpiceThread` runs one on its own thread (named "spice") and is the
viewer's :class:`kvmfr_client.input.sink.InputSink`: its input methods may be called from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Callable, Concatenate, ParamSpec

from . import protocol as P
from .errors import SpiceAuthError, SpiceError, SpiceServerGone, SpiceVersionError
from .inputs import InputsChannel
from .keymap import PAUSE
from .link import Address, link
from .main import MainChannel

log = logging.getLogger(__name__)

_Args = ParamSpec("_Args")
StateCallback = Callable[[str, str], None]


class SpiceClient:
    """Connects the channels, keeps them connected, and sends input while connected.

    ``on_state(state, detail)`` is called with state ``connected``, ``lost`` (the server went away),
    ``retrying`` (a connect attempt failed; another follows) or ``failed`` (given up: a refused password
    or another protocol version, which retrying would not fix).

    Keys and buttons held across a lost connection are released on the next one: the client keeps what
    it sent down and not yet up (``held_keys``, ``held_buttons``; a release that could not be sent
    while disconnected keeps its key held), and right after reconnecting sends a release for each. The
    guest behind a dropped connection keeps its input state: spice-server (0.15) releases the keys it
    saw pressed when a client goes, but not the mouse buttons, so without this a button held at the
    moment of the drop stays down in the guest (a drag that never ends) until clicked again; older
    servers released only Shift, Ctrl and Alt. A new QEMU just gets releases it does not need.
    """

    def __init__(self, address: Address, password: str | None = None,
                 mouse_mode: P.MouseMode = P.MouseMode.SERVER, on_state: StateCallback | None = None,
                 backoff: tuple[float, float] = (0.25, 5.0), clipboard: bool = False,
                 clipboard_to_vm: bool = True, clipboard_to_local: bool = True):
        self.address = address
        self.password = password
        self.mouse_mode = mouse_mode
        self.on_state = on_state
        self._last_state: str | None = None
        self.backoff = backoff
        self.main: MainChannel | None = None
        self.inputs: InputsChannel | None = None
        self.agent = None
        self.want_clipboard = clipboard
        self.clipboard_to_vm = clipboard_to_vm
        self.clipboard_to_local = clipboard_to_local
        # Called on the SPICE thread with what the guest copied (see the properties below).
        self._clip_lock = threading.Lock()
        self._on_clipboard_text: Callable[[str], None] | None = None
        self._on_clipboard_image: Callable[[int, bytes], None] | None = None
        self._unclaimed: tuple | None = None   # the guest's latest copy that came while no handler was set
        # Called on the SPICE thread when a file sent with send_files ended (agent.FileTransfer).
        self.on_file_done: Callable[[object], None] | None = None
        self._host_text: str | None = None
        self._host_image: tuple[int, bytes] | None = None
        self.on_mouse_mode: Callable[[int, int], None] | None = None
        self.connections = 0
        self._stop: asyncio.Event | None = None
        # What the guest may think is down: scancodes / buttons sent down and not (successfully) up.
        self.held_keys: dict[int, None] = {}  # (an ordered set: released in the order pressed)
        self.held_buttons: dict[int, None] = {}

    # -- connection ----------------------------------------------------------------------------
    async def connect(self, timeout: float = 5.0) -> None:
        """Link main, wait for its INIT, then link inputs with the session id; raises SpiceError."""
        main_link = await link(self.address, P.ChannelType.MAIN, password=self.password,
                               channel_caps=MainChannel.caps, timeout=timeout)
        main = MainChannel(main_link, self.address, self.mouse_mode)
        main.on_mouse_mode = self._mouse_mode_changed
        if self.want_clipboard:
            from .agent import ClipboardAgent
            self.agent = ClipboardAgent(main, self.clipboard_to_vm, self.clipboard_to_local)
            self.agent.host_text = self._host_text
            self.agent.host_image = self._host_image
            self.agent.on_guest_text = self._guest_text
            self.agent.on_guest_image = self._guest_image
            self.agent.on_file_done = self._file_done
        main.start()
        if self.want_clipboard:   # files on their way end (handles closed, on_file_done) with the channel
            main.reader_task.add_done_callback(lambda _task, agent=self.agent: agent.main_closed())
        try:
            await _wait_or_fail(main.initialized.wait(), main.reader_task, timeout,
                                f"SPICE server at {self.address} sent no MAIN INIT within {timeout} s")
            inputs_link = await link(self.address, P.ChannelType.INPUTS, connection_id=main.init.session_id,
                                     password=self.password, channel_caps=InputsChannel.caps, timeout=timeout)
            inputs = InputsChannel(inputs_link, self.address)
            inputs.start()
            await _wait_or_fail(inputs.initialized.wait(), inputs.reader_task, timeout,
                                f"SPICE server at {self.address} sent no INPUTS INIT within {timeout} s")
        except BaseException:
            await main.close()
            raise
        self.main, self.inputs = main, inputs
        self.connections += 1
        log.info("SPICE connected to %s (session %#x)", self.address, main.init.session_id)
        self._release_held(inputs)

    def _release_held(self, inputs: InputsChannel) -> None:
        """Release what was held when the previous connection went (see the class docstring)."""
        if not self.held_keys and not self.held_buttons:
            return
        log.info("SPICE: releasing %d key(s) and %d button(s) held when the connection was lost",
                 len(self.held_keys), len(self.held_buttons))
        for code in list(self.held_keys):
            inputs.key_up(code)
        for button in list(self.held_buttons):
            inputs.button_release(button)
        self.held_keys.clear()
        self.held_buttons.clear()

    @property
    def connected(self) -> bool:
        return (self.main is not None and self.inputs is not None and not self.main.closed
                and not self.inputs.closed)

    async def close(self, flush: bool = True) -> None:
        """Close both channels; with ``flush`` wait until the server has handled what we sent."""
        if self._stop is not None:
            self._stop.set()
        inputs, main = self.inputs, self.main
        self.inputs = self.main = None
        try:
            if inputs is not None:
                await inputs.close(flush=flush)
        finally:
            if main is not None:
                await main.close(flush=False)

    async def run(self) -> None:
        """Connect and stay connected until :meth:`close`; reconnect with exponential backoff."""
        self._stop = asyncio.Event()
        delay = self.backoff[0]
        while not self._stop.is_set():
            try:
                await self.connect()
            except (SpiceAuthError, SpiceVersionError) as exc:
                self._report("failed", str(exc))
                raise
            except SpiceError as exc:
                self._report("retrying", f"{exc}; retrying in {delay:.2f} s")
            else:
                delay = self.backoff[0]
                self._report("connected", str(self.address))
                reason = await self._wait_lost()
                if self._stop.is_set():
                    break
                self._report("lost", f"{reason}; reconnecting in {delay:.2f} s")
                await self._drop()
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, self.backoff[1])

    async def _wait_lost(self) -> str:
        stop = asyncio.ensure_future(self._stop.wait())
        tasks = [self.main.reader_task, self.inputs.reader_task]
        try:
            done, _ = await asyncio.wait(tasks + [stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        for task in tasks:
            if task in done:
                exc = task.exception() if not task.cancelled() else None
                return str(exc) if exc else f"SPICE server at {self.address} closed a channel"
        return "stopped"

    async def _drop(self) -> None:
        for channel in (self.inputs, self.main):
            if channel is not None:
                await channel.close()
                if channel.reader_task is not None and channel.reader_task.done() \
                        and not channel.reader_task.cancelled():
                    channel.reader_task.exception()  # retrieved: it was reported as "lost"
        self.inputs = self.main = None

    def _report(self, state: str, detail: str) -> None:
        level = logging.INFO if state == "connected" else logging.WARNING
        if state == "retrying" and self._last_state in ("retrying", "lost"):
            level = logging.DEBUG     # said once; the window shows the state from then on
        self._last_state = state
        log.log(level, "SPICE %s: %s", state, detail)
        if self.on_state is not None:
            self.on_state(state, detail)

    def _mouse_mode_changed(self, supported: int, current: int) -> None:
        if self.on_mouse_mode is not None:
            self.on_mouse_mode(supported, current)

    # -- clipboard -----------------------------------------------------------------------------
    def set_clipboard_text(self, text: str) -> None:
        """The host clipboard holds ``text``: offer it to the guest (now, or once its agent is there)."""
        self._host_text, self._host_image = text, None
        if self.agent is not None:
            self.agent.set_host_text(text)

    def set_clipboard_image(self, data: bytes, kind: int = 2) -> None:
        """The host clipboard holds an image (``kind`` 2 = PNG): offer it to the guest."""
        self._host_text, self._host_image = None, (kind, bytes(data))
        if self.agent is not None:
            self.agent.set_host_image(data, kind)

    def send_files(self, paths: list[str]) -> None:
        """Send local files to the guest's agent (it saves them in its download folder); each ends with
        ``on_file_done``. Without a connected agent they are not sent (a warning says so)."""
        if self.agent is None or not self.agent.connected:
            log.warning("SPICE: no guest agent connected; %d file(s) not sent", len(paths))
            return
        self.agent.send_files(paths)

    def _file_done(self, xfer) -> None:
        if self.on_file_done is not None:
            self.on_file_done(xfer)

    # The guest's agent announces its clipboard as soon as it has our capabilities, which may be before the
    # viewer's window (and with it the clipboard handler) exists: the latest such copy is kept and handed to
    # the handler when one is set, so the guest's clipboard at connect time is not lost.
    @property
    def on_clipboard_text(self) -> Callable[[str], None] | None:
        return self._on_clipboard_text

    @on_clipboard_text.setter
    def on_clipboard_text(self, handler: Callable[[str], None] | None) -> None:
        self._set_clipboard_handler("text", handler)

    @property
    def on_clipboard_image(self) -> Callable[[int, bytes], None] | None:
        return self._on_clipboard_image

    @on_clipboard_image.setter
    def on_clipboard_image(self, handler: Callable[[int, bytes], None] | None) -> None:
        self._set_clipboard_handler("image", handler)

    # Handlers are called with the lock held, so a kept copy and a newer one reach a handler in the order the
    # guest made them (handlers only queue the copy for their own thread).
    def _set_clipboard_handler(self, kind: str, handler) -> None:
        with self._clip_lock:
            setattr(self, f"_on_clipboard_{kind}", handler)
            unclaimed = self._unclaimed
            if handler is not None and unclaimed is not None and unclaimed[0] == kind:
                self._unclaimed = None
                handler(*unclaimed[1])

    def _guest_copied(self, kind: str, args: tuple) -> None:
        self._host_text = self._host_image = None
        with self._clip_lock:
            handler = getattr(self, f"_on_clipboard_{kind}")
            self._unclaimed = None if handler is not None else (kind, args)
            if handler is not None:
                handler(*args)

    def _guest_text(self, text: str) -> None:
        self._guest_copied("text", (text,))

    def _guest_image(self, kind: int, data: bytes) -> None:
        self._guest_copied("image", (kind, data))

    # -- mouse mode ----------------------------------------------------------------------------
    def set_mouse_mode(self, mode: P.MouseMode) -> bool:
        """Request server (relative) or client (absolute) mode; False when the server lacks it."""
        self.mouse_mode = mode
        if self.main is None:
            return False
        return self.main.request_mouse_mode(mode)

    @property
    def absolute_available(self) -> bool:
        return self.main is not None and self.main.supports(P.MouseMode.CLIENT)

    @property
    def current_mouse_mode(self) -> int:
        return self.main.mouse_mode if self.main is not None else 0

    # -- input (dropped while disconnected) ----------------------------------------------------
    def send_input(self, method: Callable[Concatenate[InputsChannel, _Args], None], *args: _Args.args) -> None:
        """Call ``method`` (an :class:`InputsChannel` method, e.g. ``InputsChannel.key_down``) on the
        inputs channel with ``args``; dropped while disconnected."""
        inputs = self.inputs
        if inputs is None or inputs.closed:
            log.debug("SPICE not connected: dropping %s%r", method.__name__, args)
            return
        try:
            method(inputs, *args)
        except SpiceServerGone as exc:
            log.debug("dropping %s: %s", method.__name__, exc)
            return
        # Sent: note what the guest now holds (a release that was not sent leaves it held).
        if method is InputsChannel.key_down and args[0] != PAUSE:  # Pause has no release
            self.held_keys[args[0]] = None
        elif method is InputsChannel.key_up:
            self.held_keys.pop(args[0], None)
        elif method is InputsChannel.button_press:
            self.held_buttons[int(args[0])] = None
        elif method is InputsChannel.button_release:
            self.held_buttons.pop(int(args[0]), None)


async def _wait_or_fail(awaitable, reader_task: asyncio.Task, timeout: float, message: str) -> None:
    """Wait for ``awaitable``; if the channel's reader ends first, raise what ended it."""
    waiter = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait([waiter, reader_task], timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiter.done():
            waiter.cancel()
    if waiter in done:
        return
    if reader_task in done:
        exc = reader_task.exception()
        raise exc if exc else SpiceServerGone(message)
    raise SpiceServerGone(message)


class SpiceThread:
    """Runs a :class:`SpiceClient` (with reconnection) on a thread named "spice".

    It is an :class:`kvmfr_client.input.sink.InputSink`: every input method may be called from any
    thread; calls are queued onto the SPICE loop in order and dropped while disconnected.
    """

    def __init__(self, client: SpiceClient):
        self.client = client
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="spice", daemon=True)

    def start(self) -> "SpiceThread":
        self._thread.start()
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.client.run())
        except BaseException as exc:  # reported through on_state/logging; kept for the owner
            self.error = exc
        finally:
            # Let stop()'s close() (and the channel readers it waits for) finish before the loop goes.
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            if pending:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=5))
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, fn: Callable, *args) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed between the check and the call
            pass

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive() and not self.loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(self.client.close(flush=True), self.loop)
            try:
                fut.result(timeout)
            except Exception as exc:
                log.debug("closing SPICE: %r", exc)
        self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def absolute_available(self) -> bool:
        return self.client.absolute_available

    @property
    def current_mouse_mode(self) -> int:
        return self.client.current_mouse_mode

    def set_mouse_mode(self, mode: P.MouseMode) -> None:
        self.call(self.client.set_mouse_mode, mode)

    def set_clipboard_text(self, text: str) -> None:
        self.call(self.client.set_clipboard_text, text)

    def set_clipboard_image(self, data: bytes, kind: int = 2) -> None:
        self.call(self.client.set_clipboard_image, data, kind)

    def send_files(self, paths: list[str]) -> None:
        self.call(self.client.send_files, list(paths))

    # -- InputSink -----------------------------------------------------------------------------
    def key_down(self, code: int) -> None:
        self.call(self.client.send_input, InputsChannel.key_down, code)

    def key_up(self, code: int) -> None:
        self.call(self.client.send_input, InputsChannel.key_up, code)

    def key_modifiers(self, modifiers: P.Modifier | int) -> None:
        self.call(self.client.send_input, InputsChannel.key_modifiers, modifiers)

    def motion(self, dx: int, dy: int) -> None:
        self.call(self.client.send_input, InputsChannel.motion, dx, dy)

    def position(self, x: int, y: int, display_id: int = 0) -> None:
        self.call(self.client.send_input, InputsChannel.position, x, y, display_id)

    def button_press(self, button: P.Button | int) -> None:
        self.call(self.client.send_input, InputsChannel.button_press, button)

    def button_release(self, button: P.Button | int) -> None:
        self.call(self.client.send_input, InputsChannel.button_release, button)

    def wheel(self, steps: int) -> None:
        self.call(self.client.send_input, InputsChannel.wheel, steps)


def spice_password(cfg) -> str | None:
    """The SPICE password of every SPICE session we open (input, clipboard, audio): the contents of
    ``spice:passwordFile`` (its last line break removed), else ``$KVMFR_SPICE_PASSWORD``, else None."""
    path = cfg["spice:passwordFile"]
    if not path:
        return os.environ.get("KVMFR_SPICE_PASSWORD")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n")
    except OSError as exc:
        raise SpiceError(f"cannot read spice:passwordFile {path}: {exc.strerror}") from None
    except UnicodeDecodeError:   # no traceback; the bytes are a secret, so not even where they went wrong
        raise SpiceError(f"spice:passwordFile {path} is not UTF-8 text: write the password in UTF-8") from None


def spice_from_config(cfg, on_state: StateCallback | None = None) -> SpiceThread:
    """A SpiceThread (not started yet) built from the ``spice:*`` options.

    Wire the callbacks (``thread.client.on_mouse_mode``, ``on_clipboard_text``) before ``start()``.
    """
    mode = P.MouseMode.CLIENT if cfg["spice:mouseMode"] == "client" else P.MouseMode.SERVER
    client = SpiceClient(Address(cfg["spice:host"], cfg["spice:port"]), spice_password(cfg), mouse_mode=mode,
                         on_state=on_state, clipboard=cfg["spice:clipboard"],
                         clipboard_to_vm=cfg["spice:clipboardToVM"],
                         clipboard_to_local=cfg["spice:clipboardToLocal"])
    return SpiceThread(client)


class JoinedChannel:
    """A channel of ours inside a SPICE session that someone else runs (the viewer's input client, a
    :class:`SpiceThread`): spice-server serves one client at a time, so a second session of our own would
    disconnect the viewer's. On every "connected" state of that client (again after each reconnect) the
    channel of the previous session is closed and the subclass's ``_join(client, main)`` runs on the SPICE
    loop and sets ``self.channel``; the client's own ``on_state``
    keeps being called. Subclasses: the SPICE playback (kvmfr_client.audio.spice_playback) and the
    microphone (kvmfr_client.audio.mic)."""

    LINK_TASK = "spice-link"     # the link task's name (debugging)
    WHAT = "spice channel"       # for the log

    def __init__(self, spice_thread: SpiceThread):
        self.spice = spice_thread
        self.channel = None
        self._previous = None
        # Set by stop(): from then on the state hook only passes states on (it stays in the chain when
        # another JoinedChannel hooked the client after us) and no link starts or keeps a channel.
        self._stopped = False
        self._link_task: asyncio.Task | None = None   # the latest link (SPICE loop)

    def start(self):
        client = self.spice.client
        self._previous = client.on_state
        client.on_state = self._on_state
        if client.main is not None and client.main.init is not None and not client.main.closed:
            self.spice.call(self._link_soon)  # already connected before we were started
        return self

    def stop(self) -> None:
        self._stopped = True
        client = self.spice.client
        if client.on_state == self._on_state:
            client.on_state = self._previous
        loop = self.spice.loop
        if loop.is_closed():
            self._stopping()
            self.channel = None
            return
        try:   # on the loop: a link in progress is cancelled, then the channel closed
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(2.0)
        except Exception as exc:  # the loop may be ending with the viewer
            log.debug("%s: closing: %r", self.WHAT, exc)
            self._stopping()

    async def _shutdown(self) -> None:
        task = self._link_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        self._stopping()
        channel, self.channel = self.channel, None
        if channel is not None:
            await channel.close()

    def _stopping(self) -> None:
        """Before the channel closes at stop() or is replaced by a new session's (on the SPICE loop, or on
        the caller's thread at a stop() after the loop closed)."""

    def _session_state(self, state: str) -> None:
        """After the client's state changed (and a link was started on "connected")."""

    def _on_state(self, state: str, detail: str) -> None:
        if self._previous is not None:
            self._previous(state, detail)
        if self._stopped:
            return
        if state == "connected":
            self._link_soon()
        self._session_state(state)

    def _link_soon(self) -> None:
        # Called on the SPICE loop's thread: the link must not hold up the client's own reconnect. One
        # link at a time: a newer "connected" cancels the link still in progress and waits for its end.
        if self._stopped:
            return
        previous = self._link_task
        if previous is not None and not previous.done():
            previous.cancel()
        self._link_task = asyncio.get_running_loop().create_task(self._link(previous), name=self.LINK_TASK)

    async def _link(self, previous: asyncio.Task | None = None) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        client = self.spice.client
        main = client.main
        if self._stopped or main is None or main.init is None:
            return
        if self.channel is not None:
            channel, self.channel = self.channel, None
            self._stopping()
            await channel.close()
        try:
            await self._join(client, main)
        finally:
            if self._stopped and self.channel is not None:   # stop() came while we linked
                channel, self.channel = self.channel, None
                await channel.close()

    async def _join(self, client: SpiceClient, main: MainChannel) -> None:
        raise NotImplementedError
