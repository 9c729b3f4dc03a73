"""numpy reference implementations of the picture filters (tests only), written from docs/filters.md.

Each takes and returns float64 RGB in 0..1, shape (H, W, 3), rows top first, as the GPU passes see the
picture; :func:`to8` rounds as an 8-bit render target does.
"""

from __future__ import annotations

import numpy as np

from kvmfr_client.viewer.filters import CB_SIMULATION


def to8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(np.clip(img, 0, 1) * 255 + 0.5), 0, 255) / 255


def rgb(img8: np.ndarray) -> np.ndarray:
    return img8[..., :3].astype(np.float64) / 255


def _lanczos3(x):
    x = np.asarray(x, float)
    out = np.sinc(x) * np.sinc(x / 3)
    return np.where(np.abs(x) < 3, out, 0.0)


def _lanczos_axis(img: np.ndarray, n_out: int, axis: int, kernel: str = "lanczos",
                  offset: float = 0.0) -> np.ndarray:
    n_in = img.shape[axis]
    step = n_in / n_out
    k = max(step, 1.0)
    rows = []
    for d in range(n_out):
        u = (d + 0.5 + offset) * step - 0.5
        if kernel == "nearest":
            rows.append(np.take(img, int(np.clip(np.floor((d + 0.5 + offset) * step), 0, n_in - 1)), axis=axis))
            continue
        reach = 3 * k if kernel == "lanczos" else k
        j = np.arange(int(np.floor(u - reach)) + 1, int(np.floor(u + reach)) + 1)
        w = _lanczos3((j - u) / k) if kernel == "lanczos" else np.maximum(0.0, 1 - np.abs(j - u) / k)
        taps = np.take(img, np.clip(j, 0, n_in - 1), axis=axis)
        shape = [1, 1, 1]
        shape[axis] = len(j)
        rows.append(np.clip((taps * w.reshape(shape)).sum(axis=axis) / w.sum(), 0, 1))
    return np.stack(rows, axis=axis)


def downscale(img: np.ndarray, w: int, h: int, kernel: str = "lanczos", hoffset: float = 0.0,
              voffset: float = 0.0) -> np.ndarray:
    """Separable, horizontal then vertical, with the 8-bit rounding between the passes: Lanczos-3 (the
    default), a tent as wide as the footprint (linear) or the source pixel under the centre (nearest);
    each output pixel's centre moved by ``hoffset``/``voffset`` output pixels."""
    mid = to8(_lanczos_axis(img, w, 1, kernel, hoffset))
    return _lanczos_axis(mid, h, 0, kernel, voffset)


