"""CI's fuzzing run (the fixture is in conftest.py): every target of fuzz/native (libFuzzer under AddressSanitizer and
UndefinedBehaviorSanitizer, through scripts/fuzz.sh) and of fuzz/python (atheris) fuzzes for
KVMFR_FUZZ_SECONDS (30) of wall time. The targets are started together, niced, either on first use or
early (tests/conftest.py starts them when the suite reaches tests/config, whose tests mostly wait on
child processes), so the whole run costs about one target's time on CI's two cores, overlapped with
other tests, instead of the sum; each target gets a share of the CPU for its full time, and its test
checks its own result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("KVMFR_FUZZ_SECONDS", "30"))
NATIVE_TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in (REPO / "fuzz" / "native").glob("fuzz_*.c"))
PYTHON_TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in (REPO / "fuzz" / "python").glob("fuzz_*.py"))
# The native build (clang, ASan) comes before its fuzzing time; the Python targets start at once.
WAIT_S = SECONDS + 240


@dataclass
class FuzzRun:
    proc: subprocess.Popen
    workdir: Path       # the Python targets' artifacts (crash-*, ...) and scratch corpus
    out: str = ""
    err: str = ""
    done: bool = False

    def result(self) -> "FuzzRun":
        if not self.done:
            try:
                self.out, self.err = self.proc.communicate(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.out, self.err = self.proc.communicate()
                pytest.fail(f"fuzz run still going after {WAIT_S} s:\n{self.err[-3000:]}", pytrace=False)
            self.done = True
        return self


def start_native(target: str) -> subprocess.Popen:
    return subprocess.Popen(["nice", "-n", "10", str(REPO / "scripts" / "fuzz.sh"), "--seconds", str(SECONDS), target],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_python(name: str, workdir: Path) -> subprocess.Popen:
    scratch = workdir / "corpus"
    scratch.mkdir()
    fuzz = REPO / "fuzz" / "python"
    return subprocess.Popen(
        [sys.executable, str(fuzz / f"fuzz_{name}.py"), f"-max_total_time={SECONDS}", "-print_final_stats=1",
         f"-artifact_prefix={workdir}/", str(scratch), str(fuzz / "corpus" / name)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def missing_clang() -> str | None:
    import shutil

    if any(shutil.which(name) for name in ("clang-14", "clang")):
        return None
    return "clang is not installed: apt-get install $(cat scripts/deps/apt-test-fuzz.txt)"


def missing_atheris() -> str | None:
    import importlib.util

    if importlib.util.find_spec("atheris") is not None:
        return None
    return "atheris is not installed: `.venv/bin/python -m pip install -e '.[test]'`"


def require(missing: str | None) -> None:
    if missing:
        pytest.fail(missing, pytrace=False)


class FuzzPool:
    """Every target whose tools are here, started once: runs = {"native:reader": FuzzRun, ...}."""

    def __init__(self):
        self.runs: dict[str, FuzzRun] = {}
        self.started = False
        self._tmp: Path | None = None

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        self._tmp = Path(tempfile.mkdtemp(prefix="kvmfr-fuzz-"))
        for target in NATIVE_TARGETS if missing_clang() is None else []:
            self.runs[f"native:{target}"] = FuzzRun(start_native(target), REPO)
        for name in PYTHON_TARGETS if missing_atheris() is None else []:
            workdir = self._tmp / f"fuzz_{name}"
            workdir.mkdir()
            self.runs[f"python:{name}"] = FuzzRun(start_python(name, workdir), workdir)

    def close(self) -> None:
        for run in self.runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.communicate()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


POOL = FuzzPool()
