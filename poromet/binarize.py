"""Thresholds and binarization: voids (the dark phase) True, the rest False.

Every ``threshold_*`` function works on the *region's* pixels only: pass
``clean[region]`` (any shape, 8-bit scale 0-255) or a ready 256-bin
histogram with ``hist=``.  Thresholding a whole frame and then masking it is
a known trap (scikit-image issue 3604): the info bar, the stack and any
padding then shift the histogram.

Conventions (the same as ImageJ's "voids black" workflow)
---------------------------------------------------------
* The histogram has 256 bins, one per gray level; a value ``v`` falls in
  bin ``round(v)`` (clipped to 0-255).  For 8-bit data this is exactly
  ImageJ's histogram.
* A threshold ``t`` is a gray level; **voids are the pixels whose gray level
  is <= t**, i.e. ``value < t + 0.5`` for float data.  This is ImageJ's rule
  for ``setAutoThreshold("Default")`` on a normal (non-inverted) LUT, where
  the dark phase is selected as ``[0, t]``.

:func:`segment` chains threshold, pore clean-up and the sensitivity band for
:func:`poromet.measure.measure_field`.

The histograms and the ImageJ-parity functions (``IJ_IsoData`` port, naive
method) live in :mod:`poromet.ijparity` and are importable from here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import PipelineError, PorometError
from .ijparity import (  # re-exported: their home is ijparity
    NBINS,
    _get_hist,
    _nonempty,
    binarize_ij_default,
    imagej_histogram,
    region_histogram,
    threshold_ij_default,
)

__all__ = [
    "Segmentation",
    "segment",
    "binarize",
    "cleanup_pores",
    "cleaned_count",
    "region_histogram",
    "imagej_histogram",
    "binarize_ij_default",
    "threshold_otsu",
    "threshold_isodata",
    "threshold_ij_default",
    "threshold_li",
    "threshold_triangle",
    "threshold_yen",
    "threshold_minimum",
    "threshold_valley",
    "THRESHOLD_METHODS",
]


# -- classic global methods (histogram based) -------------------------------

def _levels() -> np.ndarray:
    return np.arange(NBINS, dtype=np.float64)


def _cumulative(values, hist, name: str):
    """(histogram, gray levels, cumulative counts, cumulative count x level)."""
    h = _get_hist(values, hist).astype(np.float64)
    _nonempty(h, name)
    lv = _levels()
    return h, lv, np.cumsum(h), np.cumsum(h * lv)


def threshold_otsu(values=None, *, hist=None) -> float:
    """Otsu's threshold (maximum between-class variance) on the region.

    Returns the level ``t`` maximising the between-class variance of
    ``{<= t}`` and ``{> t}``; ties resolve to the middle of the plateau.

    Otsu is biased toward the larger class when the classes are unequal
    (porosity of a few percent), so it overestimates porosity on dense
    materials; it is offered for comparison with other software.

    Examples
    --------
    >>> threshold_otsu(np.r_[np.full(50, 40.0), np.full(50, 200.0)])
    119.0
    """
    h, lv, w0, m0 = _cumulative(values, hist, "otsu")
    tot, totm = w0[-1], m0[-1]
    w1 = tot - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (totm * w0 - m0 * tot) ** 2 / (w0 * w1)
    var[~np.isfinite(var)] = -1
    best = var.max()
    if best <= 0:
        return float(lv[np.flatnonzero(h)[0]])
    idx = np.flatnonzero(var >= best * (1 - 1e-12))
    return float(np.floor((idx[0] + idx[-1]) / 2))


def threshold_isodata(values=None, *, hist=None) -> float:
    """Ridler-Calvard ISODATA: ``t = (mean(<= t) + mean(> t)) / 2``.

    Returns the lowest level that satisfies the fixed point (as
    scikit-image), rounded down to a gray level.

    Examples
    --------
    >>> threshold_isodata(np.r_[np.full(50, 40.0), np.full(50, 200.0)])
    120.0
    """
    h, lv, c0, m0 = _cumulative(values, hist, "isodata")
    tot, totm = c0[-1], m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = m0 / c0
        hi = (totm - m0) / (tot - c0)
        mid = (lo + hi) / 2
    ok = np.isfinite(mid) & (c0 > 0) & (tot - c0 > 0)
    cand = np.flatnonzero(ok & (lv <= mid) & (mid < lv + 1))
    if cand.size:
        return float(cand[0])
    cand = np.flatnonzero(ok)
    if cand.size == 0:
        return float(np.flatnonzero(h)[0])
    return float(cand[np.argmin(np.abs(mid[cand] - lv[cand]))])


def threshold_li(values=None, *, hist=None, tolerance: float = 0.5) -> float:
    """Li's iterative minimum cross-entropy threshold on the region histogram.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> v = np.r_[rng.normal(50, 5, 400), rng.normal(180, 5, 600)]
    >>> 60 < threshold_li(v) < 170
    True
    """
    h = _get_hist(values, hist).astype(np.float64)
    _nonempty(h, "li")
    lv = _levels() + 1.0        # strictly positive intensities for the logs
    n = h.sum()
    t = float((h * lv).sum() / n)
    for _ in range(1000):
        below = lv <= t
        nb, na = h[below].sum(), h[~below].sum()
        if nb == 0 or na == 0:
            break
        mb = (h[below] * lv[below]).sum() / nb
        ma = (h[~below] * lv[~below]).sum() / na
        t_new = (mb - ma) / (math.log(mb) - math.log(ma)) if mb != ma else mb
        if abs(t_new - t) < tolerance:
            t = t_new
            break
        t = t_new
    return float(min(max(math.floor(t - 1.0), 0), NBINS - 1))


def threshold_triangle(values=None, *, hist=None) -> float:
    """Zack's triangle method, taken on the longer tail (ImageJ's variant).

    Suits a dominant solid peak with a long dark tail of voids.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> v = np.r_[rng.uniform(10, 150, 100), rng.normal(200, 6, 2000)].clip(0, 255)
    >>> 150 < threshold_triangle(v) < 200
    True
    """
    h = _get_hist(values, hist).astype(np.float64)
    _nonempty(h, "triangle")
    nz = np.flatnonzero(h)
    lo, hi = int(nz[0]), int(nz[-1])
    peak = int(np.argmax(h))
    if lo == hi:
        return float(lo)
    # choose the longer side; flip so the tail is always on the left
    flip = (peak - lo) < (hi - peak)
    if flip:
        h = h[::-1]
        lo, hi, peak = NBINS - 1 - hi, NBINS - 1 - lo, NBINS - 1 - peak
    start = max(lo - 1, 0)
    x = np.arange(start, peak + 1, dtype=np.float64)
    # distance of (x, h[x]) from the line (start, h[start]) -> (peak, h[peak])
    dx, dy = peak - start, h[peak] - h[start]
    d = dy * (x - start) - dx * (h[start:peak + 1] - h[start])
    k = int(start + np.argmax(d))
    if flip:
        k = NBINS - 1 - k - 1
    return float(min(max(k, 0), NBINS - 1))


def threshold_yen(values=None, *, hist=None) -> float:
    """Yen's maximum-correlation threshold (scikit-image on the region histogram)."""
    from skimage.filters import threshold_yen as _yen

    h = _get_hist(values, hist)
    _nonempty(h, "yen")
    nz = np.flatnonzero(h)
    if nz[0] == nz[-1]:
        return float(nz[0])
    return float(_yen(hist=(h, _levels())))


