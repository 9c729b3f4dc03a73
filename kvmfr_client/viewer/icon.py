"""kvmfr-view's icon, drawn from one list of shapes: as RGBA pixels (the window icon, the PNGs) and as SVG.

A blue screen in a dark rounded square, a white looking glass over it. ``python -m tools.icon`` writes
``data/icons/hicolor/*/apps/kvmfr-view.{png,svg}`` from here; the window sets the same pixels itself, so
the viewer needs no image decoder at run time.
"""

from __future__ import annotations

import numpy as np

CANVAS = 256          # the shapes' coordinate space (the SVG's viewBox)
SIZES = (16, 24, 32, 48, 64, 128, 256)   # the PNG sizes installed under share/icons/hicolor
WINDOW_SIZES = (16, 32, 48, 64)   # given to the window manager (_NET_WM_ICON); larger ones come from the installed files

# (kind, fill colour RGBA, geometry) in canvas units, painted in this order
SHAPES = (
    ("rect", (0x24, 0x34, 0x47, 255), (16, 16, 224, 224, 44)),     # x, y, w, h, corner radius
    ("rect", (0x4f, 0xb3, 0xff, 255), (44, 52, 168, 120, 14)),
    ("ring", (0xff, 0xff, 0xff, 255), (120, 108, 50, 14)),         # cx, cy, radius, stroke width
    ("line", (0xff, 0xff, 0xff, 255), (158, 146, 204, 192, 24)),   # x0, y0, x1, y1, width (round caps)
)


def _inside(kind: str, geom: tuple, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if kind == "rect":
        rx, ry, w, h, r = geom
        qx = np.maximum(np.abs(x - (rx + w / 2)) - (w / 2 - r), 0.0)
        qy = np.maximum(np.abs(y - (ry + h / 2)) - (h / 2 - r), 0.0)
        return (qx * qx + qy * qy <= r * r) & (np.abs(x - (rx + w / 2)) <= w / 2) & (np.abs(y - (ry + h / 2)) <= h / 2)
    if kind == "ring":
        cx, cy, r, w = geom
        return np.abs(np.hypot(x - cx, y - cy) - r) <= w / 2
    x0, y0, x1, y1, w = geom
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy)) <= w / 2


def render(size: int, samples: int = 4) -> np.ndarray:
    """The icon as ``size`` x ``size`` RGBA uint8 (straight alpha), ``samples``^2 samples per pixel."""
    n = size * samples
    coords = (np.arange(n) + 0.5) * (CANVAS / n)
    y, x = np.meshgrid(coords, coords, indexing="ij")
    rgb = np.zeros((size, size, 3))
    alpha = np.zeros((size, size))
    for kind, colour, geom in SHAPES:
        cover = _inside(kind, geom, x, y).reshape(size, samples, size, samples).mean(axis=(1, 3))
        a = cover * colour[3] / 255.0
        new_alpha = a + alpha * (1 - a)
        mix = np.divide(a, new_alpha, out=np.zeros_like(a), where=new_alpha > 0)[..., None]
        rgb = rgb * (1 - mix) + np.asarray(colour[:3], float) * mix
        alpha = new_alpha
    out = np.empty((size, size, 4), np.uint8)
    out[..., :3] = np.rint(rgb).clip(0, 255)
    out[..., 3] = np.rint(alpha * 255).clip(0, 255)
    return out


def svg() -> str:
    """The same shapes as an SVG document."""
    def hexc(c):
        return "#%02x%02x%02x" % c[:3]
    body = []
    for kind, colour, g in SHAPES:
        if kind == "rect":
            body.append(f'  <rect x="{g[0]}" y="{g[1]}" width="{g[2]}" height="{g[3]}" rx="{g[4]}" '
                        f'fill="{hexc(colour)}"/>')
        elif kind == "ring":
            body.append(f'  <circle cx="{g[0]}" cy="{g[1]}" r="{g[2]}" fill="none" stroke="{hexc(colour)}" '
                        f'stroke-width="{g[3]}"/>')
        else:
            body.append(f'  <line x1="{g[0]}" y1="{g[1]}" x2="{g[2]}" y2="{g[3]}" stroke="{hexc(colour)}" '
                        f'stroke-width="{g[4]}" stroke-linecap="round"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CANVAS}" height="{CANVAS}" '
            f'viewBox="0 0 {CANVAS} {CANVAS}">\n  <title>kvmfr-view</title>\n' + "\n".join(body) + "\n</svg>\n")
