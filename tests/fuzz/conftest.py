"""The fuzz_runs fixture: every fuzz target started at once (see runs.py)."""

from __future__ import annotations

import pytest

from .runs import NATIVE_TARGETS, PYTHON_TARGETS, REPO, FuzzRun, start_native, start_python, missing_atheris, missing_clang


@pytest.fixture(scope="session")
def fuzz_runs(tmp_path_factory):
    """Every target whose tools are here, started at once: {"native:reader": FuzzRun, ...}. A test
    whose tools are missing fails through runs.require() before it asks."""
    runs: dict[str, FuzzRun] = {}
    try:
        for target in NATIVE_TARGETS if missing_clang() is None else []:
            runs[f"native:{target}"] = FuzzRun(start_native(target), REPO)
        for name in PYTHON_TARGETS if missing_atheris() is None else []:
            workdir = tmp_path_factory.mktemp(f"fuzz_{name}")
            runs[f"python:{name}"] = FuzzRun(start_python(name, workdir), workdir)
        yield runs
    finally:
        for run in runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.communicate()
