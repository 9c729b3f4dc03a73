"""JoinedChannel (a channel of ours in someone else's SPICE session): stop() in any order of the chained
state hooks, a link in progress at stop(), and two quick "connected" states. No server: a fake client on
a real asyncio loop in a thread, and a _join that links a fake channel."""

from __future__ import annotations

import asyncio
import threading
import types

from kvmfr_client.spice.client import JoinedChannel


class FakeChannel:
    def __init__(self):
        self.closed = False

    async def close(self):
        self.closed = True


class FakeSpice:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.client = types.SimpleNamespace(on_state=lambda state, detail: None,
                                            main=types.SimpleNamespace(init=object(), closed=False))
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, fn, *args):
        self.loop.call_soon_threadsafe(fn, *args)

    def state(self, state: str) -> None:
        """The client's state changes (on the loop, as SpiceClient does), and the loop settles."""
        self.run(self._state(state))

    async def _state(self, state):
        self.client.on_state(state, "")

    def run(self, coro, timeout=2.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def settle(self):
        self.run(asyncio.sleep(0.05))

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2.0)
        self.loop.close()


class Joined(JoinedChannel):
    def __init__(self, spice, gate: asyncio.Event | None = None):
        super().__init__(spice)
        self.gate = gate
        self.joins = 0
        self.linked: list[FakeChannel] = []

    async def _join(self, client, main):
        self.joins += 1
        if self.gate is not None:
            await self.gate.wait()
        channel = FakeChannel()
        self.linked.append(channel)
        self.channel = channel


def _start(spice, *joined):
    """start() each on the loop's thread, as the viewer's start does before the session connects."""
    spice.client.main = types.SimpleNamespace(init=None, closed=False)   # not connected yet: no link at start
    for j in joined:
        j.start()
    spice.client.main = types.SimpleNamespace(init=object(), closed=False)


def test_stopped_channel_under_another_hook_links_nothing():
    spice = FakeSpice()
    try:
        states = []
        spice.client.on_state = lambda state, detail: states.append(state)
        mic, playback = Joined(spice), Joined(spice)
        _start(spice, mic, playback)        # playback's hook wraps the mic's
        spice.state("connected")
        spice.settle()
        assert mic.joins == playback.joins == 1
        mic.stop()                           # the old stop order: mic first, while playback is on top
        assert mic.linked[0].closed and mic.channel is None
        spice.state("connected")             # a reconnect
        spice.settle()
        assert mic.joins == 1 and mic.channel is None      # stays stopped
        assert playback.joins == 2
        assert states == ["connected", "connected"]        # the client's own hook still called
        playback.stop()
    finally:
        spice.close()


def test_link_in_progress_at_stop_leaves_no_channel_open():
    spice = FakeSpice()
    try:
        gate = spice.run(_make_event())
        joined = Joined(spice, gate)
        _start(spice, joined)
        spice.state("connected")
        spice.settle()
        assert joined.joins == 1 and joined.channel is None     # linking
        joined.stop()                                          # cancels the link
        spice.call(gate.set)
        spice.settle()
        assert joined.channel is None
        assert all(c.closed for c in joined.linked)
    finally:
        spice.close()


def test_channel_arriving_after_stop_is_closed():
    """A link that gets past its cancellation (here: stop() flags before the loop gets to cancel it)."""
    spice = FakeSpice()
    try:
        joined = Joined(spice)
        _start(spice, joined)
        joined._stopped = True
        spice.run(joined._link())
        assert joined.channel is None and joined.joins == 0   # no link once stopped
        joined._stopped = False

        async def join_then_stop(client, main):
            channel = FakeChannel()
            joined.linked.append(channel)
            joined._stopped = True
            joined.channel = channel

        joined._join = join_then_stop
        spice.run(joined._link())
        assert joined.channel is None and joined.linked[0].closed
    finally:
        spice.close()


def test_two_quick_connected_states_link_one_channel():
    spice = FakeSpice()
    try:
        gate = spice.run(_make_event())
        joined = Joined(spice, gate)
        _start(spice, joined)
        spice.state("connected")
        spice.state("connected")          # before the first link ended
        spice.settle()
        spice.call(gate.set)
        spice.settle()
        open_channels = [c for c in joined.linked if not c.closed]
        assert len(open_channels) == 1 and joined.channel is open_channels[0]
        assert len(joined.linked) == 1     # the first link was cancelled
        joined.stop()
        assert joined.channel is None and joined.linked[0].closed
    finally:
        spice.close()


async def _make_event():
    return asyncio.Event()
