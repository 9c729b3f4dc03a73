"""A small ctypes binding to libpulse: one blocking PCM stream (libpulse-simple), playback or record, and
pa_streams on a threaded main loop for playback (the player) and record (with the server's timing); a
playback stream whose one user runs its loop itself (``own_loop``: the Scream UDP pump's).

Why our own binding and not ``pasimple``: pasimple (the only maintained PyPI wrapper of the simple API)
passes a NULL channel map to ``pa_simple_new``, so a 5.1 or 7.1 guest stream could not be placed on the
right speakers. sounddevice/PyAudio go through PortAudio's ALSA path, which exposes neither Pulse's
buffer attributes (``tlength``) nor channel positions. The simple API itself is stable since PulseAudio
0.9 and PipeWire's pipewire-pulse implements it, so this file is the whole native surface we need.
``pulsectl`` (also libpulse, via ctypes) does the control side: sinks, volume, listing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from dataclasses import dataclass
from typing import NamedTuple, Sequence

from kvmfr_client.core.native import lib as native

# pa_sample_format_t
SAMPLE_S16LE = 3
SAMPLE_FLOAT32LE = 5
SAMPLE_S32LE = 7
SAMPLE_S24LE = 9

# pa_stream_direction_t
_PLAYBACK = 1
_RECORD = 2

CHANNELS_MAX = 32


class PulseError(RuntimeError):
    """A libpulse call failed; ``code`` is the pa_error_code_t and the message is pa_strerror's text."""

    def __init__(self, call: str, code: int, text: str):
        super().__init__(f"{call}: {text} (pulse error {code})")
        self.code = code


class _SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class _ChannelMap(ctypes.Structure):
    _fields_ = [("channels", ctypes.c_uint8), ("map", ctypes.c_int * CHANNELS_MAX)]


class _BufferAttr(ctypes.Structure):
    _fields_ = [
        ("maxlength", ctypes.c_uint32),
        ("tlength", ctypes.c_uint32),
        ("prebuf", ctypes.c_uint32),
        ("minreq", ctypes.c_uint32),
        ("fragsize", ctypes.c_uint32),
    ]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _TimingInfo(ctypes.Structure):
    """pa_timing_info; only the sink fields are read."""
    _fields_ = [
        ("timestamp", _Timeval),
        ("synchronized_clocks", ctypes.c_int),
        ("sink_usec", ctypes.c_uint64),
        ("source_usec", ctypes.c_uint64),
        ("transport_usec", ctypes.c_uint64),
        ("playing", ctypes.c_int),
        ("write_index_corrupt", ctypes.c_int),
        ("write_index", ctypes.c_int64),
        ("read_index_corrupt", ctypes.c_int),
        ("read_index", ctypes.c_int64),
        ("configured_sink_usec", ctypes.c_uint64),
        ("configured_source_usec", ctypes.c_uint64),
        ("since_underrun", ctypes.c_int64),
    ]


_SIMPLE_SIGNATURES = {
    "pa_simple_new": (ctypes.c_void_p, [
        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
        ctypes.POINTER(_SampleSpec), ctypes.POINTER(_ChannelMap), ctypes.POINTER(_BufferAttr),
        ctypes.POINTER(ctypes.c_int),
    ]),
    "pa_simple_free": (None, [ctypes.c_void_p]),
    "pa_simple_write": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]),
    "pa_simple_read": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]),
    "pa_simple_flush": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]),
    "pa_simple_get_latency": (ctypes.c_uint64, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]),
}

_libs: dict[str, ctypes.CDLL] = {}


def _load(stem: str, signatures: dict) -> ctypes.CDLL:
    """lib``stem`` (loaded once), with the result and argument types of ``signatures`` declared."""
    if stem not in _libs:
        name = ctypes.util.find_library(stem) or f"lib{stem}.so.0"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise PulseError("dlopen", -1, f"cannot load {name}: install libpulse0 ({exc})") from None
        for fname, (res, args) in signatures.items():
            fn = getattr(lib, fname)
            fn.restype = res
            fn.argtypes = args
        _libs[stem] = lib
    return _libs[stem]


def _library() -> ctypes.CDLL:
    return _load("pulse-simple", _SIMPLE_SIGNATURES)


def _check(call: str, ok: bool, err: ctypes.c_int) -> None:
    # pa_strerror lives in libpulse proper, which libpulse-simple links against.
    if not ok:
        raise PulseError(call, err.value, _core_library().pa_strerror(err.value).decode(errors="replace"))


