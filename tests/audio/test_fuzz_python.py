"""The Python fuzz targets (fuzz/python/fuzz_*.py, atheris) run for 60 s each, as CI does, and must end with
no finding. ``KVMFR_FUZZ_SECONDS`` changes the time per target (scripts/fuzz.sh runs them for longer).

New inputs go to a scratch corpus, the committed seeds are only read; a finding leaves its input in the
test's temporary directory (the failure message names it) to turn into a regression test."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz" / "python"
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in FUZZ.glob("fuzz_*.py"))
SECONDS = int(os.environ.get("KVMFR_FUZZ_SECONDS", "60"))


def test_every_parser_of_untrusted_input_has_a_target_and_seeds():
    assert set(TARGETS) >= {"scream_udp", "scream_ivshmem", "spice_messages"}, TARGETS
    for name in TARGETS:
        assert any((FUZZ / "corpus" / name).iterdir()), f"fuzz/python/corpus/{name} has no seeds"


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 120)
@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_target_finds_nothing(name, tmp_path, record_property):
    if importlib.util.find_spec("atheris") is None:
        pytest.fail("atheris is not installed: `.venv/bin/python -m pip install -e '.[test]'`", pytrace=False)
    scratch = tmp_path / "corpus"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, str(FUZZ / f"fuzz_{name}.py"), f"-max_total_time={SECONDS}", "-print_final_stats=1",
         f"-artifact_prefix={tmp_path}/", str(scratch), str(FUZZ / "corpus" / name)],
        capture_output=True, text=True, timeout=SECONDS + 90, cwd=ROOT)
    out = proc.stdout + proc.stderr
    findings = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-")))
    tail = "\n".join(line for line in out.splitlines() if not line.startswith('"'))[-4000:]
    assert proc.returncode == 0 and not findings, (
        f"fuzz_{name} found a problem (exit {proc.returncode}); input(s) {findings} in {tmp_path}:\n{tail}")
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    assert runs, f"fuzz_{name} printed no statistics:\n{tail}"
    executions = int(runs.group(1))
    record_property("executions", executions)
    print(f"\nfuzz_{name}: {executions} executions in {SECONDS} s, 0 findings")
    assert executions > 100 * SECONDS, f"fuzz_{name} ran only {executions} inputs in {SECONDS} s: harness broken?"