def threshold_minimum(values=None, *, hist=None) -> float:
    """Prewitt's minimum method: smooth until bimodal, take the valley.

    Raises
    ------
    PorometError
        When the histogram never becomes bimodal (no valley to take).
    """
    from skimage.filters import threshold_minimum as _minimum

    h = _get_hist(values, hist)
    _nonempty(h, "minimum")
    try:
        return float(_minimum(hist=(h, _levels())))
    except RuntimeError as exc:
        raise PorometError(
            f"threshold.method 'minimum': {exc}; the region's histogram has no valley, "
            "use 'valley' or 'otsu'") from None


def threshold_valley(values=None, *, hist=None) -> float:
    """Midpoint between the void level and the solid level.

    The solid level is the mode of the bright phase; the void level is
    the mode of the dark side, found on the lightly smoothed histogram below
    the ImageJ-Default threshold.  A pixel on a blurred pore edge has a
    gray value that is the area-weighted mean of the two phases, so cutting
    at the midpoint counts half-covered pixels half the time and the edge
    contributes no bias (unlike Otsu, which follows the larger class).
    """
    h = _get_hist(values, hist).astype(np.float64)
    _nonempty(h, "valley")
    from scipy.ndimage import gaussian_filter1d

    s = gaussian_filter1d(h, 2.0, mode="nearest")
    t0 = int(threshold_ij_default(hist=h.astype(np.int64)))
    solid = t0 + 1 + int(np.argmax(s[t0 + 1:])) if t0 + 1 < NBINS else NBINS - 1
    dark = int(np.argmax(s[: t0 + 1]))
    return float((solid + dark) / 2.0)