@dataclass(frozen=True)
class StreamSpec:
    """What one stream carries; ``positions`` are pa_channel_position_t values, one per channel."""

    sample_format: int
    rate: int
    positions: tuple[int, ...]

    @property
    def channels(self) -> int:
        return len(self.positions)


class SimpleStream:
    """One blocking pa_simple stream. Not thread-safe: one thread writes (or reads) it."""

    def __init__(self, spec: StreamSpec, *, record: bool = False, server: str | None = None,
                 device: str | None = None, app_name: str = "kvmfr-client", stream_name: str = "guest audio",
                 tlength: int | None = None, maxlength: int | None = None, minreq: int | None = None,
                 prebuf: int | None = None, fragsize: int | None = None):
        lib = _library()
        ss = _SampleSpec(spec.sample_format, spec.rate, spec.channels)
        cmap = _ChannelMap()
        cmap.channels = spec.channels
        for i, pos in enumerate(spec.positions):
            cmap.map[i] = pos
        unset = 0xFFFFFFFF  # (uint32_t) -1: let the server choose
        attr = _BufferAttr(*(unset if v is None else int(v) for v in (maxlength, tlength, prebuf, minreq, fragsize)))
        err = ctypes.c_int(0)
        handle = lib.pa_simple_new(
            server.encode() if server else None, app_name.encode(), _RECORD if record else _PLAYBACK,
            device.encode() if device else None, stream_name.encode(), ctypes.byref(ss), ctypes.byref(cmap),
            ctypes.byref(attr), ctypes.byref(err))
        _check("pa_simple_new", bool(handle), err)
        self._handle = handle
        self.spec = spec

    def write(self, data: bytes | memoryview | Sequence) -> None:
        """Queue PCM for playback; blocks while the server-side buffer is full (that is our clock)."""
        buf = memoryview(data).cast("B")
        err = ctypes.c_int(0)
        ptr = (ctypes.c_char * len(buf)).from_buffer_copy(buf) if buf.readonly else (ctypes.c_char * len(buf)).from_buffer(buf)
        _check("pa_simple_write", _library().pa_simple_write(self._handle, ptr, len(buf), ctypes.byref(err)) == 0, err)

    def read(self, nbytes: int) -> bytearray:
        out = bytearray(nbytes)
        err = ctypes.c_int(0)
        ptr = (ctypes.c_char * nbytes).from_buffer(out)
        _check("pa_simple_read", _library().pa_simple_read(self._handle, ptr, nbytes, ctypes.byref(err)) == 0, err)
        return out

    def latency(self) -> float:
        """Seconds of audio between this stream and the speaker (playback) or the microphone (record)."""
        err = ctypes.c_int(0)
        usec = _library().pa_simple_get_latency(self._handle, ctypes.byref(err))
        _check("pa_simple_get_latency", usec != 0xFFFFFFFFFFFFFFFF, err)
        return usec / 1e6

    def flush(self) -> None:
        err = ctypes.c_int(0)
        _check("pa_simple_flush", _library().pa_simple_flush(self._handle, ctypes.byref(err)) == 0, err)

    def close(self) -> None:
        if self._handle:
            _library().pa_simple_free(self._handle)
            self._handle = None

    def __enter__(self) -> "SimpleStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- the asynchronous API -------------------------------------------------------------------------
#
# pa_simple blocks every write until the server wants more, so the queue can never be held above
# what Pulse asks for, and it does not report underflows. The player therefore uses a pa_stream on a
# threaded main loop: writes never block, the queue level is ours to set, and Pulse's own underflow
# notifications are counted. A record pa_stream (RecordStream) gives what pa_simple cannot either: the
# server's timing of what was recorded, with a monitor's latency signed (pa_simple reports it as 0).

_CONTEXT_READY, _CONTEXT_FAILED, _CONTEXT_TERMINATED = 4, 5, 6
_STREAM_READY, _STREAM_FAILED, _STREAM_TERMINATED = 2, 3, 4
_CONTEXT_NOAUTOSPAWN = 1
_STREAM_INTERPOLATE_TIMING = 0x0002
_STREAM_AUTO_TIMING_UPDATE = 0x0008
_STREAM_ADJUST_LATENCY = 0x2000
_SEEK_RELATIVE = 0
_ERR_NODATA = 16

_NOTIFY_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_REQUEST_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_ONCE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

