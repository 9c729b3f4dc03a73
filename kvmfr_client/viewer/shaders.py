"""Finds the GLSL sources in the top-level ``shaders/`` folder and compiles them into programs.

The folder sits beside the package in a source tree (and an editable install); a wheel installs it
as ``<prefix>/share/kvmfr-client/shaders`` (pyproject ``data-files``).
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from pathlib import Path

import numpy as np
from OpenGL import GL


class ShaderError(RuntimeError):
    """A GLSL file that is missing or does not compile/link; the message holds the driver's log."""


def _candidates() -> list[Path]:
    here = Path(__file__).resolve()
    found = [here.parents[2] / "shaders"]
    env = os.environ.get("KVMFR_SHADER_DIR")
    if env:
        found.insert(0, Path(env))
    for prefix in {sys.prefix, sysconfig.get_path("data")}:
        found.append(Path(prefix) / "share" / "kvmfr-client" / "shaders")
    return found


@functools.cache
def shader_dir() -> Path:
    for path in _candidates():
        if (path / "quad.vert").is_file():
            return path
    raise ShaderError("GLSL shaders not found; looked in " + ", ".join(str(p) for p in _candidates())
                      + " (set KVMFR_SHADER_DIR to the shaders/ folder)")


def source(name: str) -> str:
    """A shader's text, with ``//#include file`` lines replaced by that file's text."""
    path = shader_dir() / name
    try:
        text = path.read_text()
    except OSError as exc:
        raise ShaderError(f"cannot read shader {path}: {exc}") from None
    lines = []
    for line in text.splitlines():
        if line.startswith("//#include "):
            lines.append(source(line.split(None, 1)[1].strip()))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _compile(kind: int, name: str, text: str | None = None) -> int:
    shader = GL.glCreateShader(kind)
    GL.glShaderSource(shader, source(name) if text is None else text)
    GL.glCompileShader(shader)
    if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
        log = GL.glGetShaderInfoLog(shader)
        raise ShaderError(f"{name} does not compile: {log.decode(errors='replace') if isinstance(log, bytes) else log}")
    return shader


class Program:
    """A linked program with cached uniform locations."""

    def __init__(self, vert: str, frag: str, frag_text: str | None = None):
        """``frag_text``: the fragment shader's source when it is not a file in shaders/ (a user shader);
        ``frag`` then only names it in errors."""
        self.name = frag
        vs = _compile(GL.GL_VERTEX_SHADER, vert)
        try:
            fs = _compile(GL.GL_FRAGMENT_SHADER, frag, frag_text)
        except ShaderError:
            GL.glDeleteShader(vs)
            raise
        self.id = GL.glCreateProgram()
        GL.glAttachShader(self.id, vs)
        GL.glAttachShader(self.id, fs)
        GL.glLinkProgram(self.id)
        GL.glDeleteShader(vs)
        GL.glDeleteShader(fs)
        if not GL.glGetProgramiv(self.id, GL.GL_LINK_STATUS):
            log = GL.glGetProgramInfoLog(self.id)
            raise ShaderError(f"{vert} + {frag} do not link: {log!r}")
        self._loc: dict[str, int] = {}
        # The value each uniform was last given through this object (uniforms are the program's own state, and
        # every value is set through here): an unchanged value is not sent again. The cursor sets the same
        # ones every redraw, and on llvmpipe each glUniform* after the frame's blit costs 5-40 us of CPU.
        self._set: dict[str, object] = {}

    def loc(self, uniform: str) -> int:
        if uniform not in self._loc:
            self._loc[uniform] = GL.glGetUniformLocation(self.id, uniform)
        return self._loc[uniform]

    def use(self) -> None:
        GL.glUseProgram(self.id)

    def _changed(self, uniform: str, value) -> bool:
        if self._set.get(uniform) == value:
            return False
        self._set[uniform] = value
        return True

    def set_int(self, uniform: str, value: int) -> None:
        value = int(value)
        if self._changed(uniform, value):
            GL.glUniform1i(self.loc(uniform), value)

    def set_float(self, uniform: str, value: float) -> None:
        value = float(value)
        if self._changed(uniform, value):
            GL.glUniform1f(self.loc(uniform), value)

    def set_vec2(self, uniform: str, x: float, y: float) -> None:
        value = (float(x), float(y))
        if self._changed(uniform, value):
            GL.glUniform2f(self.loc(uniform), *value)

    def set_ivec2(self, uniform: str, x: int, y: int) -> None:
        value = (int(x), int(y))
        if self._changed(uniform, value):
            GL.glUniform2i(self.loc(uniform), *value)

    def delete(self) -> None:
        GL.glDeleteProgram(self.id)

    def set_mat3(self, uniform: str, m) -> None:
        m = np.ascontiguousarray(m, np.float32)
        if self._changed(uniform, m.tobytes()):
            # numpy is row-major; GLSL mat3 is column-major: transpose on upload.
            GL.glUniformMatrix3fv(self.loc(uniform), 1, GL.GL_TRUE, m)