THRESHOLD_METHODS = {
    "otsu": threshold_otsu,
    "isodata": threshold_isodata,
    "ij_default": threshold_ij_default,
    "li": threshold_li,
    "triangle": threshold_triangle,
    "yen": threshold_yen,
    "minimum": threshold_minimum,
    "valley": threshold_valley,
}


# -- binarization and clean-up -----------------------------------------------

def binarize(clean: np.ndarray, region: np.ndarray, threshold: float) -> np.ndarray:
    """Voids = region pixels whose gray level is <= ``threshold``.

    A float pixel counts as void when ``value < threshold + 0.5`` (its
    nearest gray level is at or below the threshold); for integer data this
    is ``value <= threshold``.  Pixels outside ``region`` are never voids.
    """
    clean = np.asarray(clean)
    region = np.asarray(region, dtype=bool)
    if np.issubdtype(clean.dtype, np.integer):
        return (clean <= threshold) & region
    return (clean < threshold + 0.5) & region


def cleanup_pores(pores: np.ndarray, region: np.ndarray, *, min_area_px: int = 0,
                  fill_holes: bool = False) -> np.ndarray:
    """Remove void specks smaller than ``min_area_px``; optionally fill holes.

    Parameters
    ----------
    pores : ndarray of bool, (H, W)
    region : ndarray of bool, (H, W)
    min_area_px : int
        Connected voids (8-connectivity) with fewer pixels are set to solid.
    fill_holes : bool
        Solid islands fully enclosed by one void (not touching the region
        border) become void: bright specks inside a pore.

    Both operations are monotone (a superset in gives a superset out), so
    the porosity band stays ordered.

    Examples
    --------
    >>> p = np.zeros((6, 6), bool); p[0, 0] = True; p[2:5, 2:5] = True
    >>> int(cleanup_pores(p, np.ones_like(p), min_area_px=2).sum())
    9
    """
    pores = np.asarray(pores, dtype=bool) & region
    if min_area_px and min_area_px > 1:
        from .labels import remove_small

        # 8-connected: the same components as ndi.label with a 3x3 structure;
        # the specks are cleared in place (pores is a fresh array here)
        remove_small(pores, min_area_px)
    if fill_holes:
        from scipy import ndimage as ndi

        # a hole: non-void component (4-connected) not connected to the outside
        solid = ~pores
        solid_out = solid | ~region
        lab, n = ndi.label(solid_out)
        if n:
            border = np.zeros(n + 1, bool)
            border[np.unique(np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]])] = True
            outside_touch = np.unique(lab[~region])
            border[outside_touch] = True
            border[0] = True
            holes = ~border[lab]
            pores = (pores | holes) & region
    return pores


def cleaned_count(raw: np.ndarray, region: np.ndarray, *, min_area_px: int = 0,
                  fill_holes: bool = False, plus: np.ndarray | None = None) -> int:
    """``count_nonzero(cleanup_pores(raw, region, ...) | plus)``: the pixel
    count the porosity band needs, without the cleaned mask when only specks
    are removed (:func:`poromet.labels.count_kept`).

    ``raw`` must lie inside ``region`` (as :func:`binarize` makes it).

    Examples
    --------
    >>> p = np.zeros((6, 6), bool); p[0, 0] = True; p[2:5, 2:5] = True
    >>> cleaned_count(p, np.ones_like(p), min_area_px=2)
    9
    """
    if fill_holes or not (min_area_px and min_area_px > 1):
        q = cleanup_pores(raw, region, min_area_px=min_area_px, fill_holes=fill_holes)
        if plus is not None:
            q |= plus
        return int(np.count_nonzero(q))
    from .labels import count_kept

    return count_kept(raw, min_area_px, plus=plus)


@dataclass(frozen=True, eq=False)
class Segmentation:
    """The binarized field.

    Attributes
    ----------
    pores : ndarray of bool, (H, W)
        Voids True; always False outside the region.
    threshold : float
        Gray level (8-bit scale of the preprocessed image); voids <= it.
    porosity_low, porosity_high : float
        Porosity with the threshold moved by -band / +band gray levels,
        through the same clean-up (``porosity_low <= porosity <= porosity_high``).
    histogram : ndarray of int64, (256,)
        Histogram of the preprocessed image inside the region.
    method : str
        The threshold method used.
    """

    pores: np.ndarray
    threshold: float
    porosity_low: float
    porosity_high: float
    histogram: np.ndarray
    method: str = ""

    @property
    def porosity(self) -> float:
        return float(self.pores.sum() / max(int(self.histogram.sum()), 1))