# The device's share of a stream's latency (pa_timing_info.sink_usec) is sampled at each timing update,
# every 1.5 s once a stream runs (libpulse's automatic interval). A sink that renders ahead in blocks (the
# null sink; a timer-scheduled ALSA sink) holds anything from ~0 to a whole block at that moment: on the
# null sink at a 5 ms device latency, successive samples read 0.1-4.8 ms. Subtracted as they come, they
# made the stream's queue read jump by a few ms at each update while the queue itself had not moved, and
# the drift controller steered the real latency by those jumps. queued() subtracts the running mean of the
# samples (the last SINK_MEAN_SAMPLES or so), which is what the device holds on average. The samples of a
# stream's first SINK_SETTLE seconds are left out: the sink re-renders its whole buffer to mix a new stream
# in, and the updates of that moment (every 10-320 ms at first) read it nearly full (4.3-4.8 of 5 ms, against
# a mean of 2.7 ms afterwards): in a mean over 16 samples they would stand for the first twenty seconds.
# Until a sample counts, SINK_SHARE_STANDIN of the configured latency stands in for the mean. A stream that ran dry (not
# playing, the server's read index at its write index, nothing written since) reads empty: libpulse's
# interpolated latency read 0-2.6 ms either side of it. Only then: a stream the last update saw not
# playing with audio in it (waiting for its prebuffer at the start) may have started since, and its
# indices of that moment, taken as they were, held the first seconds of a stream 3-6 ms above the target.
SINK_MEAN_SAMPLES = 16
SINK_SHARE_STANDIN = 0.5  # of the device's configured latency: the mean until a sample counts
SINK_SETTLE = 1.0
AUTO_TIMING_EVERY = 1.5  # seconds between libpulse's automatic timing updates once a stream runs

_vp, _i, _sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
_CORE_SIGNATURES = {
    "pa_threaded_mainloop_new": (_vp, []),
    "pa_threaded_mainloop_start": (_i, [_vp]),
    "pa_threaded_mainloop_stop": (None, [_vp]),
    "pa_threaded_mainloop_free": (None, [_vp]),
    "pa_threaded_mainloop_lock": (None, [_vp]),
    "pa_threaded_mainloop_unlock": (None, [_vp]),
    "pa_threaded_mainloop_wait": (None, [_vp]),
    "pa_threaded_mainloop_signal": (None, [_vp, _i]),
    "pa_threaded_mainloop_get_api": (_vp, [_vp]),
    "pa_threaded_mainloop_once_unlocked": (None, [_vp, _ONCE_CB, _vp]),
    "pa_bytes_to_usec": (ctypes.c_uint64, [ctypes.c_uint64, ctypes.POINTER(_SampleSpec)]),
    "pa_mainloop_new": (_vp, []),
    "pa_mainloop_free": (None, [_vp]),
    "pa_mainloop_get_api": (_vp, [_vp]),
    "pa_mainloop_iterate": (_i, [_vp, _i, _vp]),
    "pa_mainloop_prepare": (_i, [_vp, _i]),
    "pa_mainloop_poll": (_i, [_vp]),
    "pa_mainloop_dispatch": (_i, [_vp]),
    "pa_context_new": (_vp, [_vp, ctypes.c_char_p]),
    "pa_context_set_state_callback": (None, [_vp, _NOTIFY_CB, _vp]),
    "pa_context_connect": (_i, [_vp, ctypes.c_char_p, _i, _vp]),
    "pa_context_get_state": (_i, [_vp]),
    "pa_context_errno": (_i, [_vp]),
    "pa_context_disconnect": (None, [_vp]),
    "pa_context_unref": (None, [_vp]),
    "pa_stream_new": (_vp, [_vp, ctypes.c_char_p, ctypes.POINTER(_SampleSpec), ctypes.POINTER(_ChannelMap)]),
    "pa_stream_set_state_callback": (None, [_vp, _NOTIFY_CB, _vp]),
    "pa_stream_set_write_callback": (None, [_vp, _REQUEST_CB, _vp]),
    "pa_stream_set_underflow_callback": (None, [_vp, _NOTIFY_CB, _vp]),
    "pa_stream_connect_playback": (_i, [_vp, ctypes.c_char_p, ctypes.POINTER(_BufferAttr), _i, _vp, _vp]),
    "pa_stream_get_state": (_i, [_vp]),
    "pa_stream_write": (_i, [_vp, _vp, _sz, _vp, ctypes.c_int64, _i]),
    "pa_stream_get_underflow_index": (ctypes.c_int64, [_vp]),
    "pa_stream_get_latency": (_i, [_vp, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(_i)]),
    "pa_stream_get_buffer_attr": (ctypes.POINTER(_BufferAttr), [_vp]),
    "pa_stream_get_timing_info": (ctypes.POINTER(_TimingInfo), [_vp]),
    "pa_stream_connect_record": (_i, [_vp, ctypes.c_char_p, ctypes.POINTER(_BufferAttr), _i]),
    "pa_stream_set_read_callback": (None, [_vp, _REQUEST_CB, _vp]),
    "pa_stream_set_latency_update_callback": (None, [_vp, _NOTIFY_CB, _vp]),
    "pa_stream_peek": (_i, [_vp, ctypes.POINTER(_vp), ctypes.POINTER(_sz)]),
    "pa_stream_drop": (_i, [_vp]),
    "pa_stream_update_timing_info": (_vp, [_vp, _vp, _vp]),
    "pa_operation_unref": (None, [_vp]),
    "pa_stream_disconnect": (_i, [_vp]),
    "pa_stream_unref": (None, [_vp]),
    "pa_strerror": (ctypes.c_char_p, [_i]),
}


