"""Random fields shared by the generator: smooth noise, 1-D wobble, draws.

All functions take a :class:`numpy.random.Generator` and are deterministic
for a given generator state.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["smooth_noise", "wobble_1d", "uniform", "log_uniform", "low_order_field"]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float, *,
                 aspect: float = 1.0) -> np.ndarray:
    """Gaussian-correlated noise with zero mean and unit standard deviation.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (H, W)
    sigma : float
        Correlation length in pixels (geometric mean of the two axes).
    aspect : float
        ``sigma_x / sigma_y`` ratio is ``aspect**2``: values above 1 give
        features elongated along x (rows), below 1 along y.

    Returns
    -------
    ndarray of float32, shape (H, W)

    Notes
    -----
    Large correlation lengths are made on a coarse grid and resized
    (cubic), so the cost stays about one pass over the image.
    """
    import cv2

    H, W = int(shape[0]), int(shape[1])
    sy = max(float(sigma) / aspect, 0.4)
    sx = max(float(sigma) * aspect, 0.4)
    f = max(1.0, min(sx, sy) / 1.5)
    if f == 1.0:
        n = rng.standard_normal((H, W), dtype=np.float32)
        n = cv2.GaussianBlur(n, (0, 0), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
    else:
        h = int(math.ceil(H / f)) + 6
        w = int(math.ceil(W / f)) + 6
        n = rng.standard_normal((h, w), dtype=np.float32)
        n = cv2.GaussianBlur(n, (0, 0), sigmaX=sx / f, sigmaY=sy / f,
                             borderType=cv2.BORDER_REFLECT)
        # cubic up-sampling straight into (H, W), starting 2 coarse pixels in
        c = (0.5 / f) - 0.5 + 2.0
        m = np.array([[1 / f, 0, c], [0, 1 / f, c]], np.float64)
        n = cv2.warpAffine(n, m, (W, H), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT)
    sub = n[::4, ::4]
    n -= np.float32(sub.mean())
    n *= np.float32(1.0 / (float(sub.std()) + 1e-12))
    return n


def wobble_1d(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Smooth 1-D noise of length ``n`` with unit peak amplitude (float64)."""
    from scipy.ndimage import gaussian_filter1d

    pad = int(3 * sigma) + 2
    v = gaussian_filter1d(rng.standard_normal(n + 2 * pad), max(sigma, 0.5))[pad:pad + n]
    v = v - v.mean()
    peak = np.abs(v).max()
    return v / peak if peak > 0 else v


def low_order_field(rng: np.random.Generator, shape: tuple[int, int], amplitude: float,
                    *, smooth_share: float = 0.5) -> tuple[np.ndarray, dict]:
    """Brightness gain ``1 + f`` with ``max |f| == amplitude``.

    ``f`` is a random linear ramp plus low-order (quadratic) and smooth
    large-scale terms, as detector shading and charging give.

    Returns
    -------
    gain : ndarray of float32, shape (H, W)
    params : dict
        The drawn coefficients.
    """
    import cv2

    H, W = shape
    gh, gw = 48, 64
    y, x = np.mgrid[-1:1:gh * 1j, -1:1:gw * 1j]
    c = rng.normal(size=6)
    ramp = c[0] * x + c[1] * y
    quad = c[2] * (x * x - 1 / 3) + c[3] * x * y + c[4] * (y * y - 1 / 3)
    blob = smooth_noise(rng, (gh, gw), 12.0).astype(np.float64)
    f = ramp + smooth_share * quad + smooth_share * 0.5 * blob
    peak = np.abs(f).max()
    f = f * (amplitude / peak) if peak > 0 else f
    g = cv2.resize((1.0 + f).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    return g, {"shading_coeffs": [round(float(v), 6) for v in c[:5]],
               "shading_smooth_share": round(float(smooth_share), 4)}


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float drawn uniformly from [lo, hi] (a Python float)."""
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float drawn log-uniformly from [lo, hi] (both > 0)."""
    if hi <= lo:
        return float(lo)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
