"""Viewer benchmark (not a test): the agent's test pattern at 60 fps into the real viewer under Xvfb.

    .venv/bin/python benchmarks/viewer.py [--sizes 1920x1080,3840x2160] [--seconds 20] [--runs 3]
                                          [--source auto|testpattern|prerendered|damage] [--upload auto|pbo|direct]
                                          [--format BGRA] [--json OUT.json] [--force-shader] [--displays N]
                                          [--floor]
    .venv/bin/python benchmarks/viewer.py --egl-headless [--sizes ...] [--frames 240]

For each size: frames shown / frames produced, the viewer's CPU per shown frame (the whole run, and steady:
after its first 60 frames), the agent's CPU per produced frame and the X server's per shown frame, upload and
present (draw + swap) times, capture-to-swap latency (the pattern's timestamp), the upload path, and beside
them a memcpy of one frame out of a /dev/shm mapping measured in the same run; with ``--runs N`` the median
of N runs of each figure, with the load average around each run. ``--source auto`` feeds sizes above 1440p
with ``--source prerendered`` (frames sent whole, the agent rewriting only the barcode and a square: the
moving pattern's full rewrite cannot make 60 fps at 2160p on two cores beside a viewer). ``--displays N``:
N agents at each size into N files and ONE viewer with a window per display (``kvmfr-view --displays``),
one row per display (the X server's CPU is then shared by the windows).

``--floor``: after each of the viewer's runs, in the same X server, ``benchmarks/baseline/gl_floor.c`` (built
here with cc against libGL and libX11) does at the same size and rate only the per-frame work any GL viewer of
this design must do: copy the frame out of a shared mapping that another process rewrites, upload, 1:1 blit,
swap (``floor copy``), and once more without the copy (``floor direct``: uploading straight from the mapping,
which no safe client does), and ``floor copy`` again with glibc's streaming copies, as kvmfr-view's window runs
(``floor copy, streaming``: kvmfr_client.startup.stream_large_copies). Their CPU per frame, and the viewer's
steady figure divided by ``floor copy`` (and by ``floor copy, streaming``), are printed beside the viewer's: how
far the viewer is from what this machine allows.

``--egl-headless``: no X server and no window: an EGL context on the first EGL device (a GPU's, or Mesa's
software device), else Mesa's surfaceless platform; frames from an in-process producer go through the
viewer's own copy (``Session.next_frame`` into the upload path's destination) and upload, with ``glFinish``,
once per upload path (direct, pbo-persistent, pbo-classic): CPU and wall time per frame of that part, to
compare the paths on a GPU machine; then the 1:1 blit into an offscreen framebuffer, timed apart (on llvmpipe
it is no copy there, unlike the blit to a window: ~13 ms at 1080p). The target on the 2-core llvmpipe
machines: 1080p shows >= 99% of 60 frames/s.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.agent import start_agent  # noqa: E402
from tests.support.process import stop_process  # noqa: E402


def memcpy_ms(nbytes: int, repeats: int = 50) -> float:
    """Median time to copy one frame out of a /dev/shm mapping into a private buffer (numpy memcpy)."""
    fd, path = tempfile.mkstemp(dir="/dev/shm", prefix="kvmfr-bench-")
    try:
        os.ftruncate(fd, nbytes)
        mm = mmap.mmap(fd, nbytes)
        src = np.frombuffer(mm, np.uint8)
        src[:] = 7
        dst = np.empty(nbytes, np.uint8)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            np.copyto(dst, src)
            times.append((time.perf_counter() - t) * 1000)
        del src
        mm.close()
        return float(np.median(times))
    finally:
        os.close(fd)
        os.unlink(path)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def source_for(source: str, width: int, height: int) -> str:
    if source != "auto":
        return source
    return "prerendered" if width * height > 2560 * 1440 else "testpattern"


def run_one(xserver, width: int, height: int, seconds: float, fmt: str, force_shader: bool,
            extra: tuple[str, ...] = (), source: str = "testpattern", displays: int = 1) -> list[dict]:
    """``displays`` agents at WxH 60 fps into as many files and one kvmfr-view 1:1 on them for ``seconds``
    (one display: ``--shm``; several: ``--displays``, a window each; ``extra``: more viewer arguments).
    One dict per window: its --stats-json with what was produced, shown, each process's CPU (its own
    agent's), and one frame's memcpy; with several displays, ``display`` (from 1)."""
    tmp = Path(tempfile.mkdtemp(prefix="kvmfr-bench-"))
    env = xserver.env(XDG_CONFIG_HOME=str(tmp))
    shms = [Path(f"/dev/shm/kvmfr-bench-{os.getpid()}-{width}x{height}-{k}") for k in range(displays)]
    agents = [start_agent(shm, (width, height), fps=60, fmt=fmt, env=env, log=tmp / f"agent-{k}.log", source=source)
              for k, shm in enumerate(shms)]
    stats_file = tmp / "stats.json"
    cmd = [sys.executable, "-m", "kvmfr_client.cli.view", "--exit-after", str(seconds),
           "--stats-json", str(stats_file), f"win:size={width}x{height}", "win:position=0,0",
           "win:borderless=yes", "spice:enable=no"]
    cmd += ["--shm", str(shms[0])] if displays == 1 else ["--displays", ",".join(map(str, shms))]
    if force_shader:
        cmd.append("--force-shader")
    cmd += extra
    load0 = loadavg()
    try:
        a0, x0 = [proc_cpu_s(a.pid) for a in agents], proc_cpu_s(xserver.proc.pid)
        viewer = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 60)
        a1, x1 = [proc_cpu_s(a.pid) for a in agents], proc_cpu_s(xserver.proc.pid)
        if viewer.returncode != 0:
            raise RuntimeError(f"viewer failed: {viewer.stderr[-2000:]}")
        # with several displays each window writes its own file: stats-1.json, stats-2.json, ...
        files = [stats_file] if displays == 1 else [tmp / f"stats-{k + 1}.json" for k in range(displays)]
        results = [json.loads(f.read_text()) for f in files]
    finally:
        for agent in agents:
            stop_process(agent, timeout=10)
        for shm in shms:
            shm.unlink(missing_ok=True)
    load1 = loadavg()
    for k, stats in enumerate(results):
        produced = (stats["last_serial"] - stats["first_serial"] + 1) if stats.get("first_serial") else 0
        span = (produced - 1) / stats["ups"] if stats["ups"] else 0.0
        stats["frames_produced"] = produced
        stats["produced_fps"] = round(produced / span, 2) if span else 0.0
        stats["shown_ratio"] = round(stats["frames_shown"] / produced, 4) if produced else 0.0
        # The agent and the X server over the viewer's whole run (its start-up included, when they idle).
        stats["agent_cpu_ms_per_frame"] = round(1000 * (a1[k] - a0[k]) / produced, 3) if produced else None
        stats["xserver_cpu_ms_per_frame"] = round(1000 * (x1 - x0) / stats["frames_shown"], 3) \
            if stats["frames_shown"] else None
        stats["memcpy_ms"] = round(memcpy_ms(width * height * 4), 3)
        stats["size"] = f"{width}x{height}" + (f" #{k + 1}" if displays > 1 else "")
        stats["source"] = source
        stats["loadavg"] = [load0, load1]
        if displays > 1:
            stats["display"] = k + 1
    return results


def build_floor(out: Path) -> Path:
    """Compiles benchmarks/baseline/gl_floor.c (needs cc, libgl-dev and libx11-dev)."""
    exe = out / "gl_floor"
    src = REPO / "benchmarks" / "baseline" / "gl_floor.c"
    built = subprocess.run(["cc", "-O2", "-o", str(exe), str(src), "-lGL", "-lX11"], capture_output=True, text=True)
    if built.returncode != 0:
        sys.exit(f"cannot build the floor program (install a C compiler, libgl-dev and libx11-dev): "
                 f"{built.stderr.strip()}")
    return exe


def run_floor(exe: Path, xserver, width: int, height: int, seconds: float) -> dict:
    """The floor program in both modes at WxH, 60 frames a second: its CPU and the X server's per frame; then
    ``copy`` once more with glibc's streaming copies, as kvmfr-view's window runs (``floor_copy_stream``)."""
    from kvmfr_client.startup import STREAMING_COPIES
    row = {}
    for mode, name, env in (("copy", "copy", {}), ("direct", "direct", {}),
                            ("copy", "copy_stream", {"GLIBC_TUNABLES": STREAMING_COPIES})):
        x0 = proc_cpu_s(xserver.proc.pid)
        done = subprocess.run([str(exe), str(width), str(height), str(seconds), mode], env=xserver.env(**env),
                              capture_output=True, text=True, timeout=seconds + 60)
        x1 = proc_cpu_s(xserver.proc.pid)
        if done.returncode != 0:
            raise RuntimeError(f"gl_floor {mode} failed: {done.stderr.strip()[-2000:]}")
        figures = json.loads(done.stdout)
        row[f"floor_{name}_cpu_ms"] = figures["cpu_ms_per_frame"]
        row[f"floor_{name}_fps"] = figures["fps"]
        # the X server over the whole program, its 60 warm-up frames included
        row[f"floor_{name}_xserver_cpu_ms"] = round(1000 * (x1 - x0) / (figures["frames"] + 60), 3)
    return row


FIGURES = ("frames_produced", "frames_shown", "shown_ratio", "produced_fps", "fps", "cpu_ms_per_shown_frame",
           "cpu_ms_per_shown_frame_steady", "agent_cpu_ms_per_frame", "xserver_cpu_ms_per_frame", "copy_ms_p50",
           "upload_ms_p50", "present_ms_p50", "latency_ms_p50", "memcpy_ms", "floor_copy_cpu_ms",
           "floor_direct_cpu_ms", "floor_copy_xserver_cpu_ms", "floor_direct_xserver_cpu_ms", "over_floor",
           "floor_copy_stream_cpu_ms", "over_floor_stream")


def median_of(runs: list[dict]) -> dict:
    """One row: the median of each figure over the runs, the runs' own values and load averages beside."""
    out = dict(runs[-1])
    for key in FIGURES:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = round(float(np.median(values)), 3) if values else None
        out[key + "_runs"] = values
    out["loadavg_runs"] = [r["loadavg"] for r in runs]
    out["runs"] = len(runs)
    return out


