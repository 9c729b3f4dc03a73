"""Runs one soak for a test: the same code as scripts/soak.sh (tools/soak), setup failures as test failures."""

from __future__ import annotations

import pytest

from tools.soak.rig import SoakSetupError


def run_soak(fn, *args, **kw):
    """Run one soak; a missing tool fails the test with the harness's one-line reason."""
    try:
        report = fn(*args, log=lambda line: print(line, flush=True), **kw)
    except SoakSetupError as exc:
        pytest.fail(f"the soak could not start: {exc}")
    print(report.table())
    return report
