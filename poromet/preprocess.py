"""Preprocessing: 8-bit scaling, charging-streak removal, denoising, shading.

:func:`preprocess` turns a raw monochrome field into a float32 image on an
8-bit gray scale (0-255), same shape in and out, ready for a *global*
threshold inside the region.  Only pixels inside ``region`` feed any
statistic, so the info bar, the laminated stack or padding never shift the
result.

Steps (each can be switched off in ``[preprocess]``)
----------------------------------------------------
1. **Scale** (:func:`to_gray8`): uint8 as is; 16-bit and float data mapped
   linearly by the region's robust range (0.01 % and 99.99 % quantiles)
   onto 0-255, so thresholds and the band are always in 8-bit gray levels.
2. **Scan-line correction** (:func:`correct_scan_lines`, ``scan_lines``):
   charging makes whole scan lines brighter or darker; each row is divided
   by its solid-phase level relative to its neighbour rows.
3. **Denoise** (:func:`denoise`): median (default, OpenCV), gaussian,
   bilateral or non-local means.  Low-dose SEM noise is strong enough to
   make single pixels cross any threshold; a 3 px median removes that
   speckle without moving straight edges.
4. **Shading** (:func:`flatten_background`): detector geometry and charging
   give a smooth brightness gain of up to +-40 % across a field; a global
   threshold then counts the dark side's solid as pores.  The background is
   estimated on the *solid phase only* (pores and their bright rims left
   out), as a normalised Gaussian average at low resolution, then divided
   out (``divide``, for a multiplicative gain, the SEM case) or subtracted.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import PipelineError, PorometError

__all__ = [
    "preprocess",
    "to_gray8",
    "denoise",
    "correct_scan_lines",
    "flatten_background",
    "solid_mask",
]


def _region(region, shape) -> np.ndarray:
    if region is None:
        return np.ones(shape, bool)
    region = np.asarray(region, dtype=bool)
    if region.shape != tuple(shape):
        raise PorometError(f"region shape {region.shape} differs from image shape {tuple(shape)}")
    if not region.any():
        raise PorometError("preprocess: the region is empty (0 pixels)")
    return region


def to_gray8(data: np.ndarray, region: np.ndarray | None = None, *,
             quantiles: tuple[float, float] = (0.0001, 0.9999)) -> np.ndarray:
    """Map an image to float32 on the 8-bit gray scale (0-255).

    uint8 data is returned as float32 unchanged.  Other data is mapped
    linearly so the region's ``quantiles`` go to 0 and 255 (values beyond
    are clipped), so statistics come from the region alone.

    Examples
    --------
    >>> d = np.array([[1000, 2000], [3000, 60000]], np.uint16)
    >>> r = np.array([[True, True], [True, False]])
    >>> to_gray8(d, r, quantiles=(0, 1)).tolist()
    [[0.0, 127.5], [255.0, 255.0]]
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise PorometError(f"preprocess: expected a 2-D monochrome image, got shape {data.shape}")
    if data.dtype == np.uint8:
        return data.astype(np.float32)
    region = _region(region, data.shape)
    if data.dtype == np.uint16:
        lo, hi = _uint16_range(data, region, quantiles)
    else:
        vals = data[region]
        vals = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
        if vals.size == 0:
            raise PorometError("preprocess: the region holds no finite pixel values")
        lo, hi = np.quantile(vals, quantiles)
        if hi <= lo:
            lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        return np.zeros(data.shape, np.float32)
    out = data.astype(np.float32)
    out -= np.float32(lo)
    out *= np.float32(255.0 / (hi - lo))
    np.clip(out, 0, 255, out=out)
    if data.dtype.kind == "f":
        np.nan_to_num(out, copy=False, nan=0.0)
    return out