def print_table(results: list[dict]) -> None:
    print(f"{'size':>10} {'source':>11} {'shown':>11} {'shown%':>7} {'view fps':>8} {'CPU/fr':>7} {'steady':>7} "
          f"{'agent':>6} {'Xvfb':>6} {'copy':>6} {'upload':>6} {'present':>7} {'lat p50':>7} {'memcpy':>6} "
          f"{'upload path':>14} load")
    for r in results:
        def f(key, fmt=".2f"):
            v = r.get(key)
            return format(v, fmt) if v is not None else "-"
        loads = ",".join(f"{a:.1f}-{b:.1f}" for a, b in r.get("loadavg_runs", [r["loadavg"]]))
        print(f"{r['size']:>10} {r['source']:>11} {int(r['frames_shown']):>5}/{int(r['frames_produced']):<5} "
              f"{100 * r['shown_ratio']:>6.1f}% {f('fps'):>8} {f('cpu_ms_per_shown_frame'):>7} "
              f"{f('cpu_ms_per_shown_frame_steady'):>7} {f('agent_cpu_ms_per_frame'):>6} "
              f"{f('xserver_cpu_ms_per_frame'):>6} {f('copy_ms_p50'):>6} {f('upload_ms_p50'):>6} "
              f"{f('present_ms_p50'):>7} {f('latency_ms_p50', '.1f'):>7} {f('memcpy_ms', '.3f'):>6} "
              f"{r.get('upload_path', '?'):>14} {loads}")
    floors = [r for r in results if r.get("floor_copy_cpu_ms") is not None]
    if floors:
        print(f"\n{'size':>10} {'viewer steady':>13} {'floor copy':>10} {'floor direct':>12} {'viewer/floor':>12} "
              f"{'Xvfb floor':>10} {'floor copy, streaming':>21} {'viewer/that':>11}")
        for r in floors:
            print(f"{r['size']:>10} {r['cpu_ms_per_shown_frame_steady']:>13.2f} {r['floor_copy_cpu_ms']:>10.2f} "
                  f"{r['floor_direct_cpu_ms']:>12.2f} {r['over_floor']:>11.2f}x {r['floor_copy_xserver_cpu_ms']:>10.2f} "
                  f"{r['floor_copy_stream_cpu_ms']:>21.2f} {r['over_floor_stream']:>10.2f}x")
    print(f"\nrenderer: {results[0]['renderer'] if results else '?'}; times in ms (p50; with --runs, the median of "
          "the runs); CPU/fr = viewer process (all threads) per shown frame over the whole run, steady = after "
          "its first 60 frames; agent = CPU per produced frame; Xvfb = X server CPU per shown frame; memcpy = "
          "one frame out of a /dev/shm mapping, same run; load = load average before-after each run")
    if floors:
        print("floor copy / direct = benchmarks/baseline/gl_floor.c's CPU per frame at the same size and rate, same "
              "X server, after each viewer run (copy out of a mapping + upload + blit + swap; direct: no copy); "
              "viewer/floor = viewer steady / floor copy; Xvfb floor = the X server's CPU per frame beside it; "
              "floor copy, streaming = floor copy with glibc's streaming copies (GLIBC_TUNABLES, as kvmfr-view's "
              "window runs), viewer/that = viewer steady / it")


