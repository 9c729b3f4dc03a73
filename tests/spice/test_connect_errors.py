"""Why a SPICE connection failed, in the user's words: one place (kvmfr_client.spice.link) words it for the
window, kvmfr-input and kvmfr-audio's SPICE playback; the library's text ("Connect call failed (...)", the
resolver's "Name or service not known", errno numbers) only in the debug log."""

from __future__ import annotations

import asyncio
import errno

import pytest

from kvmfr_client.spice.errors import SpiceConnectError
from kvmfr_client.spice.link import Address, open_stream
from tests.spice.conftest import run_cli
from tests.support.vm import free_port

LIBRARY_TEXT = ("Connect call failed", "Name or service not known", "Errno", "Temporary failure", "gaierror")


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    for text in LIBRARY_TEXT:
        assert text not in lines[0], lines[0]
    return lines[0]


def test_nothing_listening_names_the_address_and_the_qemu_option():
    port = free_port()
    out = run_cli("--spice", f"127.0.0.1:{port}", "key", "a")
    assert out.returncode == 1
    assert _one_line(out.stderr) == (f"kvmfr-input: nothing is listening on 127.0.0.1:{port} (connection refused); "
                                     f"is QEMU running with -spice port={port}?")


def test_the_library_text_is_in_the_debug_log_only():
    port = free_port()
    out = run_cli("-v", "--spice", f"127.0.0.1:{port}", "key", "a")
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert lines[-1].startswith("kvmfr-input: nothing is listening on"), out.stderr
    assert any("Connect call failed" in line for line in lines[:-1]), out.stderr   # -v: what the library said


def test_a_host_name_that_does_not_resolve():
    out = run_cli("--spice", "no-such-host.invalid:5900", "key", "a", timeout=60)
    assert out.returncode == 1
    line = _one_line(out.stderr)
    assert line.startswith("kvmfr-input: cannot resolve host name 'no-such-host.invalid'") and \
        line.endswith("check spice:host"), line


def test_a_missing_unix_socket(tmp_path):
    path = tmp_path / "spice.sock"
    out = run_cli("--spice", f"unix:{path}", "key", "a")
    assert out.returncode == 1
    assert _one_line(out.stderr) == (f"kvmfr-input: no SPICE socket at {path}; is QEMU running with "
                                     f"-spice unix=on,addr={path}?")


def _connect_error(monkeypatch, failure, timeout: float = 5.0) -> str:
    """What open_stream says when the connect itself fails with ``failure`` (an exception, or "hang")."""
    async def fake_open_connection(host, port, **kw):
        if failure == "hang":   # a host that drops our packets: no answer at all
            await asyncio.sleep(3600)
        raise failure

    monkeypatch.setattr(asyncio, "open_connection", fake_open_connection)
    with pytest.raises(SpiceConnectError) as info:
        asyncio.run(open_stream(Address("192.0.2.7", 5900), timeout))
    message = str(info.value)
    for text in LIBRARY_TEXT:
        assert text not in message, message
    return message


def test_no_answer_within_the_timeout(monkeypatch):
    message = _connect_error(monkeypatch, "hang", timeout=0.2)
    assert message.startswith("no answer from 192.0.2.7:5900 within 0.2 s"), message
    assert "spice:host" in message and "spice:port" in message, message


@pytest.mark.parametrize("code", [errno.ENETUNREACH, errno.EHOSTUNREACH])
def test_an_unreachable_host(monkeypatch, code):
    message = _connect_error(monkeypatch, OSError(code, "Connect call failed ('192.0.2.7', 5900)"))
    assert message == "192.0.2.7 cannot be reached from here (no route to it): check spice:host and the network"


def test_several_addresses_that_all_failed(monkeypatch):
    """localhost as ::1 and 127.0.0.1, both refused with different texts: Python 3.11 joins them in one
    OSError without an errno; still a refusal in words."""
    joined = OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5900, 0, 0), "
                     "[Errno 111] Connect call failed ('192.0.2.7', 5900)")
    assert _connect_error(monkeypatch, joined).startswith("nothing is listening on 192.0.2.7:5900 (connection refused)")
