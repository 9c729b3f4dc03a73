"""Issue 12 item 4 at CI size: 60 seconds of random writes into live memory while the window, the
headless reader and an API reader read; then the agent restarts and each reader must show a frame."""

from __future__ import annotations

import pytest

from tests.soak.running import run_soak
from tools.soak.vandal_soak import run_vandal

pytestmark = pytest.mark.slow   # each runs a real soak for up to ~90 s


def test_sixty_seconds_of_vandal_no_reader_crashes_hangs_or_grows_and_the_picture_comes_back():
    report = run_soak(run_vandal, 60.0, seed=12)
    assert not report.interrupted
    assert set(report.readers) == {"window", "headless", "api"}
    for name, r in report.readers.items():
        assert r["frames"], f"{name} showed no frame at all"
    writes = report.extra["vandal_writes"]
    assert sum(v for k, v in writes.items() if k != "missed") > 500, writes   # the vandal really wrote
    assert report.extra["gaps_judged"] >= 5, "too few quiet gaps with a healthy agent to judge hangs"
    assert not report.failures(), "\n" + report.table()
    # Each error kind was counted: the readers saw the vandal's damage and said so.
    assert any(report.readers[n]["errors"] for n in ("api", "headless")), report.readers
