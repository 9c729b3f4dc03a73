"""Each native target (fuzz/native/fuzz_*.c) fuzzes for KVMFR_FUZZ_SECONDS (30 s) under AddressSanitizer and
UndefinedBehaviorSanitizer through scripts/fuzz.sh (started with the others by the fuzz_runs fixture);
any finding fails. Findings of longer runs live on as seeds in fuzz/native/corpus, replayed first."""

from __future__ import annotations

import re

import pytest

from .runs import missing_clang, require, NATIVE_TARGETS


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("target", NATIVE_TARGETS)
def test_native_target_runs_without_findings(target, fuzz_runs):
    require(missing_clang())
    run = fuzz_runs[f"native:{target}"].result()
    assert run.proc.returncode != 2, f"fuzz.sh could not run:\n{run.err[-3000:]}"
    line = next((ln for ln in run.out.splitlines() if ln.startswith(target)), "")
    m = re.search(r"(\d+) executions .* (\d+) finding", line)
    assert m, f"no summary line for {target}:\n{run.out}\n{run.err[-3000:]}"
    executions, findings = int(m.group(1)), int(m.group(2))
    assert findings == 0 and run.proc.returncode == 0, f"{target}: {line}\n{run.err[-4000:]}"
    assert executions > 1000, f"{target} hardly ran: {line}"