def _uint16_range(data: np.ndarray, region: np.ndarray, quantiles) -> tuple[float, float]:
    """``np.quantile(data[region], quantiles)`` (linear) from a 65536-bin histogram.

    Same values as NumPy's, without copying and partially sorting the
    region's pixels; falls back to the region's min/max when the quantiles
    coincide.
    """
    import cv2

    if region.sum() < 2**24:
        counts = cv2.calcHist([np.ascontiguousarray(data)], [0], region.view(np.uint8),
                              [65536], [0, 65536]).ravel().astype(np.int64)
    else:
        counts = np.bincount(data[region], minlength=65536)
    cum = np.cumsum(counts)
    n = int(cum[-1])
    out = []
    for q in quantiles:
        # numpy's virtual index for method='linear' (alpha = beta = 1)
        virtual = n * q + (1 + q * (1 - 1 - 1)) - 1
        below = math.floor(virtual)
        gamma = virtual - below
        below = min(max(below, 0), n - 1)
        above = min(below + 1, n - 1)
        a = float(np.searchsorted(cum, below, side="right"))
        b = float(np.searchsorted(cum, above, side="right"))
        out.append(float(np.quantile(np.array([a, b]), gamma)))
    lo, hi = out
    if hi <= lo:
        nz = np.flatnonzero(counts)
        lo, hi = float(nz[0]), float(nz[-1])
    return lo, hi


def denoise(img: np.ndarray, method: str = "median", size: float = 3) -> np.ndarray:
    """Denoise a float32 8-bit-scale image (OpenCV where possible).

    Parameters
    ----------
    method : {'none', 'median', 'gaussian', 'bilateral', 'nlmeans'}
    size : float
        median: kernel width (rounded up to odd); gaussian: sigma;
        bilateral: spatial sigma; nlmeans: filter strength h.
    """
    import cv2

    img = np.ascontiguousarray(img, dtype=np.float32)
    if method == "none" or size <= 0:
        return img
    if method == "median":
        k = max(int(math.ceil(size)) | 1, 1)
        if k == 1:
            return img
        if k <= 5:
            return cv2.medianBlur(img, k)
        from scipy.ndimage import median_filter

        return median_filter(img, size=k, mode="reflect")
    if method == "gaussian":
        return cv2.GaussianBlur(img, (0, 0), sigmaX=float(size), borderType=cv2.BORDER_REFLECT)
    if method == "bilateral":
        d = int(2 * math.ceil(2 * size) + 1)
        return cv2.bilateralFilter(img, d, 25.0, float(size))
    if method == "nlmeans":
        u8 = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        return cv2.fastNlMeansDenoising(u8, None, h=float(size) * 3, templateWindowSize=7,
                                        searchWindowSize=21).astype(np.float32)
    raise PipelineError(f"preprocess.denoise: got {method!r}; allowed: 'none', 'median', "
                        "'gaussian', 'bilateral', 'nlmeans'")


def solid_mask(img: np.ndarray, region: np.ndarray, *, margin_px: int = 3) -> np.ndarray:
    """Pixels surely in the solid phase: above a rough threshold, away from pores.

    The rough threshold is ImageJ's Default on the region; the pores it
    finds are dilated by ``margin_px`` so bright SE rims and blurred edges
    stay out of the background estimate.
    """
    import cv2

    from .binarize import region_histogram, threshold_ij_default

    t = threshold_ij_default(hist=region_histogram(img, region))
    dark = ((img < t + 0.5) | ~region).astype(np.uint8)
    if margin_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1,) * 2)
        dark = cv2.dilate(dark, k)
    return (dark == 0) & region


