"""What the Python fuzz targets share: the input framing and the libFuzzer entry point.

Not a target itself (scripts/fuzz.sh runs ``fuzz/python/fuzz_*.py``). Each target is run as
``.venv/bin/python fuzz/python/fuzz_X.py [libFuzzer flags] [CORPUS_DIR...]``; atheris reports any
exception that escapes ``TestOneInput`` as a finding, so each target catches exactly the parser's
documented "refused" exception and nothing else.
"""

from __future__ import annotations

import logging
import struct
import sys

import atheris


class _FormatEveryRecord(logging.Handler):
    """Formats every log record (DEBUG too) and prints nothing: a log call whose arguments do not fit its
    format string raises here, so it is a finding instead of a "--- Logging error ---" at run time."""

    def emit(self, record: logging.LogRecord) -> None:
        record.getMessage()

    def handleError(self, record: logging.LogRecord) -> None:
        raise


logging.basicConfig(level=logging.DEBUG, handlers=[_FormatEveryRecord()], force=True)

RECORD = struct.Struct("<BBH")  # kind, a small argument, length of the bytes that follow


def records(data: bytes):
    """Split an input into (kind, arg, bytes) records: the framing every target's corpus uses, so seeds
    can be written by hand (see make_seeds.py) and the fuzzer mutates one message at a time."""
    pos = 0
    while pos + RECORD.size <= len(data):
        kind, arg, length = RECORD.unpack_from(data, pos)
        pos += RECORD.size
        yield kind, arg, data[pos:pos + length]
        pos += length


def record(kind: int, arg: int, payload: bytes) -> bytes:
    return RECORD.pack(kind, arg, len(payload)) + payload


def main(test_one_input) -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
