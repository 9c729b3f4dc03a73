"""cffi (API mode) build of the native helper, run by `pip install .` through setup.py's cffi_modules.

The cdef is read from native/wire.h, native/wire_master.h and native/kv_api.h themselves, so the layouts and constants
Python sees are the ones the C code was compiled with.
"""

import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADERS = ("wire.h", "wire_master.h", "kv_api.h", "scream_rx.h", "resample.h")
SOURCES = ("common.c", "guard.c", "lgmp_client.c", "lgmp_producer.c", "scream_rx.c", "resample.c")


def cdef_text() -> str:
    text = "\n".join((HERE / name).read_text() for name in HEADERS)
    # cdef understands "#define NAME integer" but no other preprocessor lines.
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#") or re.match(r"\s*#define\s+\w+\s+\S+", ln)]
    return "\n".join(lines)


ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "kvmfr_client.core._native",
    '#include "kv_internal.h"\n#include "scream_rx.h"\n#include "resample.h"\n',
    sources=[f"native/{name}" for name in SOURCES],
    include_dirs=["native"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"],
    libraries=["pthread", "m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
