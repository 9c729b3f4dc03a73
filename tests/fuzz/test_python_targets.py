"""The Python fuzz targets (fuzz/python/fuzz_*.py, atheris) fuzz for KVMFR_FUZZ_SECONDS (30 s) each (started with the others
by the fuzz_runs fixture) and must end with no finding. ``KVMFR_FUZZ_SECONDS`` changes the time per
target (scripts/fuzz.sh runs them for longer).

New inputs go to a scratch corpus, the committed seeds are only read; a finding leaves its input in the
run's temporary directory (the failure message names it) to turn into a regression test."""

from __future__ import annotations

import re

import pytest

from .runs import missing_atheris, require, PYTHON_TARGETS, REPO, SECONDS

FUZZ = REPO / "fuzz" / "python"


def test_every_parser_of_untrusted_input_has_a_target_and_seeds():
    assert set(PYTHON_TARGETS) >= {"scream_udp", "scream_ivshmem", "spice_messages"}, PYTHON_TARGETS
    for name in PYTHON_TARGETS:
        assert any((FUZZ / "corpus" / name).iterdir()), f"fuzz/python/corpus/{name} has no seeds"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", PYTHON_TARGETS)
def test_fuzz_target_finds_nothing(name, fuzz_runs, record_property):
    require(missing_atheris())
    run = fuzz_runs[f"python:{name}"].result()
    out = run.out + run.err
    findings = sorted(p.name for p in run.workdir.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-")))
    tail = "\n".join(line for line in out.splitlines() if not line.startswith('"'))[-4000:]
    assert run.proc.returncode == 0 and not findings, (
        f"fuzz_{name} found a problem (exit {run.proc.returncode}); input(s) {findings} in {run.workdir}:\n{tail}")
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    assert runs, f"fuzz_{name} printed no statistics:\n{tail}"
    executions = int(runs.group(1))
    record_property("executions", executions)
    print(f"\nfuzz_{name}: {executions} executions in {SECONDS} s, 0 findings")
    # Sharing two cores with the other targets, a working harness still runs thousands of inputs a minute.
    assert executions > 50 * SECONDS, f"fuzz_{name} ran only {executions} inputs in {SECONDS} s: harness broken?"
