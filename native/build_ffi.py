"""cffi (API mode) build of the native helper, run by `pip install .` through setup.py's cffi_modules.

The cdef is read from the headers in HEADERS themselves (wire.h, wire_master.h, kv_api.h, scream_rx.h,
resample.h), so the layouts and constants Python sees are the ones the C code was compiled with.
"""

import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADERS = ("wire.h", "wire_master.h", "kv_api.h", "scream_rx.h", "resample.h", "scream_pump.h")
SOURCES = ("common.c", "guard.c", "lgmp_client.c", "lgmp_producer.c", "scream_rx.c", "resample.c", "scream_pump.c")


def cdef_text() -> str:
    text = "\n".join((HERE / name).read_text() for name in HEADERS)
    # cdef understands "#define NAME integer" but no other preprocessor lines.
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#") or re.match(r"\s*#define\s+\w+\s+\S+", ln)]
    return "\n".join(lines)


# What the generated module includes and links: the headers behind the cdef, libm for the resampler.
PREAMBLE = "".join(f'#include "{name}"\n' for name in ("kv_internal.h", "scream_rx.h", "resample.h", "scream_pump.h"))
LIBRARIES = ["pthread", "m"]

ffibuilder = FFI()
ffibuilder.cdef(cdef_text())
ffibuilder.set_source(
    "kvmfr_client.core._native",
    PREAMBLE,
    sources=[f"native/{name}" for name in SOURCES],
    include_dirs=["native"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"],
    libraries=LIBRARIES,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
