"""The picture filter chain: which passes run, in what order, with what parameters; named presets.

A chain is a list of passes, each a dict ``{"filter": NAME, **parameters}``:

==============  ==============================================  ==========================================
filter          what it does                                    parameters
==============  ==============================================  ==========================================
``downscale``   Lanczos-3 down to the window's picture size,    ``kernel`` lanczos/linear/nearest;
                or by ``pixel_size`` (N x N pixels become one)  ``pixel_size`` 0..256 (0: picture size;
                                                                1 or less: off); ``hoffset``, ``voffset``
                                                                -2..2 (sampling grid shift, in output
                                                                pixels); skipped when nothing to do
``easu``        edge-adaptive upscale to the picture size        (none); skipped when not enlarging
``cas``         contrast-adaptive sharpening                    ``sharpness`` 0..1
``nightvision`` night vision gain (``egl:nvGain``)              ``gain`` 0..100
``colorblind``  colour-blind correction or simulation           ``mode`` 1..3, ``simulate`` true/false
``glsl``        a user shader file in mpv's hook syntax         ``path``
==============  ==============================================  ==========================================

The options (Looking Glass's names) build a chain (:func:`from_config`); ``egl:preset`` replaces it with a
saved one. Presets are JSON files in ``$XDG_CONFIG_HOME/kvmfr-client/presets/NAME.json``. The GL side is
:mod:`kvmfr_client.viewer.filter_chain`; docs/filters.md says what each filter computes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kvmfr_client.config.options import DOWNSCALE_LANCZOS, DOWNSCALE_OFFSET_MAX, DOWNSCALE_PIXEL_MAX

FILTERS = ("downscale", "easu", "cas", "nightvision", "colorblind", "glsl")
# eglFilter:order's words: Looking Glass's filter names and ours.
ORDER_WORDS = {"downscale": "downscale", "ffxfsr": "fsr", "fsr": "fsr", "easu": "fsr", "ffxcas": "cas",
               "cas": "cas", "glsl": "glsl", "nightvision": "nightvision", "colorblind": "colorblind"}
DEFAULT_ORDER = "downscale,ffxFSR,ffxCAS,glsl,nightvision,colorblind"

# Machado, Oliveira & Fernandes (2009), severity 1.0: linear RGB -> what a dichromat sees.
CB_SIMULATION = {
    1: np.array([[0.152286, 1.052583, -0.204868],
                 [0.114503, 0.786281, 0.099216],
                 [-0.003882, -0.048116, 1.051998]]),   # protanope
    2: np.array([[0.367322, 0.860646, -0.227968],
                 [0.280085, 0.672501, 0.047413],
                 [-0.011820, 0.042940, 0.968881]]),   # deuteranope
    3: np.array([[1.255528, -0.076749, -0.178779],
                 [-0.078411, 0.930809, 0.147602],
                 [0.004733, 0.691367, 0.303900]]),    # tritanope
}
CB_NAMES = {0: "off", 1: "protanope", 2: "deuteranope", 3: "tritanope"}
# The downscaler's kernels, by Looking Glass's eglFilter:downscaleFilter number (0 nearest, 1 linear,
# 2 Lanczos); the number is the shader's `kernel`.
DOWNSCALE_KERNELS = ("nearest", "linear", "lanczos")

_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}\Z")


class FilterError(ValueError):
    """A chain, preset or filter option that cannot be used; the message says which and why."""


def _number(p: Mapping[str, Any], key: str, low: float, high: float, default: float, what: str) -> float:
    value = p.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise FilterError(f"{what}: {key} must be {low:g}..{high:g}, got {value!r}")
    return float(value)


def normalize(passes: Any, where: str = "filter chain") -> list[dict]:
    """Check a chain (from a preset file or a caller) and fill in default parameters."""
    if not isinstance(passes, list):
        raise FilterError(f"{where}: expected a list of passes")
    out = []
    for i, p in enumerate(passes):
        if not isinstance(p, dict) or p.get("filter") not in FILTERS:
            raise FilterError(f"{where}: pass {i + 1}: filter must be one of {', '.join(FILTERS)}, got "
                              f"{p.get('filter') if isinstance(p, dict) else p!r}")
        name = p["filter"]
        what = f"{where}: {name}"
        if name == "cas":
            out.append({"filter": name, "sharpness": _number(p, "sharpness", 0, 1, 0.5, what)})
        elif name == "nightvision":
            out.append({"filter": name, "gain": _number(p, "gain", 0, 100, 1, what)})
        elif name == "colorblind":
            mode = int(_number(p, "mode", 1, 3, 1, what))
            out.append({"filter": name, "mode": mode, "simulate": bool(p.get("simulate", False))})
        elif name == "downscale":
            kernel = p.get("kernel", "lanczos")
            if kernel not in DOWNSCALE_KERNELS:
                raise FilterError(f"{what}: kernel must be one of {', '.join(DOWNSCALE_KERNELS)}, got {kernel!r}")
            spec = {"filter": name, "kernel": kernel}
            size = _number(p, "pixel_size", 0, DOWNSCALE_PIXEL_MAX, 0, what)
            for key in ("hoffset", "voffset"):
                spec[key] = _number(p, key, -DOWNSCALE_OFFSET_MAX, DOWNSCALE_OFFSET_MAX, 0, what)
            spec["pixel_size"] = size
            out.append({k: v for k, v in spec.items() if v or k in ("filter", "kernel")})
        elif name == "glsl":
            if not isinstance(p.get("path"), str) or not p["path"]:
                raise FilterError(f"{what}: needs a path")
            out.append({"filter": name, "path": p["path"]})
        else:
            out.append({"filter": name})
    return out


def parse_order(text: str) -> list[str]:
    """``eglFilter:order``: filter names separated by commas, semicolons or spaces, each at most once."""
    words = [w for w in re.split(r"[,;\s]+", text.strip()) if w]
    seen: list[str] = []
    for w in words:
        name = ORDER_WORDS.get(w.lower())
        if name is None:
            raise ValueError(f"unknown filter {w!r}; expected names from {DEFAULT_ORDER}")
        if name in seen:
            raise ValueError(f"{w} is named twice")
        seen.append(name)
    return seen


def from_config(cfg: Mapping[str, Any]) -> list[dict]:
    """The chain the options ask for (``egl:preset``: that preset's chain instead). Empty: no filter."""
    if cfg.get("egl:preset"):
        return load_preset(cfg["egl:preset"])
    gain, gain_max = cfg.get("egl:nvGain", 0), cfg.get("egl:nvGainMax", 1)
    if gain > gain_max:
        raise FilterError(f"egl:nvGain: {gain} is above egl:nvGainMax ({gain_max})")
    order = parse_order(cfg.get("eglFilter:order") or DEFAULT_ORDER)
    for name in parse_order(DEFAULT_ORDER):      # filters the order leaves out run after it, in our order
        if name not in order:
            order.append(name)
    out: list[dict] = []
    for name in order:
        if name == "downscale" and cfg.get("eglFilter:downscale"):
            spec = {"filter": "downscale",
                    "kernel": DOWNSCALE_KERNELS[int(cfg.get("eglFilter:downscaleFilter", DOWNSCALE_LANCZOS))],
                    "pixel_size": float(cfg.get("eglFilter:downscalePixelSize", 0)),
                    "hoffset": float(cfg.get("eglFilter:downscaleHOffset", 0)),
                    "voffset": float(cfg.get("eglFilter:downscaleVOffset", 0))}
            out.extend(normalize([spec], "eglFilter:downscale"))
        elif name == "fsr" and cfg.get("eglFilter:ffxFSR"):
            out.append({"filter": "easu"})
            out.append({"filter": "cas", "sharpness": float(cfg.get("eglFilter:ffxFSRSharpness", 1.0))})
        elif name == "cas" and cfg.get("eglFilter:ffxCAS"):
            out.append({"filter": "cas", "sharpness": float(cfg.get("eglFilter:ffxCASSharpness", 0.0))})
        elif name == "glsl" and cfg.get("eglFilter:glslPath"):
            out.append({"filter": "glsl", "path": str(cfg["eglFilter:glslPath"])})
        elif name == "nightvision" and gain > 0:
            out.append({"filter": "nightvision", "gain": float(gain)})
        elif name == "colorblind" and cfg.get("egl:cbMode", 0):
            out.append({"filter": "colorblind", "mode": int(cfg["egl:cbMode"]),
                        "simulate": bool(cfg.get("egl:cbSimulate", False))})
    return out


# ---- presets -------------------------------------------------------------------------------------------

def preset_dir() -> Path:
    """``$XDG_CONFIG_HOME/kvmfr-client/presets`` (the folder of our client.ini)."""
    home = Path(os.environ.get("HOME") or Path.home())
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return xdg / "kvmfr-client" / "presets"


def preset_path(name: str) -> Path:
    if not _PRESET_NAME.match(name or ""):
        raise FilterError(f"preset name {name!r}: use letters, digits, space, _ . - (at most 64)")
    return preset_dir() / f"{name}.json"


def save_preset(name: str, passes: list[dict]) -> Path:
    """Write ``passes`` as preset ``name``; returns the file."""
    path = preset_path(name)
    chain = normalize(passes, f"preset {name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"version": 1, "passes": chain}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def preset_names() -> list[str]:
    """The saved presets' names, sorted (the settings panel offers them)."""
    folder = preset_dir()
    return sorted(p.stem for p in folder.glob("*.json") if _PRESET_NAME.match(p.stem)) if folder.is_dir() else []


def load_preset(name: str) -> list[dict]:
    path = preset_path(name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem for p in preset_dir().glob("*.json")) if preset_dir().is_dir() else []
        raise FilterError(f"egl:preset: no preset {name!r} ({path} does not exist; saved presets: "
                          f"{', '.join(known) or 'none'})") from None
    except (OSError, ValueError) as exc:
        raise FilterError(f"egl:preset: {path}: {exc}") from None
    if not isinstance(data, dict):
        raise FilterError(f"egl:preset: {path}: expected a JSON object with \"passes\"")
    return normalize(data.get("passes"), f"preset {name} ({path})")