def _core_library() -> ctypes.CDLL:
    return _load("pulse", _CORE_SIGNATURES)


class _MainloopStream:
    """A pa_stream on its own threaded main loop (thread name ``threaded-ml``): the loop, the context, the
    connection and the close, shared by :class:`PlaybackStream` and :class:`RecordStream`. A subclass sets
    its callbacks in :meth:`_prepare` and connects the stream in :meth:`_connect_stream`, both called with
    the loop's lock held.

    ``own_loop``: no loop thread; the one thread that uses the stream runs the loop itself (a plain
    pa_mainloop), without waiting: each call first takes in what the server sent (timing updates,
    underflow reports, the release of written blocks) and a write is sent before it returns. The threaded
    loop costs a wake of its thread per write and a contended lock (the writer holds the lock when it
    wakes that thread): per Scream packet, 2.7 wakes of the loop's thread and a preemption of the writer
    (benchmarks/audio_wakes.py)."""

    _CONNECT = "pa_stream_connect"   # the call named in a failure to connect
    CONNECT_POLL_US = 100_000  # own_loop: the longest wait for the server while connecting (the deadline is checked)

    def __init__(self, spec: StreamSpec, server: str | None, device: str | None, app_name: str,
                 stream_name: str, attrs: tuple, timeout: float, thread_setup=None, own_loop: bool = False):
        lib = _core_library()
        self.spec = spec
        self.own_loop = own_loop
        self._ctx = None
        self._stream = None
        if own_loop:
            self._ml = lib.pa_mainloop_new()
            if not self._ml:
                raise PulseError("pa_mainloop_new", -1, "cannot create a Pulse main loop")
            self._on_state = _NOTIFY_CB(lambda *_: None)
            try:
                self._connect(lib, spec, server, device, app_name, stream_name, attrs, timeout)
            except BaseException:
                self.close()
                raise
            return
        self._ml = lib.pa_threaded_mainloop_new()
        # Kept as attributes: ctypes callbacks must outlive every call Pulse makes to them.
        self._on_state = _NOTIFY_CB(lambda *_: lib.pa_threaded_mainloop_signal(self._ml, 0))
        if lib.pa_threaded_mainloop_start(self._ml) < 0:
            lib.pa_threaded_mainloop_free(self._ml)
            raise PulseError("pa_threaded_mainloop_start", -1, "cannot start the Pulse main loop thread")
        lib.pa_threaded_mainloop_lock(self._ml)
        if thread_setup is not None:
            # Our writes take the main loop's lock; if its thread lost the CPU while holding it, the
            # player would wait. thread_setup (e.g. raising the priority) runs in that thread. Queuing
            # it touches the loop's event lists, so it needs the lock like any other call.
            self._on_once = _ONCE_CB(lambda *_: thread_setup())
            lib.pa_threaded_mainloop_once_unlocked(self._ml, self._on_once, None)
        try:
            self._connect(lib, spec, server, device, app_name, stream_name, attrs, timeout)
        except BaseException:
            lib.pa_threaded_mainloop_unlock(self._ml)
            self.close()
            raise
        lib.pa_threaded_mainloop_unlock(self._ml)

    def run_loop(self) -> None:
        """(own_loop) Passes of the loop without waiting until nothing is left to do (at most
        SCREAM_PUMP_LOOP_PASSES, the bound the pump's C applies too): one pass reads or writes one piece of
        one message."""
        lib = _core_library()
        for _ in range(native.SCREAM_PUMP_LOOP_PASSES):
            if lib.pa_mainloop_iterate(self._ml, 0, None) <= 0:
                break

    def _lock(self, lib) -> None:
        """Before a call on the stream: the threaded loop's lock; with our own loop, what the server sent."""
        if self.own_loop:
            self.run_loop()
        else:
            lib.pa_threaded_mainloop_lock(self._ml)

    def _unlock(self, lib) -> None:
        """After a call on the stream: the lock released; with our own loop, what was written sent."""
        if self.own_loop:
            self.run_loop()
        else:
            lib.pa_threaded_mainloop_unlock(self._ml)

    def _wait(self, lib) -> None:
        """While connecting: until the server answers (own loop: at most CONNECT_POLL_US)."""
        if self.own_loop:
            if lib.pa_mainloop_prepare(self._ml, self.CONNECT_POLL_US) >= 0 and lib.pa_mainloop_poll(self._ml) >= 0:
                lib.pa_mainloop_dispatch(self._ml)
        else:
            lib.pa_threaded_mainloop_wait(self._ml)

    def _prepare(self, lib) -> None:
        """Sets the stream's callbacks, before it connects."""

    def _connect_stream(self, lib, device: bytes | None, attr: _BufferAttr) -> int:
        raise NotImplementedError

    def failure(self, call: str) -> PulseError:
        """The error of a call on this stream that failed outside this module (native code's write)."""
        return self._fail(call)

    def _fail(self, call: str) -> PulseError:
        lib = _core_library()
        code = lib.pa_context_errno(self._ctx) if self._ctx else -1
        text = lib.pa_strerror(code).decode(errors="replace") if code >= 0 else "failed"
        return PulseError(call, code, text)

    def _connect(self, lib, spec, server, device, app_name, stream_name, attrs, timeout) -> None:
        deadline = time.monotonic() + timeout
        api = lib.pa_mainloop_get_api(self._ml) if self.own_loop else lib.pa_threaded_mainloop_get_api(self._ml)
        self._ctx = lib.pa_context_new(api, app_name.encode())
        lib.pa_context_set_state_callback(self._ctx, self._on_state, None)
        if lib.pa_context_connect(self._ctx, server.encode() if server else None, _CONTEXT_NOAUTOSPAWN, None) < 0:
            raise self._fail("pa_context_connect")
        while (state := lib.pa_context_get_state(self._ctx)) != _CONTEXT_READY:
            if state in (_CONTEXT_FAILED, _CONTEXT_TERMINATED) or time.monotonic() > deadline:
                raise self._fail("pa_context_connect")
            self._wait(lib)
        ss = _SampleSpec(spec.sample_format, spec.rate, spec.channels)
        cmap = _ChannelMap()
        cmap.channels = spec.channels
        for n, pos in enumerate(spec.positions):
            cmap.map[n] = pos
        self._stream = lib.pa_stream_new(self._ctx, stream_name.encode(), ctypes.byref(ss), ctypes.byref(cmap))
        if not self._stream:
            raise self._fail("pa_stream_new")
        lib.pa_stream_set_state_callback(self._stream, self._on_state, None)
        self._prepare(lib)
        attr = _BufferAttr(*(0xFFFFFFFF if v is None else int(v) for v in attrs))
        if self._connect_stream(lib, device.encode() if device else None, attr) < 0:
            raise self._fail(self._CONNECT)
        while (state := lib.pa_stream_get_state(self._stream)) != _STREAM_READY:
            if state in (_STREAM_FAILED, _STREAM_TERMINATED) or time.monotonic() > deadline:
                raise self._fail(self._CONNECT)
            self._wait(lib)

    def buffer_attr(self) -> dict[str, int]:
        lib = _core_library()
        self._lock(lib)
        try:
            a = lib.pa_stream_get_buffer_attr(self._stream).contents
            return {n: getattr(a, n) for n, _ in _BufferAttr._fields_}
        finally:
            self._unlock(lib)

    def close(self) -> None:
        lib = _core_library()
        if self._ml is None:
            return
        if not self.own_loop:
            lib.pa_threaded_mainloop_lock(self._ml)
        if self._stream:
            lib.pa_stream_disconnect(self._stream)
            lib.pa_stream_unref(self._stream)
            self._stream = None
        if self._ctx:
            lib.pa_context_disconnect(self._ctx)
            lib.pa_context_unref(self._ctx)
            self._ctx = None
        if self.own_loop:
            lib.pa_mainloop_free(self._ml)
        else:
            lib.pa_threaded_mainloop_unlock(self._ml)
            lib.pa_threaded_mainloop_stop(self._ml)
            lib.pa_threaded_mainloop_free(self._ml)
        self._ml = None


