"""The demo guest's key printer: an input device that goes away is dropped, not the end of the printer."""

from __future__ import annotations

import errno
import os

from kvmfr_client.vm import guest_keys


def test_a_device_that_went_away_is_closed_and_dropped(monkeypatch, capsys):
    r, w = os.pipe()
    os.close(w)
    fds = {r: "/dev/input/event7"}
    real_read = os.read

    def gone(fd, n):
        if fd == r:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return real_read(fd, n)

    monkeypatch.setattr(guest_keys.os, "read", gone)
    assert guest_keys._read(r, fds) == b""
    assert fds == {}
    assert "GUEST /dev/input/event7 went away" in capsys.readouterr().out
    try:
        os.fstat(r)
    except OSError as exc:
        assert exc.errno == errno.EBADF   # closed
    else:
        raise AssertionError("the fd was left open")
