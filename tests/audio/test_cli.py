"""``kvmfr-audio``, the windowless player, run as a user would: a subprocess with its options."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from guest_agent.audio.scream_sender import ScreamUdpSender
from kvmfr_client.audio import formats
from kvmfr_client.audio.formats import PcmFormat
from tests.audio.signals import CHANNEL_TONES, PacedSender, tones
from tests.audio.test_scream_udp import FL, FR, _assert_tones
from tests.audio.helpers import _result
from tests.support.vm import free_port
from tests.support.process import stop_process


def _kvmfr_audio(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvmfr_client.audio.cli", *args]


def test_kvmfr_audio_plays_scream_udp_and_stops_on_sigterm(pulse):
    port = free_port(udp=True)
    proc = subprocess.Popen(_kvmfr_audio("--scream", f"udp://127.0.0.1:{port}", "--sink", pulse.sink48,
                                         "--server", pulse.server, "--latency", "40", "--stats", "0.5"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)  # interpreter start-up
        assert proc.poll() is None, proc.stdout.read()
        fmt = PcmFormat(48000, 16, 2, 0x3)
        signal_ = tones(48000, 1.2, CHANNEL_TONES[:2])
        sender = ScreamUdpSender(fmt, "127.0.0.1", port)
        pcm = formats.encode(fmt, signal_)
        with pulse.recorder(pulse.sink48) as rec:
            time.sleep(0.1)
            paced = PacedSender(lambda c: sender.send_raw(sender._header + c), pcm, 1152, 1152 / 4 / 48000).start()
            paced.join()
            time.sleep(0.4)
        sender.close()
        res = _result(rec, signal_, fmt, paced.send_times, {})
        _assert_tones(res, [FL, FR])
    finally:
        out = stop_process(proc)   # SIGTERM: the stop this test is about
    assert proc.returncode == 0, out
    assert "stats:" in out and "'packets': " in out


def test_kvmfr_audio_lists_sinks(pulse):
    out = subprocess.run(_kvmfr_audio("--list-sinks", "--server", pulse.server), capture_output=True, text=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr
    assert pulse.sink48 in out.stdout and pulse.sink44 in out.stdout


@pytest.mark.parametrize("args,message", [
    ((), "nothing to play"),
    (("--scream", "tcp://1.2.3.4:5"), "udp://"),
    (("--scream", "udp://127.0.0.1:0", "--latency", "-5"), "audio:latency: must be 1..1000 milliseconds"),
    # Every numeric flag: 0, negatives and non-numbers are one line and status 2, like the option.
    (("--scream", "udp://127.0.0.1:0", "--latency", "0"), "audio:latency: must be 1..1000 milliseconds, got 0"),
    (("--scream", "udp://127.0.0.1:0", "--max-latency", "0"), "audio:maxLatency: must be 1..10000 milliseconds, got 0"),
    (("--scream", "udp://127.0.0.1:0", "--max-latency", "-20"), "audio:maxLatency: must be 1..10000 milliseconds"),
    (("--scream", "udp://127.0.0.1:0", "--latency", "fast"), "audio:latency: must be 1..1000 milliseconds, got fast"),
    (("--scream", "udp://127.0.0.1:0", "--stats", "-1"), "--stats: must be 0 (off) or 0.1..86400 seconds"),
    (("--scream", "udp://127.0.0.1:0", "--sink", "no_such_sink"), "no sink named"),
])
def test_kvmfr_audio_explains_bad_options(pulse, args, message):
    out = subprocess.run(_kvmfr_audio(*args, "--server", pulse.server), capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert message in out.stderr
    if "must be" in message:   # a bad number: exits.USAGE and exactly one line, no traceback
        assert out.returncode == 2, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
