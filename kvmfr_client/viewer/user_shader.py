"""User GLSL shaders in mpv's hook syntax (``eglFilter:glslPath``): the common subset, parsed into passes.

A file is a list of passes, each a block of ``//!`` directives followed by GLSL defining ``vec4 hook()``:

    //!DESC what it does             (shown in logs)
    //!HOOK MAIN                     MAIN, LUMA, NATIVE, RGB, PREKERNEL or OUTPUT: all mean the picture here
    //!BIND HOOKED                   textures the pass reads: HOOKED, MAIN, LUMA or a name SAVEd earlier
    //!SAVE NAME                     keep the output under NAME instead of replacing the picture
    //!WIDTH HOOKED.w 2 *            output size, in mpv's reverse-Polish arithmetic (+ - * / > < = !,
    //!HEIGHT HOOKED.h 2 *           NAME.w/.width, NAME.h/.height; OUTPUT is the picture's size in the
                                     window, NATIVE the frame's); default: the hooked picture's size
    //!COMPONENTS 2                  accepted (outputs are always RGBA, 16-bit float)
    //!WHEN expr                     the pass runs when the expression is non-zero

Each bound NAME gives the GLSL ``NAME_raw`` (sampler2D), ``NAME_tex(pos)``, ``NAME_texOff(offset_px)``,
``NAME_pos``, ``NAME_size``, ``NAME_pt`` and ``NAME_mul``, plus ``target_size``, ``input_size`` and ``frame``.
Our picture is RGB: a LUMA hook sees the whole picture, not a separate luma plane. Unsupported directives
(``//!TEXTURE``, ``//!PARAM``, ``//!BUFFER``, compute passes) are refused with the line that has them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PICTURE_HOOKS = {"MAIN", "LUMA", "NATIVE", "RGB", "PREKERNEL", "OUTPUT", "SCALED", "LINEAR", "SIGMOID"}
_UNSUPPORTED = {"TEXTURE", "PARAM", "BUFFER", "COMPUTE", "OFFSET"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class UserShaderError(ValueError):
    """A user shader file that cannot be used; the message names the file and line."""


@dataclass
class HookPass:
    desc: str = ""
    hook: str = "MAIN"
    binds: list[str] = field(default_factory=list)
    save: str | None = None
    width: str | None = None
    height: str | None = None
    when: str | None = None
    components: int = 4
    body: str = ""
    line: int = 0        # where the pass starts in the file (1-based)
    body_line: int = 0   # the file line of the body's first line


def parse(text: str, origin: str = "shader") -> list[HookPass]:
    passes: list[HookPass] = []
    cur: HookPass | None = None
    code: list[str] = []

    def close() -> None:
        if cur is not None:
            cur.body = "\n".join(code)
            if "hook" not in cur.body:
                raise UserShaderError(f"{origin}:{cur.line}: pass {cur.desc or cur.hook!r} defines no vec4 hook()")
            passes.append(cur)

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("//!"):
            if cur is None or any(c.strip() for c in code):
                close()
                cur, code = HookPass(line=n), []
            word, _, rest = line[3:].partition(" ")
            word, rest = word.upper(), rest.strip()
            if word == "DESC":
                cur.desc = rest
            elif word == "HOOK":
                if rest not in PICTURE_HOOKS:
                    raise UserShaderError(f"{origin}:{n}: //!HOOK {rest}: only the picture's hooks are supported "
                                          f"({', '.join(sorted(PICTURE_HOOKS))})")
                cur.hook = rest
            elif word == "BIND":
                if not _NAME.match(rest):
                    raise UserShaderError(f"{origin}:{n}: //!BIND needs a texture name, got {rest!r}")
                cur.binds.append(rest)
            elif word == "SAVE":
                if not _NAME.match(rest):
                    raise UserShaderError(f"{origin}:{n}: //!SAVE needs a texture name, got {rest!r}")
                cur.save = rest
            elif word in ("WIDTH", "HEIGHT", "WHEN"):
                setattr(cur, word.lower(), rest)
            elif word == "COMPONENTS":
                try:
                    cur.components = int(rest)
                except ValueError:
                    raise UserShaderError(f"{origin}:{n}: //!COMPONENTS needs 1..4, got {rest!r}") from None
            elif word in _UNSUPPORTED:
                raise UserShaderError(f"{origin}:{n}: //!{word} is not supported here (see docs/filters.md)")
            else:
                raise UserShaderError(f"{origin}:{n}: unknown directive //!{word}")
        else:
            if cur is None:
                if line and not line.startswith("//"):
                    raise UserShaderError(f"{origin}:{n}: code before the first //!HOOK block")
                continue
            if not code:
                cur.body_line = n
            code.append(raw)
    close()
    if not passes:
        raise UserShaderError(f"{origin}: no //!HOOK passes in the file")
    return passes


def load(path: str | Path) -> list[HookPass]:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserShaderError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path))


def evaluate(expr: str, sizes: dict[str, tuple[int, int]], where: str = "") -> float:
    """mpv's reverse-Polish size/condition expression: ``HOOKED.w 2 *``."""
    stack: list[float] = []
    for tok in expr.split():
        if tok in ("+", "-", "*", "/", ">", "<", "="):
            if len(stack) < 2:
                raise UserShaderError(f"{where}: {expr!r}: {tok} needs two values")
            b, a = stack.pop(), stack.pop()
            if tok == "/" and b == 0:
                raise UserShaderError(f"{where}: {expr!r}: division by zero")
            stack.append({"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0,
                          ">": float(a > b), "<": float(a < b), "=": float(a == b)}[tok])
        elif tok == "!":
            if not stack:
                raise UserShaderError(f"{where}: {expr!r}: ! needs a value")
            stack.append(float(not stack.pop()))
        elif "." in tok and not tok[0].isdigit() and not tok.startswith("."):
            name, _, comp = tok.partition(".")
            if name not in sizes:
                raise UserShaderError(f"{where}: {expr!r}: unknown texture {name}")
            if comp in ("w", "width"):
                stack.append(float(sizes[name][0]))
            elif comp in ("h", "height"):
                stack.append(float(sizes[name][1]))
            else:
                raise UserShaderError(f"{where}: {expr!r}: {tok}: expected .w or .h")
        else:
            try:
                stack.append(float(tok))
            except ValueError:
                raise UserShaderError(f"{where}: {expr!r}: cannot read {tok!r}") from None
    if len(stack) != 1:
        raise UserShaderError(f"{where}: {expr!r}: leaves {len(stack)} values, expected one")
    return stack[0]