# ---- --egl-headless -------------------------------------------------------------------------------------

EGL_PLATFORM_DEVICE_EXT = 0x313F
EGL_PLATFORM_SURFACELESS_MESA = 0x31DD


def egl_context() -> str:
    """Make a GL 3.3 core context current with no window system: the first EGL device that initialises
    (a GPU's, or Mesa's software device), else Mesa's surfaceless platform. Returns how."""
    from OpenGL import EGL
    display, how = None, ""
    try:
        from OpenGL.EGL.EXT.device_base import eglQueryDevicesEXT
        devices, n = (EGL.EGLDeviceEXT * 8)(), EGL.EGLint()
        if eglQueryDevicesEXT(8, devices, ctypes.pointer(n)):
            for i in range(n.value):
                d = EGL.eglGetPlatformDisplayEXT(EGL_PLATFORM_DEVICE_EXT, devices[i], None)
                if d and EGL.eglInitialize(d, None, None):
                    display, how = d, f"EGL device {i} of {n.value}"
                    break
    except Exception as exc:   # no EGL_EXT_device_base: try surfaceless
        how = f"(no EGL devices: {exc})"
    if display is None:
        d = EGL.eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA, EGL.EGL_DEFAULT_DISPLAY, None)
        if not d or not EGL.eglInitialize(d, None, None):
            raise SystemExit("benchmarks/viewer.py --egl-headless: no EGL device and no surfaceless platform "
                             "(install libegl1 / libegl-mesa0, or a GPU driver's EGL)")
        display, how = d, "Mesa surfaceless platform " + how
    EGL.eglBindAPI(EGL.EGL_OPENGL_API)
    config, n = EGL.EGLConfig(), EGL.EGLint()
    attrs = (EGL.EGLint * 3)(EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT, EGL.EGL_NONE)
    if not EGL.eglChooseConfig(display, attrs, ctypes.pointer(config), 1, ctypes.pointer(n)) or not n.value:
        config = EGL.EGLConfig()   # EGL_KHR_no_config_context: no surface, so no config needed
    cattrs = (EGL.EGLint * 7)(EGL.EGL_CONTEXT_MAJOR_VERSION, 3, EGL.EGL_CONTEXT_MINOR_VERSION, 3,
                              EGL.EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT,
                              EGL.EGL_NONE)
    ctx = EGL.eglCreateContext(display, config, EGL.EGL_NO_CONTEXT, cattrs)
    if not ctx or not EGL.eglMakeCurrent(display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, ctx):
        raise SystemExit("benchmarks/viewer.py --egl-headless: no GL 3.3 core context without a surface")
    return how