class PlaybackStream(_MainloopStream):
    """A non-blocking playback pa_stream on its own threaded main loop (thread name ``threaded-ml``).

    :meth:`write` queues PCM at once, however much is queued already; :meth:`latency` is the time
    until a frame written now reaches the speaker; :attr:`underflows` counts Pulse's underflow events.
    """

    _CONNECT = "pa_stream_connect_playback"

    def __init__(self, spec: StreamSpec, *, server: str | None = None, device: str | None = None,
                 app_name: str = "kvmfr-client", stream_name: str = "guest audio", tlength: int | None = None,
                 maxlength: int | None = None, prebuf: int | None = None, minreq: int | None = None,
                 timeout: float = 5.0, thread_setup=None, own_loop: bool = False):
        self._underflows = 0
        self.underflow_at = 0.0  # when the last underflow report came (monotonic)
        self._sink_stamp: tuple[int, int] | None = None  # the timing update the mean last took in
        self._sink_samples = 0
        self._sink_mean = 0.0  # µs, see SINK_MEAN_SAMPLES
        self._settled_at = float("inf")  # monotonic time from which the device's samples count
        self._on_underflow = _NOTIFY_CB(self._underflow)
        super().__init__(spec, server, device, app_name, stream_name, (maxlength, tlength, prebuf, minreq, None),
                         timeout, thread_setup, own_loop)
        self._settled_at = time.monotonic() + SINK_SETTLE

    def _prepare(self, lib) -> None:
        lib.pa_stream_set_underflow_callback(self._stream, self._on_underflow, None)

    def _connect_stream(self, lib, device, attr) -> int:
        flags = _STREAM_INTERPOLATE_TIMING | _STREAM_AUTO_TIMING_UPDATE | _STREAM_ADJUST_LATENCY
        return lib.pa_stream_connect_playback(self._stream, device, ctypes.byref(attr), flags, None, None)

    def _underflow(self, *_):
        self.underflow_at = time.monotonic()
        self._underflows += 1

    @property
    def underflows(self) -> int:
        """Pulse's underflow reports so far (own_loop: including those that came since the last call)."""
        if self.own_loop:
            self.run_loop()
        return self._underflows

    def underflow_index(self) -> int:
        """The write index at which the stream last ran dry, as the server reported it (-1: never)."""
        lib = _core_library()
        self._lock(lib)
        try:
            return int(lib.pa_stream_get_underflow_index(self._stream))
        finally:
            self._unlock(lib)

    def native_handles(self) -> tuple[int, int, int, int, int, int, int]:
        """For native code that writes to this stream (native/scream_pump.c): the mainloop and the
        stream, and the addresses of pa_threaded_mainloop_lock, _unlock (0 with our own loop),
        pa_stream_write, pa_stream_get_underflow_index and pa_mainloop_iterate (0 with a loop thread) in
        the library this module loaded."""
        lib = _core_library()

        def address(fn) -> int:
            return ctypes.cast(fn, ctypes.c_void_p).value or 0

        if self.own_loop:
            lock = unlock = 0
            iterate = address(lib.pa_mainloop_iterate)
        else:
            lock, unlock = address(lib.pa_threaded_mainloop_lock), address(lib.pa_threaded_mainloop_unlock)
            iterate = 0
        return (self._ml, self._stream, lock, unlock, address(lib.pa_stream_write),
                address(lib.pa_stream_get_underflow_index), iterate)

    def write(self, data: bytes) -> None:
        lib = _core_library()
        self._lock(lib)
        try:
            # free_cb NULL: libpulse copies the data before returning. A lost stream fails here.
            if lib.pa_stream_write(self._stream, data, len(data), None, 0, _SEEK_RELATIVE) < 0:
                raise self._fail("pa_stream_write")
        finally:
            self._unlock(lib)

    def _timing(self) -> tuple[int, float, int, bool] | None:
        """(latency, the device's part of it (averaged over the timing updates while the stream plays,
        see SINK_MEAN_SAMPLES), the device's configured latency, all in µs; whether the stream ran dry);
        None before the first timing update."""
        lib = _core_library()
        usec = ctypes.c_uint64(0)
        negative = ctypes.c_int(0)
        self._lock(lib)
        try:
            rc = lib.pa_stream_get_latency(self._stream, ctypes.byref(usec), ctypes.byref(negative))
            info = lib.pa_stream_get_timing_info(self._stream)
            if info:
                i = info.contents
                stamp, sink_usec, configured = (i.timestamp.tv_sec, i.timestamp.tv_usec), i.sink_usec, i.configured_sink_usec
                playing = bool(i.playing)
                dry = (not (playing or i.read_index_corrupt or i.write_index_corrupt)
                       and i.write_index <= i.read_index)
                if self.own_loop and rc == 0:
                    rc, usec.value, negative.value = self._own_latency(lib, i, rc, usec.value, negative.value)
            else:
                stamp, sink_usec, configured, playing, dry = None, 0, 0, True, False
        finally:
            self._unlock(lib)
        if rc < 0:
            if rc == -_ERR_NODATA:
                return None
            raise self._fail("pa_stream_get_latency")
        if stamp is not None and stamp != self._sink_stamp:
            self._sink_stamp = stamp
            if self._sink_samples == 0:  # the stand-in, counted as one sample
                self._sink_mean, self._sink_samples = configured * SINK_SHARE_STANDIN, 1
            if playing and time.monotonic() >= self._settled_at:
                self._sink_samples = min(self._sink_samples + 1, SINK_MEAN_SAMPLES)
                self._sink_mean += (sink_usec - self._sink_mean) / self._sink_samples
        latency = -int(usec.value) if negative.value else int(usec.value)
        return latency, self._sink_mean, configured, dry

    def _own_latency(self, lib, i: _TimingInfo, rc: int, usec: int, negative: int) -> tuple[int, int, int]:
        """(own_loop) The latency from the last timing update as the server stamped it: what the sink held
        then, plus the stream's write index (ours, corrected for the writes since) less its read index,
        less the time played since. libpulse's own interpolation places the update at the moment this
        thread took it in, less the request's transport time: a reply that waited in the socket until
        the next packet (0-6 ms) read as that much more latency, and the drift controller held the real
        latency 5.5 ms below the target (benchmarks/audio.py, 19 ms: 13.1 ms median)."""
        if not i.playing or i.read_index_corrupt or i.write_index_corrupt:
            return rc, usec, negative
        age = time.time() - (i.timestamp.tv_sec + i.timestamp.tv_usec / 1e6)
        if not 0 <= age < 2 * AUTO_TIMING_EVERY:   # the wall clock stepped: libpulse's figure
            return rc, usec, negative
        if self.underflow_at > time.monotonic() - age:
            # The stream ran dry after the update: the time since did not all play. libpulse's figure
            # until the next update (the player refills from it, as with the threaded loop).
            return rc, usec, negative
        ss = _SampleSpec(self.spec.sample_format, self.spec.rate, self.spec.channels)
        held = i.write_index - i.read_index
        buffered = lib.pa_bytes_to_usec(abs(held), ctypes.byref(ss)) * (1 if held >= 0 else -1)
        latency = int(i.sink_usec) + buffered - int(age * 1e6)
        return 0, abs(latency), int(latency < 0)

    def latency(self) -> float | None:
        """Seconds until a frame written now is heard; None before the first timing update."""
        timing = self._timing()
        return None if timing is None else timing[0] / 1e6

    def queued(self) -> float | None:
        """Seconds of audio in the stream's own buffer, not yet handed to the sink device: the latency
        less the device's average part (see SINK_MEAN_SAMPLES); None before the first timing update."""
        timing = self._timing()
        if timing is None:
            return None
        latency, device, _, dry = timing
        return 0.0 if dry else (latency - device) / 1e6

    def device_share(self) -> float:
        """Seconds of the stream's audio the sink device holds on average (see SINK_MEAN_SAMPLES); 0
        before the first timing update."""
        return self._sink_mean / 1e6

    def device_latency(self) -> float | None:
        """The sink's configured latency in seconds: audio the device itself holds once the stream has
        handed it over (None before the first timing update)."""
        timing = self._timing()
        return None if timing is None else timing[2] / 1e6