def glsl(p: HookPass) -> str:
    """The fragment shader for pass ``p`` (the user's code between our declarations and ``main``)."""
    out = ["#version 330 core",
           "out vec4 kvmfr_out;",
           "uniform vec2 target_size;",
           "uniform vec2 input_size;",
           "uniform int frame;",
           "#define kvmfr_pos (gl_FragCoord.xy / target_size)"]
    names = list(dict.fromkeys(p.binds))
    for name in names:
        out += [f"uniform sampler2D {name}_raw;",
                f"uniform vec2 {name}_size;",
                f"uniform vec2 {name}_pt;",
                f"#define {name}_pos kvmfr_pos",
                f"#define {name}_mul 1.0",
                f"#define {name}_off vec2(0.0)",
                f"#define {name}_rot mat2(1.0, 0.0, 0.0, 1.0)",
                # textureLod: see shaders/present.frag on Mesa's plain texture() path
                f"#define {name}_tex(pos) textureLod({name}_raw, (pos), 0.0)",
                f"#define {name}_texOff(off) {name}_tex({name}_pos + {name}_pt * vec2(off))"]
    out.append(f"#line {max(p.body_line, 1)}")
    out.append(p.body)
    out.append("void main() { kvmfr_out = hook(); }")
    return "\n".join(out) + "\n"
