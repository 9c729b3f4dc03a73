"""Runs a filter chain (:mod:`kvmfr_client.viewer.filters`) on the GPU: display texture -> passes -> texture.

Data path with filters on::

    display texture (8-bit RGBA, after format conversion)
      --pass 1 (shaders/filter_*.frag or a user shader) --> texture --pass 2--> ... --> chain output
    chain output --blit (same size, no rotation, 8-bit) or textured quad--> window

The chain's output is kept until the frame or the picture size changes, so cursor-only redraws do not
run the filters again. Resampling passes (downscale, easu, a user shader's //!WIDTH) work in the frame's
orientation; rotation happens in the final present. Built-in passes write 8-bit RGBA; user shader passes
16-bit float (Anime4K-style shaders keep signed values between passes).

A pass that does not compile, or a user shader that does not parse, is reported in one line on stderr
(and in :attr:`FilterChain.errors`) and left out; the rest of the chain runs.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from OpenGL import GL

from kvmfr_client.viewer import filters as flt
from kvmfr_client.viewer import user_shader
from kvmfr_client.viewer.shaders import Program, ShaderError

log = logging.getLogger(__name__)
MAX_SIDE = 16384


@dataclass
class Image:
    tex: int
    fbo: int
    w: int
    h: int
    is_float: bool = False


@dataclass
class _Stage:
    spec: dict
    programs: list          # built-in: [Program]; glsl: one Program per hook pass
    hooks: list | None = None


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return str(text).strip()


class FilterChain:
    def __init__(self, passes: list[dict], empty_vao: int, program, program_errors_to=sys.stderr):
        """``program(vert, frag)``: the renderer's cached program factory; ``empty_vao``: for the
        full-screen triangle."""
        self.empty_vao = empty_vao
        self.errors: list[str] = []
        self._err = program_errors_to
        self.stages: list[_Stage] = []
        self._targets: dict[tuple, Image] = {}
        self._key: tuple | None = None
        self._result: Image | None = None
        self.runs = 0            # how many times the passes ran (not counting the kept results)
        self._sampler = GL.glGenSamplers(1)
        for param, value in ((GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR), (GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR),
                             (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE), (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)):
            GL.glSamplerParameteri(self._sampler, param, value)
        frag = {"downscale": "filter_lanczos.frag", "easu": "filter_easu.frag", "cas": "filter_cas.frag",
                "nightvision": "filter_nightvision.frag", "colorblind": "filter_colorblind.frag"}
        for spec in flt.normalize(passes):
            try:
                if spec["filter"] == "glsl":
                    self.stages.append(self._load_glsl(spec))
                else:
                    self.stages.append(_Stage(spec, [program("fullscreen.vert", frag[spec["filter"]])]))
            except (ShaderError, user_shader.UserShaderError) as exc:
                self._report(spec, exc)

    def _report(self, spec: dict, exc: Exception) -> None:
        what = f"eglFilter:glslPath {spec['path']}" if spec["filter"] == "glsl" else f"filter {spec['filter']}"
        text = _first_line(exc)
        if spec["filter"] == "glsl" and text.startswith(spec["path"] + ":"):
            text = text[len(spec["path"]) + 1:].strip()
        line = f"kvmfr-view: {what}: {text}; going on without it"
        self.errors.append(line)
        log.debug("%s", exc)
        print(line, file=self._err, flush=True)

    def _load_glsl(self, spec: dict) -> _Stage:
        hooks = user_shader.load(spec["path"])
        known = {"HOOKED", "MAIN", "LUMA"} | user_shader.PICTURE_HOOKS
        progs = []
        try:
            for i, h in enumerate(hooks, 1):
                for name in h.binds:
                    if name not in known:
                        raise user_shader.UserShaderError(
                            f"{spec['path']}:{h.line}: //!BIND {name}: no earlier pass saves {name}")
                if h.save:
                    known.add(h.save)
                try:
                    progs.append(Program("fullscreen.vert", f"{spec['path']} pass {i}", user_shader.glsl(h)))
                except ShaderError as exc:
                    log_text = str(exc).split("does not compile:", 1)[-1]
                    raise user_shader.UserShaderError(
                        f"pass {i} ({h.desc or h.hook}, line {h.line}) does not compile: {_first_line(log_text)}") from None
        except Exception:
            for p in progs:
                p.delete()
            raise
        log.info("user shader %s: %d passes", spec["path"], len(hooks))
        return _Stage(spec, progs, hooks)

    # ---- running ---------------------------------------------------------------------------------

    def _target(self, key: tuple, w: int, h: int, is_float: bool) -> Image:
        img = self._targets.get(key)
        if img is not None and (img.w, img.h, img.is_float) == (w, h, is_float):
            return img
        if img is not None:
            self._free(img)
        tex = GL.glGenTextures(1)
        GL.glBindTexture(GL.GL_TEXTURE_2D, tex)
        for param, value in ((GL.GL_TEXTURE_MIN_FILTER, GL.GL_NEAREST), (GL.GL_TEXTURE_MAG_FILTER, GL.GL_NEAREST),
                             (GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE), (GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)):
            GL.glTexParameteri(GL.GL_TEXTURE_2D, param, value)
        if is_float:
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA16F, w, h, 0, GL.GL_RGBA, GL.GL_FLOAT, None)
        else:   # unsized GL_RGBA, as the display texture (see renderer)
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, w, h, 0, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, None)
        fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, tex, 0)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"filter framebuffer incomplete (status 0x{status:x}) at {w}x{h}")
        img = Image(tex, fbo, w, h, is_float)
        self._targets[key] = img
        return img

    @staticmethod
    def _free(img: Image) -> None:
        GL.glDeleteFramebuffers(1, [img.fbo])
        GL.glDeleteTextures(1, [img.tex])

    def _begin(self, out: Image, prog: Program) -> None:
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, out.fbo)
        GL.glViewport(0, 0, out.w, out.h)
        prog.use()

    def _end(self) -> None:
        GL.glBindVertexArray(self.empty_vao)
        GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)

    def _simple(self, key: tuple, prog: Program, src: Image, w: int, h: int, **uniforms) -> Image:
        out = self._target(key, w, h, False)
        self._begin(out, prog)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, src.tex)
        prog.set_int("src", 0)
        prog.set_ivec2("src_size", src.w, src.h)
        for name, value in uniforms.items():
            if isinstance(value, (bool, int)):
                prog.set_int(name, value)
            elif isinstance(value, tuple):
                prog.set_vec2(name, *value)
            elif hasattr(value, "shape"):
                prog.set_mat3(name, value)
            else:
                prog.set_float(name, value)
        self._end()
        return out

    def run(self, src: Image, target_w: int, target_h: int, generation: int) -> Image:
        """The chain's output for the display texture ``src`` when the picture is ``target_w`` x
        ``target_h`` (frame orientation). Recomputed only when the frame (``generation``) or size changes."""
        key = (generation, src.tex, src.w, src.h, target_w, target_h)
        if key == self._key and self._result is not None:
            return self._result
        self.runs += 1
        GL.glDisable(GL.GL_BLEND)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        cur = src
        for i, st in enumerate(list(self.stages)):
            name = st.spec["filter"]
            prog = st.programs[0] if st.programs else None
            if name == "downscale":
                size = st.spec.get("pixel_size", 0)
                if 0 < size <= 1:   # as in Looking Glass: a pixel size of 1 or less turns the downscaler off
                    continue
                if size:   # Looking Glass's pixel-size mode: N x N frame pixels become one (whole pixels)
                    nw, nh = max(1, int(cur.w / size)), max(1, int(cur.h / size))
                else:
                    nw, nh = min(target_w, cur.w), min(target_h, cur.h)
                hoff, voff = st.spec.get("hoffset", 0.0), st.spec.get("voffset", 0.0)
                if (nw, nh) != (cur.w, cur.h) or hoff or voff:
                    kernel = flt.DOWNSCALE_KERNELS.index(st.spec["kernel"])
                    mid = self._simple((i, 0), prog, cur, nw, cur.h, vertical=False, step=cur.w / nw, kernel=kernel,
                                       offset=hoff)
                    cur = self._simple((i, 1), prog, mid, nw, nh, vertical=True, step=cur.h / nh, kernel=kernel,
                                       offset=voff)
            elif name == "easu":
                nw, nh = max(target_w, cur.w), max(target_h, cur.h)
                if (nw, nh) != (cur.w, cur.h):
                    cur = self._simple((i, 0), prog, cur, nw, nh, step=(cur.w / nw, cur.h / nh))
            elif name == "cas":
                cur = self._simple((i, 0), prog, cur, cur.w, cur.h, sharpness=st.spec["sharpness"])
            elif name == "nightvision":
                cur = self._simple((i, 0), prog, cur, cur.w, cur.h, gain=st.spec["gain"])
            elif name == "colorblind":
                cur = self._simple((i, 0), prog, cur, cur.w, cur.h, sim=flt.CB_SIMULATION[st.spec["mode"]],
                                   simulate=st.spec["simulate"])
            elif name == "glsl":
                try:
                    cur = self._run_glsl(i, st, cur, src, (target_w, target_h))
                except user_shader.UserShaderError as exc:
                    self._report(st.spec, exc)
                    self.stages.remove(st)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        self._key, self._result = key, cur
        return cur

    def _run_glsl(self, i: int, st: _Stage, cur: Image, original: Image, output: tuple[int, int]) -> Image:
        """``output``: the picture's size in the window (mpv's OUTPUT in size expressions; NATIVE is the
        frame's own size), so Anime4K's ``//!WHEN OUTPUT.w MAIN.w / 1.200 >`` asks whether it upscales."""
        saved: dict[str, Image] = {}
        for j, (hook, prog) in enumerate(zip(st.hooks, st.programs)):
            pictures = {n: cur for n in ("HOOKED", "MAIN", "LUMA", hook.hook)}
            textures = {**saved, **pictures}
            sizes = {"OUTPUT": output, "NATIVE": (original.w, original.h)} | {n: (t.w, t.h) for n, t in textures.items()}
            where = f"{st.spec['path']}:{hook.line}"
            if hook.when and not user_shader.evaluate(hook.when, sizes, where):
                continue
            w = int(round(user_shader.evaluate(hook.width, sizes, where))) if hook.width else cur.w
            h = int(round(user_shader.evaluate(hook.height, sizes, where))) if hook.height else cur.h
            if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
                raise user_shader.UserShaderError(f"{where}: output size {w}x{h} is outside 1..{MAX_SIDE}")
            out = self._target((i, j), w, h, True)
            self._begin(out, prog)
            prog.set_vec2("target_size", w, h)
            prog.set_vec2("input_size", original.w, original.h)
            prog.set_int("frame", 0)
            for unit, name in enumerate(dict.fromkeys(hook.binds)):
                t = textures[name]
                GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
                GL.glBindTexture(GL.GL_TEXTURE_2D, t.tex)
                GL.glBindSampler(unit, self._sampler)
                prog.set_int(f"{name}_raw", unit)
                prog.set_vec2(f"{name}_size", t.w, t.h)
                prog.set_vec2(f"{name}_pt", 1.0 / t.w, 1.0 / t.h)
            self._end()
            for unit in range(len(set(hook.binds))):
                GL.glBindSampler(unit, 0)
            GL.glActiveTexture(GL.GL_TEXTURE0)
            if hook.save and hook.save not in pictures:
                saved[hook.save] = out
            else:
                cur = out
        return cur

    def close(self) -> None:
        for img in self._targets.values():
            self._free(img)
        self._targets.clear()
        for st in self.stages:
            if st.hooks is not None:
                for p in st.programs:
                    p.delete()
        GL.glDeleteSamplers(1, [self._sampler])