def min_area_px(cleanup, pixel_size_um: float | None) -> int:
    """The clean-up's minimum pore area in pixels (µm² converted when possible)."""
    if cleanup.min_pore_area_um2 is not None and pixel_size_um:
        return int(math.ceil(cleanup.min_pore_area_um2 / (pixel_size_um ** 2)))
    return int(cleanup.min_pore_area_px)


def segment(clean: np.ndarray, region: np.ndarray, *, threshold, cleanup,
            pixel_size_um: float | None = None, smooth_sigma: float = 0.0) -> Segmentation:
    """Threshold the preprocessed field inside ``region`` and clean up voids.

    Parameters
    ----------
    clean : ndarray, (H, W)
        Output of :func:`poromet.preprocess.preprocess` (8-bit scale).
    region : ndarray of bool, (H, W)
    threshold : ThresholdSettings
        ``method`` in {'otsu', 'isodata', 'ij_default', 'li', 'triangle',
        'yen', 'minimum', 'valley', 'manual'}; ``value`` for 'manual';
        ``band`` in gray levels for the sensitivity band.
    cleanup : CleanupSettings
    pixel_size_um : float, optional
        Converts ``cleanup.min_pore_area_um2`` to pixels.
    smooth_sigma : float
        Gaussian sigma (px) of the smoothing that made ``clean`` (from
        ``preprocess(..., return_sigma=True)``); method 'local' corrects
        the pore outlines for the shrinking it causes at curved edges.

    Returns
    -------
    Segmentation
    """
    clean = np.asarray(clean)
    region = np.asarray(region, dtype=bool)
    if clean.shape != region.shape:
        raise PorometError(f"segment: image {clean.shape} and region {region.shape} differ")
    hist = region_histogram(clean, region)
    n_region = int(np.count_nonzero(region))
    if n_region == 0:
        raise PorometError("segment: the region is empty (0 pixels)")
    method = threshold.method
    if method == "local":
        return _segment_local(clean, region, hist, threshold=threshold, cleanup=cleanup,
                              pixel_size_um=pixel_size_um, smooth_sigma=smooth_sigma)
    if method == "manual":
        if threshold.value is None:
            raise PipelineError("threshold.value: not set but threshold.method is 'manual'; "
                                "allowed: a gray level 0-255 (8-bit scale)")
        t = float(threshold.value)
    else:
        fn = THRESHOLD_METHODS.get(method)
        if fn is None:
            raise PipelineError(f"threshold.method: got {method!r}; allowed: "
                                + ", ".join(repr(m) for m in [*THRESHOLD_METHODS, "manual"]))
        t = float(fn(hist=hist))
    area = min_area_px(cleanup, pixel_size_um)
    fill = bool(cleanup.fill_holes)

    def run(level: float) -> np.ndarray:
        return cleanup_pores(binarize(clean, region, level), region,
                             min_area_px=area, fill_holes=fill)

    pores = run(t)
    p = np.count_nonzero(pores) / n_region
    band = float(threshold.band)
    if band > 0:
        def shifted(level: float) -> float:
            return cleaned_count(binarize(clean, region, level), region, min_area_px=area,
                                 fill_holes=fill) / n_region

        p_lo, p_hi = shifted(t - band), shifted(t + band)
    else:
        p_lo = p_hi = p
    return Segmentation(pores=pores, threshold=t, porosity_low=float(min(p_lo, p)),
                        porosity_high=float(max(p_hi, p)), histogram=hist, method=method)


#: Soft-bordered non-void patches darker than this fraction of the void/solid
#: contrast are pore floors (see :func:`poromet.adaptive.fill_dark_floors`).
SOFT_FLOOR_FRACTION = 0.9


