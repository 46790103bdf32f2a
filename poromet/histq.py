"""Percentiles and medians from histograms, equal to NumPy's to the last bit.

``np.percentile`` and ``np.median`` partially sort a copy of the pixels
(10-20 ms for a 1280x960 field); a histogram (OpenCV's ``calcHist`` reads
the region as a mask, so nothing is copied) gives the same order statistics
in a few milliseconds.  The interpolation below repeats NumPy's float64
operations in NumPy's order, so the results are *equal*, not close:

* :func:`percentile_int` - ``np.percentile(data[region], q)`` (method
  'linear') for uint8 and uint16 data;
* :func:`median_f32` - ``np.median(values[mask])`` for float32 values in
  ``[0, 256)`` (the 8-bit gray scale), through a histogram of 1/256
  gray-level bins and an exact sort of the one or two bins that hold the
  middle.

Both return None where they do not apply (other dtypes, NaN, values out of
range, too many pixels for OpenCV's float32 counts); callers then use NumPy.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["masked_hist", "quantiles_from_counts", "percentile_int", "median_f32"]

#: OpenCV's histogram counts are float32: exact below 2**24 pixels.
_MAX_PIXELS = 2 ** 24


def quantiles_from_counts(counts: np.ndarray, q) -> list[float]:
    """``np.quantile(values, q)`` (method 'linear') of integer ``values``
    given by their histogram (``counts[i]`` values equal to ``i``).

    Examples
    --------
    >>> v = np.array([3, 1, 4, 1, 5, 9, 2, 6], np.uint8)
    >>> quantiles_from_counts(np.bincount(v), [0.1, 0.5, 0.9]) == list(np.quantile(v, [0.1, 0.5, 0.9]))
    True
    """
    cum = np.cumsum(counts, dtype=np.int64)
    n = int(cum[-1])
    q = np.asarray(q, dtype=np.float64).ravel()
    virtual = (n - 1) * q                        # NumPy's virtual index ('linear')
    out = []
    for v in virtual.tolist():
        if v >= n - 1 or v < 0:                  # NumPy takes the end value
            i = n - 1 if v >= n - 1 else 0
            out.append(float(np.searchsorted(cum, i, side="right")))
            continue
        below = math.floor(v)
        t = v - below
        a = float(np.searchsorted(cum, below, side="right"))
        b = float(np.searchsorted(cum, below + 1, side="right"))
        d = b - a                                # NumPy's _lerp
        out.append(b - d * (1 - t) if t >= 0.5 else a + d * t)
    return out


def masked_hist(data: np.ndarray, region: np.ndarray | None, bins: int, lo: float,
                hi: float, *, overwrite: bool = False) -> np.ndarray:
    """``cv2.calcHist`` of ``data`` in ``region`` (uniform bins on [lo, hi)), int64.

    OpenCV's masked histogram is slow for 16-bit and float data (2-4x the
    unmasked one), so outside ``region`` the pixels are set to ``lo`` (bin
    0) in a copy (in ``data`` itself when ``overwrite``), the whole image is
    counted and bin 0 is corrected by the number of outside pixels: the same
    counts.  8-bit data keeps OpenCV's mask (its fast path).  Counts are
    exact below 2**24 pixels (OpenCV counts in float32).  Once the compiled
    kernels are loaded, :func:`poromet.kernels.histogram` counts the same
    bins in one pass.
    """
    import cv2

    from .kernels import histogram, loaded

    k = loaded()
    if k is not None:
        h = histogram(k, data, region, bins, lo, hi)   # one pass, no copy; the same counts
        if h is not None:
            return h
    data = np.ascontiguousarray(data)
    if region is None or data.dtype == np.uint8:
        mask = None if region is None else np.ascontiguousarray(region).view(np.uint8)
        return cv2.calcHist([data], [0], mask, [bins], [lo, hi]).ravel().astype(np.int64)
    outside = ~np.asarray(region, dtype=bool)
    y = data if overwrite else data.copy()
    np.copyto(y, np.asarray(lo, dtype=y.dtype), where=outside)
    h = cv2.calcHist([y], [0], None, [bins], [lo, hi]).ravel().astype(np.int64)
    h[0] -= np.count_nonzero(outside)
    return h


def percentile_int(data: np.ndarray, region: np.ndarray | None, q) -> list[float] | None:
    """``np.percentile(data[region], q)`` for uint8/uint16 ``data`` (None otherwise).

    Parameters
    ----------
    data : ndarray, shape (H, W)
    region : ndarray of bool, shape (H, W), or None for every pixel
    q : sequence of float
        Percentiles in [0, 100].

    Returns
    -------
    list of float, or None when not applicable (other dtypes, an empty
    region, 2**24 pixels or more).

    Examples
    --------
    >>> d = np.arange(100, dtype=np.uint8).reshape(10, 10)
    >>> r = d % 3 == 0
    >>> percentile_int(d, r, [1, 50, 99.5]) == list(np.percentile(d[r], [1, 50, 99.5]))
    True
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.dtype not in (np.uint8, np.uint16) or data.size >= _MAX_PIXELS:
        return None
    bins = 256 if data.dtype == np.uint8 else 65536
    counts = masked_hist(data, region, bins, 0, bins)
    if counts.sum() == 0:
        return None
    return quantiles_from_counts(counts, np.true_divide(np.asarray(q, np.float64), 100))


def median_f32(values: np.ndarray, mask: np.ndarray, *,
               overwrite: bool = False) -> np.float32 | None:
    """``np.median(values[mask])`` for float32 ``values`` in [0, 256).

    ``overwrite``: ``values`` outside ``mask`` may be overwritten (saves a copy).

    Returns None (use NumPy) for other dtypes, NaN or values out of range,
    fewer than one pixel in ``mask`` or 2**24 pixels or more.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = rng.uniform(0, 40, (50, 60)).astype(np.float32); m = v > 3
    >>> bool(median_f32(v, m) == np.median(v[m]))
    True
    """
    if (values.dtype != np.float32 or values.ndim != 2 or values.shape != mask.shape
            or values.size >= _MAX_PIXELS):
        return None
    n = int(np.count_nonzero(mask))
    if n == 0:
        return None
    # bins of 1/256 gray level: bin(x) = floor(256 x), exact in OpenCV's double
    cum = np.cumsum(masked_hist(values, mask, 65536, 0.0, 256.0, overwrite=overwrite))
    if int(cum[-1]) != n:                        # NaN or values outside [0, 256)
        return None
    ks = [n // 2 - 1, n // 2] if n % 2 == 0 else [n // 2]
    j0 = int(np.searchsorted(cum, ks[0], side="right"))
    j1 = int(np.searchsorted(cum, ks[-1], side="right"))
    sel = (values >= np.float32(j0 / 256)) & (values < np.float32((j1 + 1) / 256))
    sel &= mask
    cand = np.sort(values[sel])
    offset = int(cum[j0 - 1]) if j0 > 0 else 0
    return np.mean(cand[[k - offset for k in ks]])     # NumPy's median: mean of the middle