def _masked_smooth(img: np.ndarray, mask: np.ndarray, scale_px: float) -> np.ndarray:
    """Gaussian average of ``img`` over ``mask`` pixels (normalised convolution).

    Computed at a resolution of about ``scale_px / 8`` per pixel and resized
    back, so the cost does not grow with the scale.  Places far from any
    mask pixel take the values of the nearest ones.
    """
    import cv2

    H, W = img.shape
    f = max(1, int(scale_px // 8))
    h, w = max(1, int(math.ceil(H / f))), max(1, int(math.ceil(W / f)))
    m = mask.astype(np.float32)
    den = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA)
    del m       # img * mask without a second full-size float image alive
    num = cv2.resize(np.where(mask, img, np.float32(0)), (w, h), interpolation=cv2.INTER_AREA)
    sig = max(scale_px / f / 2.0, 0.5)
    num = cv2.GaussianBlur(num, (0, 0), sig, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(den, (0, 0), sig, borderType=cv2.BORDER_REFLECT)
    ok = den > 1e-3 * max(float(den.max()), 1e-12)
    if not ok.any():
        return np.full(img.shape, float(img[mask].mean()) if mask.any() else 1.0, np.float32)
    bg = np.zeros_like(num)
    bg[ok] = num[ok] / den[ok]
    if not ok.all():
        from scipy.ndimage import distance_transform_edt

        idx = distance_transform_edt(~ok, return_distances=False, return_indices=True)
        bg = bg[tuple(idx)]
    return cv2.resize(bg, (W, H), interpolation=cv2.INTER_LINEAR)


def flatten_background(img: np.ndarray, region: np.ndarray, *, method: str = "divide",
                       scale_px: float = 101, iterations: int = 3) -> np.ndarray:
    """Remove smooth shading, estimated on the solid phase inside the region.

    Parameters
    ----------
    img : ndarray of float32, (H, W), 8-bit scale
    region : ndarray of bool, (H, W)
    method : {'none', 'divide', 'subtract', 'rolling_ball'}
        ``divide`` (multiplicative gain, SEM shading), ``subtract``
        (additive offset), ``rolling_ball`` (ImageJ-like rolling ball of
        radius ``scale_px`` on the inverted image, subtracted).
    scale_px : float
        Size of the background features in pixels; must be large against
        the pores (a background that follows pores erases them).
    iterations : int
        Passes of (solid mask, background estimate, correction), each on
        the image flattened by the previous pass.

    Returns
    -------
    ndarray of float32
        The solid level is brought to its region median everywhere.
    """
    region = _region(region, img.shape)
    img = np.ascontiguousarray(img, dtype=np.float32)
    if method == "none":
        return img
    if method == "rolling_ball":
        return _rolling_ball(img, region, scale_px)
    if method not in ("divide", "subtract"):
        raise PipelineError(f"preprocess.background: got {method!r}; allowed: 'none', "
                            "'divide', 'subtract', 'rolling_ball'")
    # Each pass estimates the remaining shading on the current flattened
    # image and removes it; near the borders a Gaussian average of a ramp
    # lags behind, and repeating the correction shrinks that lag
    # geometrically (about 17 % -> 3 % -> 0.5 % of a +-40 % ramp).
    flat = img
    for _ in range(max(1, iterations)):
        solid = solid_mask(flat, region)
        if solid.sum() < 0.01 * region.sum():
            solid = region
        bg = _masked_smooth(flat, solid, scale_px)
        level = float(np.median(bg[region], overwrite_input=True))  # no second copy
        # in place after the first pass (same float32 operations, same order)
        if method == "divide":
            np.maximum(bg, 1e-3 * max(level, 1e-6), out=bg)
            np.divide(np.float32(level), bg, out=bg)
            flat = flat * bg if flat is img else np.multiply(flat, bg, out=flat)
        else:
            flat = flat - bg if flat is img else np.subtract(flat, bg, out=flat)
            flat += np.float32(level)
        del bg, solid
    return np.clip(flat, 0, 255, out=flat if flat is not img else None).astype(np.float32, copy=False)


def _rolling_ball(img, region, radius):
    from skimage.restoration import rolling_ball
    import cv2

    H, W = img.shape
    f = max(1, int(radius // 10))
    small = cv2.resize(255 - img, (max(1, W // f), max(1, H // f)), interpolation=cv2.INTER_AREA)
    bg = rolling_ball(small, radius=max(radius / f, 2))
    bg = cv2.resize(bg.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    inv = (255 - img) - bg
    out = 255 - inv
    level = float(np.median(out[region]))
    return np.clip(out - level + float(np.median(img[region])), 0, 255).astype(np.float32)


def correct_scan_lines(img: np.ndarray, region: np.ndarray, *, window: int = 15,
                       min_pixels: int = 16) -> np.ndarray:
    """Divide out row-to-row brightness jumps (charging scan lines).

    Each row's solid-phase level (median of the row's solid pixels inside
    the region) is compared with the running median of the levels over
    ``window`` rows; the row is divided by the ratio.  Slow variations
    (shading) are left to :func:`flatten_background`.
    """
    region = _region(region, img.shape)
    img = np.ascontiguousarray(img, dtype=np.float32)
    solid = solid_mask(img, region, margin_px=1)
    H = img.shape[0]
    lev = np.full(H, np.nan)
    for y in np.flatnonzero(solid.sum(axis=1) >= min_pixels):
        lev[y] = np.median(img[y, solid[y]])
    ok = np.isfinite(lev)
    if ok.sum() < 3:
        return img
    from scipy.ndimage import median_filter

    filled = np.interp(np.arange(H), np.flatnonzero(ok), lev[ok])
    ref = median_filter(filled, size=max(3, window | 1), mode="nearest")
    ratio = np.where(ok, filled / np.maximum(ref, 1e-6), 1.0)
    ratio = np.clip(ratio, 0.2, 5.0)
    rows = region.any(axis=1)
    out = img.copy()
    out[rows] /= ratio[rows, None].astype(np.float32)
    return out


def preprocess(data: np.ndarray, region: np.ndarray, settings=None, *,
               pixel_size_um: float | None = None, return_sigma: bool = False,
               field_shape: tuple[int, int] | None = None):
    """Scale, de-streak, denoise and flatten a field for global thresholding.

    Parameters
    ----------
    data : ndarray, (H, W)
        Raw monochrome image (uint8, uint16, float).
    region : ndarray of bool, (H, W)
        The trimmed region; the only pixels any statistic is taken from.
    settings : PreprocessSettings, optional
        The ``[preprocess]`` section (defaults when None).
    pixel_size_um : float, optional
        Not needed by the default settings (all sizes are in pixels).
    return_sigma : bool
        Also return the Gaussian sigma (px) of the noise-adaptive smoothing
        (0 for other denoise settings): the segmentation corrects the pore
        outlines for the blur it added.
    field_shape : (int, int), optional
        Shape of the whole field when ``data`` is a crop of it: the scale
        of the shading estimate follows the field, not the crop.

    Returns
    -------
    ndarray of float32, (H, W)
        8-bit gray scale (0-255); with ``return_sigma``, ``(image, sigma)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(180, 5, (64, 64)).clip(0, 255).astype(np.uint8)
    >>> out = preprocess(img, np.ones(img.shape, bool))
    >>> out.dtype, out.shape
    (dtype('float32'), (64, 64))
    """
    from .pipeline import PreprocessSettings

    s = settings or PreprocessSettings()
    data = np.asarray(data)
    region = _region(region, data.shape)
    if s.denoise == "adaptive":
        from .adaptive import adaptive_smooth, normalize_field

        img = normalize_field(data, region, flatten=s.background != "none",
                              field_shape=field_shape)
        if getattr(s, "scan_lines", False):
            img = correct_scan_lines(img, region)
        out, sigma = adaptive_smooth(img, region)
        return (out, sigma) if return_sigma else out
    img = to_gray8(data, region)
    if getattr(s, "scan_lines", False):
        img = correct_scan_lines(img, region)
    img = denoise(img, s.denoise, s.denoise_px)
    if s.background != "none":
        img = flatten_background(img, region, method=s.background, scale_px=s.background_px)
    return (img, 0.0) if return_sigma else img
