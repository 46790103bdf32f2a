"""Fused per-pixel kernels of the default segmentation (compiled with Numba).

The ``local`` segmentation (:mod:`poromet.adaptive`) makes, per pixel, a
threshold from the local range, a curvature correction from five Sobel
derivatives, a comparison at three levels (the threshold and the two ends of
the sensitivity band) and a speck removal at each of them.  Written with
OpenCV and NumPy that is some forty passes over full-size float32 arrays and
three connected-component labellings (about 40 ms of a 1280x960 field).
The kernels (in :mod:`poromet._jit`):

* :func:`threshold_codes` - the threshold, the curvature correction and the
  comparison in one sweep of row buffers, giving each pixel a *code*: how
  many of the three levels (``-band``, ``0``, ``+band`` gray levels above
  the threshold) it is darker than (0 outside the region), and the gradient
  magnitude that the floor rule needs;
* :func:`keep_large` - speck removal on ``code >= level``: a search from
  each pixel that stops as soon as it has found ``min_area`` 8-connected
  pixels (or a pixel already known to be in a large void), so only specks
  are explored to the end; no labels;
* ``patch_runs`` and its helpers - the floor rule's non-void patches as row
  runs joined by a union-find, their sums and border gradients in the same
  pass (:func:`poromet.adaptive.fill_dark_floors`);
* ``rounded_hist`` - the region's 256-bin histogram in one pass, used only
  once the kernels are loaded (its bins are exact on both paths);
* :func:`histogram` - OpenCV's uniform histogram (integer or float bins) in
  one pass over the region, without the copy that OpenCV's slow masked
  16-bit and float paths needed (:func:`poromet.histq.masked_hist`);
* :func:`pair_median` - the median of neighbour differences of
  :func:`poromet.adaptive.noise_sigma`, from a histogram and a sort of the
  middle bins, with no difference image;
* :func:`unit_scale` and :func:`divide_scale_clip` - the full-size scalings
  of :func:`poromet.adaptive.normalize_field`, one pass each instead of
  three to five.

The last four are exact, not close: integer bins, order statistics and
correctly rounded float32 operations in the reference's order; they are
used only once a segmentation has loaded the kernels (:func:`loaded`), and
the results are the same bits either way.

The arithmetic is the reference's (:func:`poromet.adaptive.local_threshold`,
:func:`poromet.adaptive.tangential_curvature`), in float32 and in the same
order; the Sobel sums and ``exp`` may differ from OpenCV's and NumPy's in
the last bit, so a pixel whose gray level equals its threshold to within a
few 1e-7 could fall the other way (``tests/test_kernels.py`` compares both
paths; on 390 synthetic fields and 21 real SEM images every pixel was the
same).  Numba compiles the kernels once per installation (``cache=True``:
about 12 s in the first field); loading them costs a process 0.6-1.2 s
and ~120 MB (LLVM), so they pay off from some 30-50 fields of 1280x960 per
process on, and Numba is an optional extra (``pip install poromet[fast]``,
also in ``[dask]``): a 1280x960 field in ~50 ms instead of ~65 ms (the
README's speed section has the figures).

:func:`available` is False when Numba cannot be imported (or, installed,
cannot be used: a warning says why); callers then use the reference path,
which gives the same results (``POROMET_KERNELS=0`` in the environment
chooses it too).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["available", "loaded", "describe", "threshold_codes", "keep_large", "histogram",
           "fine_histogram", "pair_median", "unit_scale", "divide_scale_clip"]

_JIT = None
_FAILURE = ""           # why Numba, though installed, could not be used


def available() -> bool:
    """Can the compiled kernels be used (Numba importable)?  Imports Numba
    (about a second, once per process)."""
    return _kernels() is not None


def loaded():
    """The kernels when this process has already loaded them, else None
    (never imports Numba: for steps whose result is exact either way)."""
    if os.environ.get("POROMET_KERNELS", "1") == "0":
        return None
    return _JIT or None


def describe() -> str:
    """Which path the segmentation takes in a process with this
    environment, without importing Numba (for a run's record)."""
    if os.environ.get("POROMET_KERNELS", "1") == "0":
        return "reference (POROMET_KERNELS=0)"
    import importlib.util

    if importlib.util.find_spec("numba") is None:
        return "reference (numba not installed)"
    if _FAILURE:
        return f"reference (numba failed to load: {_FAILURE})"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"numba {version('numba')}"
    except PackageNotFoundError:       # pragma: no cover - a source checkout of numba
        return "numba"


def _kernels():
    global _JIT
    if os.environ.get("POROMET_KERNELS", "1") == "0":
        return None
    if _JIT is None:
        global _FAILURE
        try:
            from . import _jit
        except ImportError:
            _JIT = False
        except Exception as exc:  # noqa: BLE001 - Numba installed but unusable
            # (no writable cache location, an LLVM that does not load, a NumPy
            # this Numba does not support): the reference path measures the
            # same pixels, only slower; say so once
            import warnings

            _JIT = False
            _FAILURE = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"poromet: the compiled kernels are not used ({_FAILURE}); "
                          "measuring on the reference path", RuntimeWarning, stacklevel=3)
        else:
            _JIT = _jit
    return _JIT or None


