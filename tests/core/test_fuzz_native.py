"""CI's fuzzing run: each native target (fuzz/native/fuzz_*.c) for 60 s under AddressSanitizer and
UndefinedBehaviorSanitizer through scripts/fuzz.sh; any finding fails. Findings of longer runs live on
as regression tests in test_fuzz_regressions.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("KVMFR_FUZZ_SECONDS", "60"))
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in (REPO / "fuzz" / "native").glob("fuzz_*.c"))


def _clang() -> str:
    for name in ("clang-14", "clang"):
        if shutil.which(name):
            return name
    message = "clang is not installed: apt-get install $(cat scripts/deps/apt-test-fuzz.txt)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 240)
@pytest.mark.parametrize("target", TARGETS)
def test_native_target_runs_without_findings(target):
    _clang()
    proc = subprocess.run(["nice", "-n", "10", str(REPO / "scripts" / "fuzz.sh"), "--seconds", str(SECONDS), target],
                          cwd=REPO, capture_output=True, text=True, timeout=SECONDS + 200)
    assert proc.returncode != 2, f"fuzz.sh could not run:\n{proc.stderr[-3000:]}"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(target)), "")
    m = re.search(r"(\d+) executions .* (\d+) finding", line)
    assert m, f"no summary line for {target}:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    executions, findings = int(m.group(1)), int(m.group(2))
    assert findings == 0 and proc.returncode == 0, f"{target}: {line}\n{proc.stderr[-4000:]}"
    assert executions > 1000, f"{target} hardly ran: {line}"