def egl_headless(sizes, frames: int) -> list[dict]:
    import OpenGL
    how = egl_context()
    OpenGL.ERROR_CHECKING = False   # as the viewer runs (after EGL's own import: PyOpenGL's EGL needs it on)
    from OpenGL import GL

    import kvmfr_client
    from guest_agent.producer import Producer
    from guest_agent.sources.synthetic import PatternSource
    from kvmfr_client.core.formats import FrameType
    from kvmfr_client.core.session import recommended_shm_size
    from kvmfr_client.core.testpattern import PatternKind
    from kvmfr_client.viewer import upload
    from kvmfr_client.viewer.renderer import Renderer, RenderOptions

    name, version, _ = upload.context_facts()
    probe = Renderer(RenderOptions(upload="auto"))
    auto_choice = probe.upload_path   # what the viewer's chooser takes on this context
    probe.close()
    print(f"# {how}: {name}, GL {version[0]}.{version[1]}; egl:upload=auto picks {auto_choice}", flush=True)
    results = []
    for w, h in sizes:
        target_tex = GL.glGenTextures(1)
        GL.glBindTexture(GL.GL_TEXTURE_2D, target_tex)
        # As the renderer's own textures (unsized RGBA from BGRA bytes): the blit stays a copy on Mesa.
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, GL.GL_RGBA, w, h, 0, GL.GL_BGRA, GL.GL_UNSIGNED_BYTE, None)
        target = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, target)
        GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, target_tex, 0)
        for path in ("direct", "pbo-persistent", "pbo-classic"):
            r = Renderer(RenderOptions(upload="direct" if path == "direct" else "pbo"))
            if path == "pbo-classic":
                r.pixel_buffers.close()
                r.pixel_buffers = upload.PixelBuffers(persistent=False)
            elif path == "pbo-persistent" and r.upload_path != path:
                print(f"  {w}x{h} {path}: not available ({r.upload_path})")
                r.close()
                continue
            shm = Path(f"/dev/shm/kvmfr-egl-bench-{os.getpid()}")
            src = PatternSource(w, h, FrameType.BGRA, PatternKind.MOVING, prerendered=True)
            cpu, wall, present, own = [], [], [], None
            with Producer(shm, create_size=recommended_shm_size(w, h)) as prod, \
                    kvmfr_client.open(str(shm), wait=5) as session:
                time.sleep(0.05)
                dest = None
                for serial in range(1, frames + 1):
                    src.post(prod, serial)
                    c0, t0 = time.process_time(), time.perf_counter()
                    slot, out = dest if dest is not None else (None, own)
                    f = session.next_frame(timeout=1, out=out)
                    if f is None:
                        raise SystemExit(f"--egl-headless: frame {serial} did not arrive")
                    if slot is None:
                        own = f.pixels
                    r.upload(f.type, f.width, f.height, f.pixels, slot=slot)
                    dest = r.next_destination(f.pixels.shape[0], f.pixels.strides[0])
                    GL.glFinish()
                    cpu.append((time.process_time() - c0) * 1000)
                    t1 = time.perf_counter()
                    wall.append((t1 - t0) * 1000)
                    if serial % 8 == 0:   # the offscreen blit is slow on llvmpipe: sampled
                        r.draw(w, h, target=target)
                        GL.glFinish()
                        present.append((time.perf_counter() - t1) * 1000)
            shm.unlink(missing_ok=True)
            r.close()
            skip = min(20, frames // 4)
            row = {"size": f"{w}x{h}", "upload_path": path, "frames": frames, "renderer": name,
                   "cpu_ms_per_frame": round(float(np.median(cpu[skip:])), 3),
                   "wall_ms_per_frame": round(float(np.median(wall[skip:])), 3),
                   "present_ms": round(float(np.median(present[2:])), 3),
                   "memcpy_ms": round(memcpy_ms(w * h * 4), 3), "loadavg": loadavg(), "context": how,
                   "auto_choice": auto_choice}
            print(f"  {row['size']:>10} {path:>15}: copy + upload + glFinish: CPU {row['cpu_ms_per_frame']:.3f} ms "
                  f"a frame, wall {row['wall_ms_per_frame']:.3f} ms; then 1:1 blit to an offscreen framebuffer "
                  f"{row['present_ms']:.3f} ms; memcpy {row['memcpy_ms']:.3f} ms; load {row['loadavg']:.1f}",
                  flush=True)
            results.append(row)
        GL.glDeleteFramebuffers(1, [target])
        GL.glDeleteTextures(1, [target_tex])
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1920x1080,3840x2160", help="comma-separated WxH list")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=1, help="runs of each size; the table shows their medians")
    p.add_argument("--source", default="auto", choices=("auto", "testpattern", "prerendered", "damage"),
                   help="the agent's source; auto: prerendered above 2560x1440, else testpattern")
    p.add_argument("--upload", choices=("auto", "pbo", "direct"), help="the viewer's egl:upload")
    p.add_argument("--format", default="BGRA")
    p.add_argument("--force-shader", action="store_true", help="present with the shader quad instead of the blit")
    p.add_argument("--egl-headless", action="store_true",
                   help="no X server: copy + upload + blit per upload path on an EGL device (see above)")
    p.add_argument("--frames", type=int, default=120, help="--egl-headless: frames per upload path")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--floor", action="store_true",
                   help="also run benchmarks/baseline/gl_floor.c after each viewer run (see above)")
    p.add_argument("--displays", type=int, default=1, choices=range(1, 9), metavar="N",
                   help="N agents and one viewer with a window each (kvmfr-view --displays); one row per display")
    args = p.parse_args()
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    if args.egl_headless:
        os.environ["PYOPENGL_PLATFORM"] = "egl"
        results = egl_headless(sizes, args.frames)
    else:
        from tests.support.xvfb import start_xvfb
        xw, xh = max(w for w, _ in sizes), max(h for _, h in sizes)
        xserver = start_xvfb(xw, xh)
        extra = (f"egl:upload={args.upload}",) if args.upload else ()
        floor_exe = build_floor(Path(tempfile.mkdtemp(prefix="kvmfr-floor-"))) if args.floor else None
        results = []
        try:
            for w, h in sizes:
                source = source_for(args.source, w, h)
                runs = []   # runs[i][k]: run i, display k
                for i in range(args.runs):
                    print(f"# {w}x{h} {args.format} {source}, {args.seconds:.0f} s, run {i + 1} of {args.runs} "
                          f"(load {loadavg():.2f}) ...", flush=True)
                    runs.append(run_one(xserver, w, h, args.seconds, args.format, args.force_shader, extra, source,
                                        args.displays))
                    if floor_exe is not None:
                        floor = run_floor(floor_exe, xserver, w, h, args.seconds)
                        for row in runs[-1]:
                            row.update(floor)
                            steady = row.get("cpu_ms_per_shown_frame_steady")
                            row["over_floor"] = round(steady / floor["floor_copy_cpu_ms"], 3) if steady else None
                            row["over_floor_stream"] = round(steady / floor["floor_copy_stream_cpu_ms"], 3) \
                                if steady else None
                results += [median_of([run[k] for run in runs]) for k in range(args.displays)]
        finally:
            xserver.stop()
        print()
        print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