@dataclass(frozen=True)
class RecordTiming:
    """One timing update of a record stream, as the server took it.

    ``at``: when (monotonic seconds; the server stamps it with the wall clock, converted on arrival);
    ``write_index``: bytes the source had put into the stream by then, counted from the stream's first;
    ``source_usec``: audio the source held that was not in the stream yet; ``sink_usec``: for a sink's
    monitor, audio that sink had mixed and not yet played (0 for other sources). The stream's latency,
    source_usec - sink_usec, is signed: a monitor's is negative (its sink mixes ahead of playing), which
    pa_simple_get_latency reports as 0; these are the server's figures as they came."""

    at: float
    write_index: int
    source_usec: int
    sink_usec: int


class Captured(NamedTuple):
    """A chunk of a record stream: its bytes, and when it reached this process (monotonic seconds)."""

    data: bytes
    arrived: float


class RecordStream(_MainloopStream):
    """A record pa_stream on its own threaded main loop: what the source captured arrives in that loop's
    thread, and each timing update the server sends is kept (:meth:`request_timing` asks for one), so a
    reader that wakes late loses neither audio nor timing. :meth:`take` hands over both."""

    _CONNECT = "pa_stream_connect_record"

    def __init__(self, spec: StreamSpec, *, server: str | None = None, device: str | None = None,
                 app_name: str = "kvmfr-client", stream_name: str = "record", fragsize: int | None = None,
                 maxlength: int | None = None, timeout: float = 5.0):
        self._chunks: list[Captured] = []
        self._timings: list[RecordTiming] = []
        self._on_read = _REQUEST_CB(self._read)
        self._on_timing = _NOTIFY_CB(self._timing)
        super().__init__(spec, server, device, app_name, stream_name, (maxlength, None, None, None, fragsize),
                         timeout)

    def _prepare(self, lib) -> None:
        lib.pa_stream_set_read_callback(self._stream, self._on_read, None)
        lib.pa_stream_set_latency_update_callback(self._stream, self._on_timing, None)

    def _connect_stream(self, lib, device, attr) -> int:
        # pa_simple's flags: the server sizes the source's latency for fragsize.
        flags = _STREAM_INTERPOLATE_TIMING | _STREAM_AUTO_TIMING_UPDATE | _STREAM_ADJUST_LATENCY
        return lib.pa_stream_connect_record(self._stream, device, ctypes.byref(attr), flags)

    def _read(self, stream, nbytes, _userdata) -> None:
        # In the loop's thread, with its lock held.
        lib = _core_library()
        data, n = ctypes.c_void_p(), ctypes.c_size_t()
        now = time.monotonic()
        while lib.pa_stream_peek(stream, ctypes.byref(data), ctypes.byref(n)) == 0 and n.value:
            # A hole (data NULL) is audio the server does not have: silence keeps the indices.
            self._chunks.append(Captured(ctypes.string_at(data, n.value) if data.value else bytes(n.value), now))
            lib.pa_stream_drop(stream)

    def _timing(self, stream, _userdata) -> None:
        info = _core_library().pa_stream_get_timing_info(stream)
        if not info or info.contents.write_index_corrupt:
            return
        i = info.contents
        stamp = i.timestamp.tv_sec + i.timestamp.tv_usec / 1e6
        at = time.monotonic() - (time.time() - stamp)
        self._timings.append(RecordTiming(at, int(i.write_index), int(i.source_usec), int(i.sink_usec)))

    def request_timing(self) -> None:
        """Asks the server for a timing update (it arrives in :meth:`take`'s second list)."""
        lib = _core_library()
        lib.pa_threaded_mainloop_lock(self._ml)
        try:
            op = lib.pa_stream_update_timing_info(self._stream, None, None)
            if not op:
                raise self._fail("pa_stream_update_timing_info")
            lib.pa_operation_unref(op)
        finally:
            lib.pa_threaded_mainloop_unlock(self._ml)

    def take(self) -> tuple[list[Captured], list[RecordTiming]]:
        """What was captured and the timing updates that came since the last call."""
        lib = _core_library()
        lib.pa_threaded_mainloop_lock(self._ml)
        try:
            chunks, self._chunks = self._chunks, []
            timings, self._timings = self._timings, []
        finally:
            lib.pa_threaded_mainloop_unlock(self._ml)
        return chunks, timings
