"""``soak.sh vandal --asan``: the readers run with the native helper built with AddressSanitizer.

native/ is not touched: a second copy of the cffi module is compiled into a temporary folder from the
same cdef and sources native/build_ffi.py names (its ``cdef_text()``, ``SOURCES``), with
``-fsanitize=address`` added. The readers then import the package from a shadow tree (symlinks to
the real files, except ``kvmfr_client/core/_native*.so``, which is the sanitized build), with libasan
preloaded into Python. ASan writes its reports to files in the soak's folder; any report fails the soak.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .children import PYTHON, REPO
from .report import Criterion

NATIVE = REPO / "native"
ASAN_FLAGS = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1"]


def _build_ffi_module():
    spec = importlib.util.spec_from_file_location("kvmfr_build_ffi", NATIVE / "build_ffi.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class AsanBuild:
    def __init__(self, root: Path, libasan: str):
        self.root, self.libasan = root, libasan
        self.tree = root / "tree"
        self.reports = root / "reports"
        self.cwd = str(self.tree)

    @classmethod
    def create(cls, log=print) -> "AsanBuild":
        from .rig import SoakSetupError
        libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip() \
            if shutil.which("gcc") else ""
        if not libasan or not os.path.isabs(libasan) or not os.path.exists(libasan):
            raise SoakSetupError("gcc with AddressSanitizer (libasan) is needed for --asan: apt-get install gcc")
        build = cls(Path(tempfile.mkdtemp(prefix="kvmfr-soak-asan-")), os.path.realpath(libasan))
        try:
            build._compile(log)
            build._shadow_tree()
            build._check()
        except BaseException:
            build.close()
            raise
        return build

    def _compile(self, log) -> None:
        from cffi import FFI
        b = _build_ffi_module()
        ffi = FFI()
        ffi.cdef(b.cdef_text())
        ffi.set_source("kvmfr_client.core._native", b.PREAMBLE,
                       sources=[str(NATIVE / name) for name in b.SOURCES], include_dirs=[str(NATIVE)],
                       extra_compile_args=["-std=gnu11", "-fno-strict-aliasing"] + ASAN_FLAGS,
                       extra_link_args=["-fsanitize=address"], libraries=b.LIBRARIES)
        log("soak: building the native helper with AddressSanitizer ...")
        self.so = Path(ffi.compile(tmpdir=str(self.root / "build"), verbose=False))

    def _shadow_tree(self) -> None:
        pkg = self.tree / "kvmfr_client"
        core = pkg / "core"
        core.mkdir(parents=True)
        for entry in (REPO / "kvmfr_client").iterdir():
            if entry.name not in ("core", "__pycache__"):
                (pkg / entry.name).symlink_to(entry)
        for entry in (REPO / "kvmfr_client" / "core").iterdir():
            if not entry.name.startswith("_native") and entry.name != "__pycache__":
                (core / entry.name).symlink_to(entry)
        shutil.copy2(self.so, core / self.so.name)
        (self.tree / "shaders").symlink_to(REPO / "shaders")
        self.reports.mkdir()

    def env(self) -> dict:
        env = dict(os.environ)
        env["LD_PRELOAD"] = self.libasan
        # Python's own allocations are not ours to judge (leaks at exit), the helper's out-of-bounds are.
        env["ASAN_OPTIONS"] = f"detect_leaks=0:halt_on_error=1:abort_on_error=0:log_path={self.reports}/asan"
        env["PYTHONPATH"] = str(self.tree)
        return env

    def _check(self) -> None:
        from .rig import SoakSetupError
        env = self.env() | {"PYTHONPATH": f"{self.tree}{os.pathsep}{REPO}"}
        out = subprocess.run([PYTHON, "-c", "import kvmfr_client.core._native as n; print(n.__file__)"],
                             cwd=self.tree, env=env, capture_output=True, text=True, timeout=60)
        path = out.stdout.strip()
        if out.returncode != 0 or not path.startswith(str(self.tree)):
            raise SoakSetupError(f"the AddressSanitizer build is not the one Python loads ({path or out.stderr[-200:]})")
        nm = subprocess.run(["nm", "-D", path], capture_output=True, text=True)
        if "__asan" not in nm.stdout:
            raise SoakSetupError(f"{path} has no AddressSanitizer instrumentation")

    def report_files(self) -> list[Path]:
        return sorted(self.reports.glob("asan*")) if self.reports.exists() else []

    def check_reports(self, report) -> None:
        files = self.report_files()
        first = ""
        if files:
            lines = files[0].read_text(errors="replace").splitlines()
            first = next((ln for ln in lines if "ERROR: AddressSanitizer" in ln), lines[0] if lines else "")
        if report is not None:
            report.extra["asan_reports"] = [f.read_text(errors="replace")[:4000] for f in files[:3]]
            report.add(Criterion("ASan: no report from the native helper (no read outside the mapping)",
                                 not files, f"{len(files)} reports" + (f": {first.strip()[:160]}" if first else "")))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
