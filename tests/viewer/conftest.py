from __future__ import annotations

import pytest

from tests.viewer.helpers import Script


@pytest.fixture
def script(tmp_path):
    """script(win=(w, h), **RenderOptions) -> a render Script in this test's tmp dir."""
    def make(win, **options):
        return Script(tmp_path, tuple(win), **options)
    return make