def easu(img: np.ndarray, w: int, h: int) -> np.ndarray:
    H, W, _ = img.shape
    sx, sy = W / w, H / h
    ux = (np.arange(w) + 0.5) * sx - 0.5
    uy = (np.arange(h) + 0.5) * sy - 0.5
    UX, UY = np.meshgrid(ux, uy)
    fx, fy = np.floor(UX), np.floor(UY)
    tx, ty = UX - fx, UY - fy
    c = np.empty((4, 4, h, w, 3))
    for j in range(4):
        for i in range(4):
            px = np.clip(fx.astype(int) + i - 1, 0, W - 1)
            py = np.clip(fy.astype(int) + j - 1, 0, H - 1)
            c[j, i] = img[py, px]
    lum = 0.5 * c[..., 0] + c[..., 1] + 0.5 * c[..., 2]
    lmin, lmax = lum.min(axis=(0, 1)), lum.max(axis=(0, 1))
    dx = np.zeros((h, w))
    dy = np.zeros((h, w))
    for j in (1, 2):
        for i in (1, 2):
            wx = 1 - tx if i == 1 else tx
            wy = 1 - ty if j == 1 else ty
            dx += wx * wy * (lum[j, i + 1] - lum[j, i - 1])
            dy += wx * wy * (lum[j + 1, i] - lum[j - 1, i])
    dlen2 = dx * dx + dy * dy
    ln = np.clip(0.5 * np.sqrt(dlen2) / (lmax - lmin + 1 / 64), 0, 1) ** 2
    small = dlen2 < 1 / 4096
    inv = 1 / np.sqrt(np.where(small, 1, dlen2))
    ddx = np.where(small, 1.0, dx * inv)
    ddy = np.where(small, 0.0, dy * inv)
    along_k, across_k = 1 / (1 + ln), 1 + 0.25 * ln
    lobe = 0.5 - 0.25 * ln
    acc = np.zeros((h, w, 3))
    wsum = np.zeros((h, w))
    for j in range(4):
        for i in range(4):
            vx, vy = (i - 1) - tx, (j - 1) - ty
            across = (vx * ddx + vy * ddy) * across_k
            along = (-vx * ddy + vy * ddx) * along_k
            x2 = along ** 2 + across ** 2
            a, b = 0.4 * x2 - 1, lobe * x2 - 1
            wt = np.where(x2 < 1 / lobe, (1.5625 * a * a - 0.5625) * b * b, 0.0)
            acc += wt[..., None] * c[j, i]
            wsum += wt
    out = acc / np.maximum(wsum, 1e-4)[..., None]
    mn = np.minimum(np.minimum(c[1, 1], c[1, 2]), np.minimum(c[2, 1], c[2, 2]))
    mx = np.maximum(np.maximum(c[1, 1], c[1, 2]), np.maximum(c[2, 1], c[2, 2]))
    return np.clip(out, mn, mx)


def _shift(img, dx, dy):
    """img[y + dy, x + dx] with edge clamping."""
    H, W, _ = img.shape
    ys = np.clip(np.arange(H) + dy, 0, H - 1)
    xs = np.clip(np.arange(W) + dx, 0, W - 1)
    return img[ys][:, xs]


def cas(img: np.ndarray, sharpness: float) -> np.ndarray:
    n = {(dx, dy): _shift(img, dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    stack = np.stack(list(n.values()))
    mn, mx = stack.min(axis=0), stack.max(axis=0)
    amp = np.sqrt(np.clip(np.minimum(mn, 1 - mx) / np.maximum(mx, 1e-6), 0, 1))
    wgt = amp * (-1 / (8 + (5 - 8) * sharpness))
    cross = n[(0, -1)] + n[(-1, 0)] + n[(1, 0)] + n[(0, 1)]
    return np.clip((img + wgt * cross) / (1 + 4 * wgt), 0, 1)


def nightvision(img: np.ndarray, gain: float) -> np.ndarray:
    return 1 - (1 - img) ** (1 + gain)


def _to_linear(c):
    return np.where(c >= 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def _to_srgb(c):
    return np.where(c >= 0.0031308, 1.055 * np.power(np.maximum(c, 0), 1 / 2.4) - 0.055, c * 12.92)


def colorblind(img: np.ndarray, mode: int, simulate: bool = False) -> np.ndarray:
    lin = _to_linear(img)
    seen = lin @ CB_SIMULATION[mode].T
    if simulate:
        out = seen
    else:
        err = lin - seen
        out = lin.copy()
        out[..., 1] += 0.7 * err[..., 0] + err[..., 1]
        out[..., 2] += 0.7 * err[..., 0] + err[..., 2]
    return _to_srgb(np.clip(out, 0, 1))


def bilinear(img: np.ndarray, pos_x: np.ndarray, pos_y: np.ndarray) -> np.ndarray:
    """texture() with GL_LINEAR and clamp-to-edge at normalised positions (arrays of the output's shape)."""
    H, W = img.shape[:2]
    x = pos_x * W - 0.5
    y = pos_y * H - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]

    def at(yy, xx):
        return img[np.clip(yy, 0, H - 1), np.clip(xx, 0, W - 1)]
    return ((at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy)
            + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy)