def threshold_codes(img: np.ndarray, region: np.ndarray, *, t: float, dark: float,
                    solid: float, edge_fraction: float, alpha: float, rim_weight: float,
                    blob_fraction: float, blob_depth: float, curvature_scale: float,
                    band: float, gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-pixel threshold level codes and gradient magnitude, in one pass.

    Parameters
    ----------
    img : ndarray of float32, shape (H, W)
        The preprocessed field (8-bit scale), at least 3x3.
    region : ndarray of bool, shape (H, W)
    t, dark, solid : float
        Global midpoint, void and solid levels (:func:`poromet.adaptive.local_threshold`).
    edge_fraction, alpha, rim_weight, blob_fraction, blob_depth : float
        The edge and blob rules (:func:`poromet.adaptive.local_threshold`).
    curvature_scale : float
        Factor of the tangential curvature added to the threshold (0: none).
    band : float
        Half-width of the sensitivity band, gray levels (>= 0).
    gradient : bool
        Also return the gradient magnitude (Sobel, per pixel).

    Returns
    -------
    code : ndarray of uint8, shape (H, W)
        With ``D = threshold - img``: ``(D > -band) + (D > 0) + (D > band)``
        in the region, 0 outside.  Voids at the threshold are ``code >= 2``.
    grad : ndarray of float32, shape (H, W), or None
    """
    k = _kernels()
    if k is None:
        raise RuntimeError("poromet.kernels: Numba is not installed")
    img = np.ascontiguousarray(img, dtype=np.float32)
    reg = np.ascontiguousarray(region, dtype=bool).view(np.uint8)
    H, W = img.shape
    if H < 3 or W < 3:
        raise ValueError(f"threshold_codes: image {img.shape} smaller than 3x3")
    contrast = solid - dark
    f = np.float32
    consts = np.array([
        t,                                     # 0 global midpoint
        dark + 0.75 * contrast,                # 1 near a void: window minimum below
        edge_fraction * contrast,              # 2 edge: range above
        blob_fraction * contrast,              # 3 blob: range above
        dark + 0.85 * contrast,                # 4 blob: window maximum above
        dark + blob_depth * contrast,          # 5 blob: window minimum below
        -1.0 / contrast,                       # 6 blob level exponent factor
        rim_weight,                            # 7 edge level: range weight
        1.0 - alpha + rim_weight,              # 8 edge level: minimum weight
        (alpha - rim_weight) * solid,          # 9 edge level: constant
        curvature_scale,                       # 10
        band,                                  # 11
        -band,                                 # 12
    ], dtype=np.float64).astype(f)
    code = np.empty((H, W), np.uint8)
    grad = np.empty((H, W), np.float32) if gradient else np.empty((1, 1), np.float32)
    k.codes(img, reg, consts, curvature_scale != 0, curvature_scale != 1, gradient, code, grad)
    return code, (grad if gradient else None)


def keep_large(code: np.ndarray, level: int, min_area: int) -> np.ndarray:
    """``code >= level`` without its 8-connected components of fewer than
    ``min_area`` pixels, as a boolean array (the same pixels as
    :func:`poromet.labels.remove_small`).

    Examples
    --------
    >>> c = np.zeros((5, 6), np.uint8); c[0, 0] = 2; c[2:4, 2:5] = 3
    >>> int(keep_large(c, 2, 2).sum()), int(keep_large(c, 3, 7).sum())
    (6, 0)
    """
    k = _kernels()
    if k is None:
        raise RuntimeError("poromet.kernels: Numba is not installed")
    code = np.ascontiguousarray(code, dtype=np.uint8)
    out = np.empty(code.shape, np.uint8)
    k.keep(code, np.uint8(level), max(1, int(min_area)), out)
    return out.view(bool)


_EVERY = np.ones((1, 1), np.uint8)       # "no region": every pixel counts


def _region_u8(region, shape) -> np.ndarray:
    if region is None:
        return _EVERY
    region = np.asarray(region)
    if region.shape != shape:
        raise ValueError(f"region {region.shape} and image {shape} differ in shape")
    return np.ascontiguousarray(region, dtype=bool).view(np.uint8)


def histogram(k, data: np.ndarray, region, bins: int, lo: float,
              hi: float) -> np.ndarray | None:
    """``cv2.calcHist([data], [0], region, [bins], [lo, hi])`` as int64,
    through the loaded kernels ``k`` (:func:`loaded`), for 2-D uint8,
    uint16 (``lo`` 0, ``hi`` ``bins``) or float32 data; None otherwise.

    Float values fall in bin ``floor(v * a + b)`` in double precision with
    OpenCV's ``a = bins / (hi - lo)`` and ``b = -lo * a`` (the range as
    float32); values outside the bins are not counted, as in OpenCV, and
    neither is NaN (OpenCV 5 counts it in the last bin; the reader replaces
    NaN pixels, so no histogram here sees one).
    """
    data = np.asarray(data)
    if data.ndim != 2:
        return None
    reg = _region_u8(region, data.shape)
    data = np.ascontiguousarray(data)
    if data.dtype in (np.uint8, np.uint16) and lo == 0 and hi == bins:
        return k.hist_uniform(data, reg, int(bins), 1.0, 0.0)[0]
    if data.dtype == np.float32:
        low, high = float(np.float32(lo)), float(np.float32(hi))
        a = bins / (high - low)
        return k.hist_uniform(data, reg, int(bins), a, -low * a)[0]
    return None


def fine_histogram(k, img: np.ndarray, region: np.ndarray, nb: int):
    """:func:`poromet.adaptive._fine_histogram` of float32 ``img`` through
    the loaded kernels ``k``, in one pass over ``img`` and ``region`` as
    they are (strided views too): ``(hist, top, nb)``, ``(None, None, nb)``
    for an empty region, or None (use the reference) for a 2-D shape
    mismatch, a negative or non-finite value.  The bins are the reference's:
    the float32 product ``v * float32((nb - 1e-3) / top)`` truncated."""
    if img.ndim != 2 or img.dtype != np.float32 or np.shape(region) != img.shape:
        return None
    region = np.asarray(region)
    if region.dtype != np.bool_:
        return None
    n, top, hist, ok = k.fine_hist(img, region, int(nb))
    if n == 0:
        return None, None, nb
    return (hist, float(top), nb) if ok else None


def pair_median(k, img: np.ndarray, region: np.ndarray, threshold: float):
    """``(n, np.median(d[m]))`` of :func:`poromet.adaptive.noise_sigma`
    through the loaded kernels ``k``: the ``n`` horizontal neighbour pairs
    of float32 ``img`` both in ``region`` and above ``threshold``, and the
    median of their absolute differences as NumPy gives it (float32;
    ``None`` when a difference is 256 or more: use NumPy)."""
    img = np.ascontiguousarray(img, dtype=np.float32)
    reg = _region_u8(region, img.shape)
    n, med = k.pair_median(img, reg, np.float32(threshold))
    return (int(n), None) if n < 0 else (int(n), np.float32(med))


def unit_scale(k, data: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """``clip((float32(data) - lo) * float32(1 / (hi - lo)), 0, 1.5)`` in
    float32 for 2-D uint8/uint16 ``data``, through the loaded kernels ``k``
    (None for other data)."""
    if data.ndim != 2 or data.dtype not in (np.uint8, np.uint16):
        return None
    out = np.empty(data.shape, np.float32)
    k.unit_scale(np.ascontiguousarray(data), np.float32(lo), np.float32(1.0 / (hi - lo)), out)
    return out


def divide_scale_clip(k, f: np.ndarray, bg: np.ndarray, scale) -> bool:
    """``f = clip(f / bg * float32(scale), 0, 255)`` in place, through the
    loaded kernels ``k``, for C-contiguous float32 ``f`` and ``bg`` of one
    shape with no NaN in ``f``; False (nothing done) otherwise."""
    if (f.dtype != np.float32 or bg.dtype != np.float32 or f.shape != bg.shape or f.ndim != 2
            or not f.flags.c_contiguous or not bg.flags.c_contiguous):
        return False
    k.divide_scale_clip(f, bg, np.float32(scale))
    return True