def _segment_local(clean, region, hist, *, threshold, cleanup, pixel_size_um,
                   smooth_sigma=0.0):
    """``segment`` for method 'local' (see :mod:`poromet.adaptive`)."""
    from . import kernels
    from .adaptive import (CURVATURE_GAIN, fill_dark_floors, gradient_magnitude,
                           local_threshold, tangential_curvature)

    # the darkness a sub-blur void must reach relaxes with the smoothing,
    # which makes the smallest voids shallower (at little smoothing the
    # stricter level keeps grain boundaries between rims out)
    blob_depth = float(np.clip(0.5 + 0.2 * smooth_sigma, 0.65, 0.8))
    if (not cleanup.fill_holes and min(clean.shape) >= 3 and clean.dtype == np.float32
            and kernels.available()):
        return _segment_local_fused(clean, region, hist, threshold=threshold, cleanup=cleanup,
                                    pixel_size_um=pixel_size_um, smooth_sigma=smooth_sigma,
                                    blob_depth=blob_depth)
    T, t, dark, solid = local_threshold(clean, region, blob_depth=blob_depth)
    fill_floors = getattr(cleanup, "fill_floors", True)
    # float16 halves the memory of large fields (the floor rule only
    # averages it); the conversion costs more than it saves on small ones
    gdt = np.float16 if clean.size > 4_000_000 else np.float32
    grad = np.empty(clean.shape, gdt) if fill_floors else None
    if smooth_sigma > 0:
        # the smoothing moved curved edges by sigma^2 * kappa / 2 (convex
        # pores shrink, narrow solid necks thin): move the level back
        # (the gradient comes from the same derivatives)
        tangential_curvature(clean, scale=CURVATURE_GAIN * smooth_sigma ** 2 / 2, add_to=T,
                             gradient_out=grad)
    elif fill_floors:
        grad = gradient_magnitude(clean, dtype=gdt)
    area = min_area_px(cleanup, pixel_size_um)
    n_region = int(region.sum())
    floor_level = dark + 0.8 * (solid - dark)
    soft_level = dark + SOFT_FLOOR_FRACTION * (solid - dark)
    T -= clean                 # clean < T + delta  <=>  T - clean > -delta

    def run(delta: float) -> np.ndarray:
        return cleanup_pores((T > np.float32(-delta)) & region, region,
                             min_area_px=area, fill_holes=bool(cleanup.fill_holes))

    pores = run(0.0)
    floors = None
    if fill_floors:
        voids = pores
        pores = fill_dark_floors(voids, clean, region, level=floor_level,
                                 soft_level=soft_level, gradient=grad)
        floors = pores & ~voids
        del voids
    del grad
    p = np.count_nonzero(pores) / n_region
    band = float(threshold.band)
    if band > 0:
        # the band moves the threshold and keeps the floors found at it (a
        # floor is a region decision, not a gray level; re-deciding it at
        # each shifted level tripled the cost and let a floor flip with a
        # one-pixel change in the ring around it).  Both ends stay ordered:
        # the clean-up is monotone and the floors are added to both.
        def shifted(delta: float) -> float:
            return cleaned_count((T > np.float32(-delta)) & region, region, min_area_px=area,
                                 fill_holes=bool(cleanup.fill_holes), plus=floors) / n_region

        p_lo, p_hi = shifted(-band), shifted(band)
    else:
        p_lo = p_hi = p
    return Segmentation(pores=pores, threshold=t, porosity_low=float(min(p_lo, p)),
                        porosity_high=float(max(p_hi, p)), histogram=hist, method="local")


def _segment_local_fused(clean, region, hist, *, threshold, cleanup, pixel_size_um,
                         smooth_sigma, blob_depth):
    """:func:`_segment_local` through the compiled kernels of
    :mod:`poromet.kernels`: the same rules, two passes instead of some forty
    (the threshold, the curvature correction and the three comparisons in
    one; speck removal without labels)."""
    from .adaptive import CURVATURE_GAIN, LOCAL_RULES, fill_dark_floors, field_levels
    from .kernels import keep_large, threshold_codes

    dark, solid = field_levels(clean, region)
    t = dark + 0.5 * (solid - dark)
    band = float(threshold.band)
    fill_floors = getattr(cleanup, "fill_floors", True)
    scale = CURVATURE_GAIN * smooth_sigma ** 2 / 2 if smooth_sigma > 0 else 0.0
    code, grad = threshold_codes(clean, region, t=t, dark=dark, solid=solid,
                                 blob_depth=blob_depth, curvature_scale=scale,
                                 band=max(band, 0.0), gradient=fill_floors, **LOCAL_RULES)
    area = min_area_px(cleanup, pixel_size_um)
    n_region = int(np.count_nonzero(region))
    pores = keep_large(code, 2, area)
    floors = None
    if fill_floors:
        voids = pores
        pores = fill_dark_floors(voids, clean, region, level=dark + 0.8 * (solid - dark),
                                 soft_level=dark + SOFT_FLOOR_FRACTION * (solid - dark),
                                 gradient=grad)
        floors = pores & ~voids
        del voids
    del grad
    p = np.count_nonzero(pores) / n_region
    if band > 0:
        def shifted(level: int) -> float:
            kept = keep_large(code, level, area)
            n = int(np.count_nonzero(kept))
            if floors is not None:
                n += int(np.count_nonzero(floors & ~kept))
            return n / n_region

        p_lo, p_hi = shifted(3), shifted(1)
    else:
        p_lo = p_hi = p
    return Segmentation(pores=pores, threshold=t, porosity_low=float(min(p_lo, p)),
                        porosity_high=float(max(p_hi, p)), histogram=hist, method="local")
