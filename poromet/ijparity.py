"""Histograms and ImageJ parity: 256-bin region histograms, ImageJ's
``IJ_IsoData`` ("Default") threshold and the naive by-hand method.

The conventions (bins, the ``<= t`` rule for voids) are those of
:mod:`poromet.binarize`, which re-exports every public name here.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import PorometError

__all__ = [
    "region_histogram",
    "imagej_histogram",
    "binarize_ij_default",
    "threshold_ij_default",
]

NBINS = 256


# -- histograms -------------------------------------------------------------

def _histogram_cv2(v: np.ndarray, region) -> np.ndarray | None:
    """OpenCV histogram, same bins as the NumPy path (None when not applicable).

    Float values are binned as the NumPy path's ``floor(x + 0.5)`` by
    :func:`_rounded_u8`, and the uint8 bins are counted in ``region`` by
    :func:`poromet.histq.masked_hist` (OpenCV's masked 8-bit histogram, no
    copy of the region's pixels).  Counts are float32 in OpenCV, exact below
    2**24 pixels.
    """
    import cv2

    if v.ndim != 2 or v.dtype not in (np.uint8, np.float32) or v.size >= 2**24:
        return None
    if v.dtype == np.float32 and not cv2.checkRange(v, True, -0.5, 255.5)[0]:
        v = np.clip(v, 0, 255)                  # out of range (or NaN/inf): clip a copy
        if not cv2.checkRange(v, quiet=True)[0]:          # NaN or inf
            return None
    from .histq import masked_hist

    if v.dtype == np.float32:
        v = _rounded_u8(v)
    return masked_hist(v, region, NBINS, 0, 256)


def _rounded_u8(v: np.ndarray) -> np.ndarray:
    """``floor(v + 0.5)`` (in double precision) as uint8, for float32 ``v``
    in [-0.5, 255.5): the bin of every pixel, so that the histogram is one
    of 8-bit data (OpenCV's fast masked path; a float histogram of a
    1280x960 field took 8 ms, this 3 ms).

    ``v + 0.5`` in float32 is the exact sum rounded, and rounding can change
    the floor only by rounding up onto an integer, so only the pixels whose
    float32 sum is an integer are checked in double precision.
    """
    y = v + np.float32(0.5)
    b = y.astype(np.uint8)                       # truncation: the floor, y >= 0
    cand = np.flatnonzero(y == b)
    if cand.size:
        exact = v.ravel()[cand].astype(np.float64) + 0.5
        low = exact < y.ravel()[cand]
        b.ravel()[cand[low]] -= 1
    return b


def region_histogram(values: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """256-bin histogram of gray levels (8-bit scale), region pixels only.

    Parameters
    ----------
    values : ndarray
        Pixel values on the 8-bit scale (uint8, or float 0-255).
    region : ndarray of bool, optional
        Same shape as ``values``; only True pixels are counted.

    Returns
    -------
    ndarray of int64, shape (256,)
        ``hist[i]`` counts the pixels with ``round(value) == i`` (values
        clipped to 0-255; NaN ignored).

    Examples
    --------
    >>> region_histogram(np.array([0, 0.4, 0.6, 254.7, 300]))[[0, 1, 255]]
    array([2, 1, 2])
    """
    v = np.asarray(values)
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != v.shape:
            raise PorometError(
                f"region shape {region.shape} differs from image shape {v.shape}")
    if v.dtype == np.float32 and v.ndim == 2 and region is not None:
        from .kernels import loaded

        k = loaded()                       # (exact bins either way: not worth loading Numba)
        if k is not None:                  # one pass, the same bins
            hist, odd = k.rounded_hist(np.ascontiguousarray(v), np.ascontiguousarray(region))
            if not odd:
                return hist
    if v.ndim == 2 and v.size >= 2**24 and v.dtype in (np.uint8, np.float32):
        # a very large field in bands of rows (OpenCV's counts are exact
        # below 2**24 pixels; NumPy's route below copies the region's pixels
        # in float64 several times: 5 GB more for a 16k x 12k field)
        rows = max(1, 2**23 // v.shape[1])
        return sum(region_histogram(v[y:y + rows], None if region is None else region[y:y + rows])
                   for y in range(0, v.shape[0], rows))
    fast = _histogram_cv2(v, region)
    if fast is not None:
        return fast
    if region is not None:
        v = v[region]
    v = v.ravel()
    if v.dtype == np.uint8:
        return np.bincount(v, minlength=NBINS).astype(np.int64)
    v = v.astype(np.float64, copy=False)
    v = v[np.isfinite(v)]
    idx = np.clip(np.floor(v + 0.5), 0, NBINS - 1).astype(np.intp)
    return np.bincount(idx, minlength=NBINS).astype(np.int64)


def _get_hist(values, hist) -> np.ndarray:
    if hist is None and values is None:
        raise PorometError("threshold: give the region's pixel values or hist=, got neither")
    if hist is not None:
        h = np.asarray(hist)
        if h.ndim != 1 or h.size != NBINS:
            raise PorometError(
                f"threshold: hist= must be a 1-D array of {NBINS} counts, got shape {h.shape}")
        if np.any(h < 0):
            raise PorometError("threshold: hist= has negative counts")
        return h.astype(np.int64)
    return region_histogram(values)


def _nonempty(h: np.ndarray, name: str) -> None:
    if h.sum() == 0:
        raise PorometError(f"threshold_{name}: the region holds no pixels (empty histogram)")


# -- ImageJ parity ----------------------------------------------------------

def threshold_ij_default(values=None, *, hist=None) -> float:
    """ImageJ's "Default" auto-threshold (IJ_IsoData), ported exactly.

    This is what ``setAutoThreshold("Default")`` and the Threshold dialog do
    in ImageJ 1.x (``AutoThresholder.defaultIsoData`` + ``IJIsoData``):

    1. if the histogram's mode holds more than twice the counts of the
       second-highest bin, its count is replaced by 1.5 x that bin's count;
    2. bins 0 and 255 are ignored (set to zero);
    3. iterative intermeans: starting at the lowest populated level, the
       split ``m`` moves up while ``m + 1 <= (mean(<= m) + mean(> m)) / 2``;
    4. the result is ``Math.round`` of the last mean of means.

    Voids (dark) are the levels ``<= t`` (ImageJ selects ``[0, t]``).

    Parameters
    ----------
    values : array_like, optional
        Region pixel values on the 8-bit scale.
    hist : array_like of int, shape (256,), optional
        A ready histogram (e.g. ImageJ's own) instead of ``values``.

    Returns
    -------
    float
        The threshold level (an integer value).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = np.r_[rng.normal(60, 8, 300), rng.normal(170, 8, 700)].clip(0, 255)
    >>> threshold_ij_default(v)
    115.0
    """
    h = _get_hist(values, hist).copy()
    _nonempty(h, "ij_default")
    # defaultIsoData: clip a dominant mode
    mode = int(np.argmax(h))                     # first maximum, like Java's '>'
    max_count = int(h[mode])
    others = h.copy()
    others[mode] = -1
    max_count2 = int(max(others.max(), 0))
    if max_count > 2 * max_count2 and max_count2 != 0:
        h[mode] = int(max_count2 * 1.5)
    # IJIsoData
    data = h.astype(np.float64)
    data[0] = 0
    data[-1] = 0
    nz = np.flatnonzero(data)
    if nz.size == 0:
        return float(NBINS // 2)
    lo, hi = int(nz[0]), int(nz[-1])
    if lo >= hi:
        return float(NBINS // 2)
    levels = np.arange(NBINS, dtype=np.float64)
    cs = np.cumsum(data)
    cm = np.cumsum(data * levels)
    tot, totm = cs[hi], cm[hi]
    moving = lo
    while True:
        s2 = cs[moving] - (cs[lo - 1] if lo > 0 else 0.0)
        s1 = cm[moving] - (cm[lo - 1] if lo > 0 else 0.0)
        s4 = tot - cs[moving]
        s3 = totm - cm[moving]
        result = (s1 / s2 + s3 / s4) / 2.0
        moving += 1
        if not ((moving + 1) <= result and moving < hi - 1):
            break
    return float(math.floor(result + 0.5))        # Java Math.round


def imagej_histogram(data: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The histogram ImageJ thresholds for ``data`` inside ``region``.

    8-bit data is used as is.  16-bit data is converted as ImageJ does in
    ``setAutoThreshold``: display range reset to the *whole image's* min and
    max (info bar included), then ``(v - min) * 256 / (max - min + 1) + 0.5``
    truncated and capped at 255.  Float data is scaled linearly min-max.

    Returns
    -------
    hist : ndarray, shape (256,)
    vmin, vmax : float
        The range that maps 0-255 back to raw values (0, 255 for 8-bit).
    """
    data = np.asarray(data)
    region = np.asarray(region, dtype=bool)
    if data.dtype == np.uint8:
        return np.bincount(data[region], minlength=NBINS).astype(np.int64), 0.0, 255.0
    if np.issubdtype(data.dtype, np.integer):
        vmin, vmax = int(data.min()), int(data.max())
        scale = 256.0 / (vmax - vmin + 1)
        v = np.maximum(data[region].astype(np.int64) - vmin, 0)
        b = np.minimum((v * scale + 0.5).astype(np.int64), 255)
        return np.bincount(b, minlength=NBINS).astype(np.int64), float(vmin), float(vmax)
    d = data.astype(np.float64)
    vmin, vmax = float(np.nanmin(d)), float(np.nanmax(d))
    span = vmax - vmin if vmax > vmin else 1.0
    b = np.clip(((d[region] - vmin) * (256.0 / span)).astype(np.int64), 0, 255)
    return np.bincount(b, minlength=NBINS).astype(np.int64), vmin, vmax


def binarize_ij_default(data: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, float]:
    """The naive method users apply by hand: ImageJ "Default" on the raw region.

    No denoising, no shading correction, no clean-up.  Reproduces
    ``makeRectangle(...); setAutoThreshold("Default")`` including ImageJ's
    16-bit conversion and the mapping of the 8-bit threshold back to raw
    values (``upper = min + t / 255 * (max - min)``).

    Returns
    -------
    pores : ndarray of bool, (H, W)
        Region pixels at or below the threshold.
    threshold : float
        The threshold in raw units (for 8-bit data: ImageJ's level).
    """
    data = np.asarray(data)
    region = np.asarray(region, dtype=bool)
    hist, vmin, vmax = imagej_histogram(data, region)
    t = threshold_ij_default(hist=hist)
    if data.dtype == np.uint8:
        upper = t
    elif vmax > vmin:
        upper = vmin + (t / 255.0) * (vmax - vmin)
    else:
        upper = vmin
    if np.issubdtype(data.dtype, np.integer):
        upper = math.floor(upper)          # ImageJ shows the integer level
    return (data <= upper) & region, float(upper)
