"""win:setGuestRes: when the window's size goes to the host (pure logic, a fake clock, no window)."""

from __future__ import annotations

import logging

from kvmfr_client.viewer.guest_res import GuestResizer


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _resizer(**kw):
    sent, clock = [], Clock()
    return GuestResizer(lambda w, h: sent.append((w, h)), clock=clock, **kw), sent, clock


def test_sent_once_at_connect_then_300ms_after_the_last_resize():
    r, sent, clock = _resizer()
    assert r.tick(7, True, (1024, 768)) is None and sent == [(1024, 768)]    # connect: at once
    assert r.tick(7, True, (1024, 768)) is None and sent == [(1024, 768)]    # nothing new
    # a drag: many sizes in quick succession, each restarting the wait
    for i, size in enumerate([(1100, 768), (1200, 800), (1280, 800)]):
        clock.t += 0.1
        assert abs(r.tick(7, True, size) - 0.3) < 1e-9
    clock.t += 0.29
    assert r.tick(7, True, (1280, 800)) is not None and sent == [(1024, 768)]
    clock.t += 0.011
    assert r.tick(7, True, (1280, 800)) is None and sent == [(1024, 768), (1280, 800)]
    clock.t += 5
    r.tick(7, True, (1280, 800))
    assert sent == [(1024, 768), (1280, 800)]


def test_a_new_session_gets_the_size_again_and_hosts_that_cannot_get_nothing():
    r, sent, clock = _resizer()
    r.tick(None, False, (800, 600))                  # waiting for the host
    r.tick(1, False, (800, 600))                     # a B7 host (no WINDOWSIZE feature)
    assert sent == []
    r.tick(2, True, (800, 600))
    r.tick(3, True, (800, 600))                      # the host restarted: a new session
    assert sent == [(800, 600), (800, 600)]


def test_odd_states_are_not_sent_and_the_option_turns_it_off():
    r, sent, clock = _resizer()
    r.tick(1, True, (0, 0))                          # minimised at connect
    assert sent == []
    r.tick(1, True, (640, 480))
    clock.t += 0.3
    r.tick(1, True, (640, 480))
    assert sent == [(640, 480)]
    off, sent_off, _ = _resizer(enabled=False)
    off.tick(1, True, (640, 480))
    assert sent_off == []


def test_errors_are_logged_once_and_never_raised(caplog):
    clock = Clock()

    def fail(w, h):
        raise RuntimeError("the host's queue is full")
    r = GuestResizer(fail, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="kvmfr_client.viewer.guest_res"):
        r.tick(1, True, (640, 480))
        for size in [(700, 500), (800, 600)]:
            r.tick(1, True, size)
            clock.t += 0.5
            r.tick(1, True, size)
    assert r.errors == 3 and r.sent == []
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1 and "640x480" in warnings[0].getMessage()
