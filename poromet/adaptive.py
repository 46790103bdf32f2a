"""The default segmentation: noise-adaptive smoothing and edge-local thresholds.

Why not one global threshold?  On synthetic SEM fields whose truth is known
exactly (``poromet.synth``), every global method leaves a bias of one to
several percentage points, for reasons that are physical, not numerical:

* **Edges are blurred** by the probe, and most of the error sits in the
  one-pixel ring at pore boundaries.  A pore's boundary pixels are brighter
  than the midpoint between "pore" and "solid" when the pore is small or
  curved (they see more solid than void), and SE **edge brightening** lifts
  them further.  A global threshold therefore shrinks pores.
* **Noise** (low electron dose) turns solid pixels into false voids unless
  it is smoothed, and smoothing more than needed erases the smallest pores.
* **Pore bottoms** of large open pores are mid-gray: no threshold that keeps
  the solid white can make them black.

What this module does, each step a pure function:

1. :func:`normalize_field` - scale by the region's robust range and divide
   by a shading background estimated on the solid phase only (pores and the
   info bar never enter it; the estimate is made at half resolution, where
   it costs a quarter), so the solid is at :data:`SOLID_LEVEL` on an 8-bit
   scale everywhere in the field.
2. :func:`noise_sigma` / :func:`adaptive_smooth` - measure the shot noise on
   the solid phase and smooth with the smallest Gaussian that brings it to
   ``target`` (6 %) of the solid/void contrast: clean images are not blurred
   at all, noisy ones just enough.
3. :func:`local_threshold` - near pore edges (where the local range exceeds
   half the contrast) the threshold is the local midpoint between the
   darkest and brightest pixel within ``radius`` (2 px; a Bernsen-type rule,
   which follows bright rims), elsewhere the global midpoint between the
   void and solid levels; voids smaller than the blur, whose depth never
   reaches half the contrast, are cut at the level that preserves their
   area (blur conserves integrated darkness).
4. :func:`fill_dark_floors` - non-void patches that are enclosed by voids,
   much darker than the solid (mean below 80 % of the contrast) and softly
   bordered (a floor rises from the pore's wall; a solid island inside a
   pore has an edge as steep as any pore edge) are the visible bottoms of
   open pores, and become void.

The result is still a plain binarization (voids black, the rest white) and
porosity is an integer pixel count, as the patent's method requires.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "SOLID_LEVEL",
    "normalize_field",
    "field_levels",
    "noise_sigma",
    "adaptive_smooth",
    "local_threshold",
    "fill_dark_floors",
    "gradient_magnitude",
    "tangential_curvature",
    "CURVATURE_GAIN",
]

#: Share of the Gaussian smoothing's edge shift that the segmentation undoes
#: (see :func:`tangential_curvature`): the theory for a blurred step says 1;
#: 0.5 was best on synthetic fields (the edge rule already follows part of
#: it), and it matters at low dose, where the smoothing is strong.
CURVATURE_GAIN = 0.5

#: Degree of the polynomial trend in the shading estimate (see :func:`_shading`).
SHADING_DEGREE = 2

#: The first solid mask of the shading estimate leaves out what is darker
#: than this fraction of the field's polynomial trend (a floored void larger
#: than the local bright-level window; shading alone never goes that low).
#: At 0.8 the half-size estimate let such a floor network back in (seed
#: 30044, -6.3 pp); 0.85 and 0.9 both keep it out.
TREND_FRACTION = 0.85

#: Gray level (8-bit scale) of the solid phase after :func:`normalize_field`;
#: leaves headroom for bright rims and charging (up to 1.5x solid).
SOLID_LEVEL = 170.0


def _robust_range(data: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """The region's 0.01th and 99.99th percentiles (``hi > lo``)."""
    from .histq import percentile_int

    k = max(1, int(np.sqrt(data.size / 2e6)))
    if k > 1:
        data, region = data[::k, ::k], region[::k, ::k]
    q = percentile_int(data, region, [0.01, 99.99])         # NumPy's values, from a histogram
    if q is None:
        q = np.percentile(data[region], [0.01, 99.99]).astype(np.float64)
    lo, hi = float(q[0]), float(q[1])
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _robust_unit(data: np.ndarray, region: np.ndarray, *,
                 limits: tuple[float, float] | None = None) -> np.ndarray:
    """``data`` scaled so the region's robust range is [0, 1] (clipped to 1.5);
    ``limits``: that range when already known (:func:`_robust_range`)."""
    from .kernels import loaded, unit_scale

    lo, hi = limits if limits is not None else _robust_range(data, region)
    k = loaded()
    out = unit_scale(k, data, lo, hi) if k is not None else None
    if out is not None:                  # the same float32 operations, one pass
        return out
    out = data.astype(np.float32)
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    return np.clip(out, 0, 1.5, out=out)


def field_levels(img: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """(void level, solid level) of a field, in the image's units.

    The void level is the 0.5th percentile of the region; the solid level is
    the mode of the histogram above a third of the range (so a large void
    fraction cannot take it).
    """
    # every k-th pixel in each direction (at most 300,000 pixels) is plenty
    # for a percentile and a histogram mode
    k = max(1, math.ceil(np.sqrt(img.size / 3e5)))
    if k > 1:
        img, region = img[::k, ::k], region[::k, ::k]
    fine = _fine_histogram(img, region)
    if fine is None:
        return 0.0, 1e-6
    fine, top, nb = fine
    # the 3000-bin histogram is summed by tens into the 300-bin histogram
    # whose mode is the solid level
    hist = fine.reshape(300, 10).sum(axis=1)
    start = 100
    solid = (start + int(np.argmax(hist[start:]))) * top / 300
    cum = np.cumsum(fine)
    j = int(np.searchsorted(cum, 0.005 * cum[-1]))
    dark = (j + 0.5) * top / nb
    return float(dark), float(max(solid, dark + 1e-6))


def _fine_histogram(img: np.ndarray, region: np.ndarray, nb: int = 3000):
    """(3000-bin histogram of the region on [0, max], max, 3000), or None
    for an empty region.  A value ``v`` falls in bin ``int(v * s)`` with
    ``s = float32((nb - 1e-3) / max)`` (the product in float32)."""
    import cv2

    from .histq import masked_hist
    from .kernels import fine_histogram, loaded

    k = loaded()
    if k is not None and img.dtype == np.float32:
        got = fine_histogram(k, img, region, nb)     # the same bins, one pass, no copies
        if got is not None:
            return got if got[1] is not None else None
    n = int(np.count_nonzero(region))
    if n == 0:
        return None
    if img.dtype == np.float32 and img.ndim == 2 and img.size < 2 ** 24:
        mask = np.ascontiguousarray(region).view(np.uint8)
        img = np.ascontiguousarray(img)
        lo, top, _, _ = cv2.minMaxLoc(img, mask)
        if lo >= 0 and np.isfinite(top):
            # the bins are the float32 product truncated (0 <= y < nb), as
            # OpenCV's float histogram bins it (floor(y * 1.0 + 0)); counting
            # the truncated integers is 1.6x faster
            top = max(float(top), 1e-6)
            y = np.multiply(img, np.float32((nb - 1e-3) / top)).astype(np.uint16)
            fine = masked_hist(y, region, nb, 0, nb, overwrite=True)
            if int(fine.sum()) == n:
                return fine, top, nb
    vals = img[region]
    top = max(float(vals.max()), 1e-6)
    idx = (vals * np.float32((nb - 1e-3) / top)).astype(np.int32)
    return np.bincount(idx.ravel(), minlength=nb)[:nb], top, nb


def _shading(g: np.ndarray, solid: np.ndarray, *, step: int = 8,
             sigma: float = 12.0, scratch: np.ndarray | None = None,
             degree: int = SHADING_DEGREE) -> np.ndarray:
    """Smooth background from the pixels in ``solid``, at 1/``step`` resolution.

    A weighted least-squares polynomial of ``degree`` in x and y (detector
    shading is a ramp with low-order curvature) plus a normalized
    convolution (Gaussian ``sigma``, low-resolution pixels) of what the
    polynomial leaves.  A normalized convolution alone is a local mean:
    it cannot follow a slope up to the field's border, and left the outer
    tenth of a steeply shaded field up to ~20 % off (the darker side then
    showed grain boundaries as voids).  ``degree=0``: the convolution alone.
    ``scratch``: a float32 array of the image's shape that may be
    overwritten (saves two full-size temporaries).
    """
    import cv2

    H, W = g.shape
    w, h = max(1, W // step), max(1, H // step)
    if scratch is None:
        scratch = np.empty(g.shape, np.float32)
    np.multiply(g, solid, out=scratch)
    num = cv2.resize(scratch, (w, h), interpolation=cv2.INTER_AREA)
    np.copyto(scratch, solid)
    den = cv2.resize(scratch, (w, h), interpolation=cv2.INTER_AREA)
    trend = _shading_trend(num, den, degree) if degree > 0 else None
    if trend is not None:
        num = num - trend * den          # residual, weighted like the data
    num = cv2.GaussianBlur(num, (0, 0), sigma)
    den_s = cv2.GaussianBlur(den, (0, 0), sigma)
    bg = num / np.maximum(den_s, 1e-3)
    if trend is not None:
        bg += trend
    return cv2.resize(bg, (W, H), interpolation=cv2.INTER_LINEAR)


def _below_trend(g: np.ndarray, solid: np.ndarray, *, step: int, fraction: float,
                 scratch: np.ndarray) -> None:
    """Drop from ``solid`` (in place) the pixels darker than ``fraction`` of
    the polynomial shading trend fitted to ``solid``."""
    import cv2

    H, W = g.shape
    w, h = max(1, W // step), max(1, H // step)
    np.multiply(g, solid, out=scratch)
    num = cv2.resize(scratch, (w, h), interpolation=cv2.INTER_AREA)
    np.copyto(scratch, solid)
    den = cv2.resize(scratch, (w, h), interpolation=cv2.INTER_AREA)
    trend = _shading_trend(num, den, SHADING_DEGREE)
    if trend is None:
        return
    cv2.resize(trend, (W, H), dst=scratch, interpolation=cv2.INTER_LINEAR)
    scratch *= np.float32(fraction)
    solid &= g > scratch


def _shading_trend(num: np.ndarray, den: np.ndarray, degree: int) -> np.ndarray | None:
    """Weighted polynomial fit of ``num / den`` (weights ``den``) on the
    low-resolution grid; None when too few cells hold solid.

    The basis ``x**i * y**j`` is separable, so the normal equations come
    from two small matrix products (moments ``sum w x**a y**b`` as
    ``Y.T @ w @ X``) instead of a least-squares solve over every cell.

    Examples
    --------
    >>> yy, xx = np.mgrid[0:40, 0:60] / 40.0
    >>> den = np.ones((40, 60), np.float32)
    >>> t = _shading_trend((1 + 0.3 * xx - 0.2 * yy * yy).astype(np.float32), den, 2)
    >>> bool(np.allclose(t, 1 + 0.3 * xx - 0.2 * yy * yy, atol=1e-5))
    True
    """
    h, w = num.shape
    ok = den > 0.05
    if np.count_nonzero(ok) < 4 * (degree + 1) ** 2 or min(h, w) < 4:
        return None
    x = 2 * np.arange(w, dtype=np.float64) / max(w - 1, 1) - 1
    y = 2 * np.arange(h, dtype=np.float64) / max(h - 1, 1) - 1
    X = np.vander(x, 2 * degree + 1, increasing=True)          # (w, 2d+1): x**a
    Y = np.vander(y, 2 * degree + 1, increasing=True)          # (h, 2d+1): y**b
    wts = np.where(ok, den, 0).astype(np.float64)
    rhs = np.where(ok, num, 0).astype(np.float64)               # w * (num / den)
    M = Y.T @ wts @ X                                           # M[b, a] = sum w x^a y^b
    R = Y.T @ rhs @ X
    terms = [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]
    G = np.array([[M[j + l, i + k] for (k, l) in terms] for (i, j) in terms])
    r = np.array([R[j, i] for (i, j) in terms])
    try:
        coef = np.linalg.solve(G, r)
    except np.linalg.LinAlgError:
        coef = np.linalg.lstsq(G, r, rcond=None)[0]
    C = np.zeros((degree + 1, degree + 1))                      # C[j, i]: y^j x^i
    for c, (i, j) in zip(coef, terms):
        C[j, i] = c
    return (Y[:, :degree + 1] @ C @ X[:, :degree + 1].T).astype(np.float32)


def normalize_field(data: np.ndarray, region: np.ndarray, *, flatten: bool = True,
                    iterations: int = 2,
                    field_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Scale a field so the solid phase sits at :data:`SOLID_LEVEL` everywhere.

    Parameters
    ----------
    data : ndarray, shape (H, W)
        Raw monochrome image (any numeric dtype).
    region : ndarray of bool, shape (H, W)
        Only these pixels enter any statistic.
    flatten : bool
        Divide by a shading background estimated on the solid phase
        (brightness gradients up to +-40 % across a field are common).
    iterations : int
        Passes of (solid mask from the midpoint threshold, background).
    field_shape : (int, int), optional
        Shape of the whole field when ``data`` is a crop of it (the shading
        scale is an eighth of the field's shorter side); ``data.shape`` by
        default.

    Returns
    -------
    ndarray of float32, shape (H, W)
        0 = black; the solid at about 170; clipped to [0, 255].

    Examples
    --------
    A +-40 % ramp is flattened to a few per cent, up to the field's border:

    >>> ramp = np.linspace(0.6, 1.4, 128, dtype=np.float32)[None, :] * np.ones((128, 1))
    >>> img = (150 * ramp).astype(np.uint8); img[40:60, 40:60] = 5
    >>> out = normalize_field(img, np.ones(img.shape, bool))
    >>> bool(abs(out[100, 2] - out[100, 125]) < 0.05 * out[100, 125])
    True
    """
    import cv2

    from .kernels import divide_scale_clip, loaded

    data = np.asarray(data)
    limits = _robust_range(data, region)
    f = _robust_unit(data, region, limits=limits)
    # every statistic below is taken at half resolution (2x2 means, then a
    # 0.75-px blur: the noise of the full-size 1.5-px blur, a quarter of
    # the pixels); only the final division is full size
    g, r, k = _half(f, region)
    g = cv2.GaussianBlur(g, (0, 0), 1.5 / k)
    if flatten:
        H, W = f.shape
        # shading scale: large against pores (96 px on a 768-px-high field),
        # small against the field; 8 full-size pixels per step
        step = 8 // k
        sigma = float(np.clip(0.125 * min(field_shape or (H, W)), 16, 200)) / 8
        buf = np.empty_like(g)             # scratch, reused
        # first solid mask: brighter than 60 % of the local bright level
        # (a global threshold would split a strong shading ramp instead of
        # solid from void)
        h2, w2 = g.shape
        w_s, h_s = max(1, w2 // step), max(1, h2 // step)
        np.multiply(g, r, out=buf)
        high = cv2.resize(buf, (w_s, h_s), interpolation=cv2.INTER_AREA)
        # the bright level over a sixth of the field: a large void with a
        # mid-gray floor must not pass for solid (and flatten itself away)
        kb = max(5, int(round(min(w_s, h_s) / 6)) | 1)
        high = cv2.GaussianBlur(cv2.dilate(high, np.ones((kb, kb), np.uint8)), (0, 0), kb / 2.5)
        cv2.resize(high, (w2, h2), dst=buf, interpolation=cv2.INTER_LINEAR)
        solid = g > buf * np.float32(0.6)
        # a floored void wider than that window passes the local test; it
        # is far below the field's smooth trend, which shading is not
        solid &= r
        for _ in range(2):                 # the second fit without the first's outliers
            _below_trend(g, solid, step=step, fraction=TREND_FRACTION, scratch=buf)
        bg = None
        for _ in range(max(1, iterations)):
            solid &= r
            bg = _shading(g, solid, step=step, sigma=sigma, scratch=buf)
            np.maximum(bg, np.float32(1e-3), out=bg)
            np.divide(g, bg, out=buf)                      # g without shading
            dark, solid_level = field_levels(buf, r)
            # next solid mask: above the midpoint of the flattened image
            np.greater(buf, np.float32(dark + 0.7 * (solid_level - dark)), out=solid)
        del solid
        g = buf                                            # flattened, half size
        bg_full = cv2.resize(bg, (W, H), interpolation=cv2.INTER_LINEAR)
        del bg
        _, solid = field_levels(g, r)
        k = loaded() if data.dtype in (np.uint8, np.uint16) else None   # (no NaN in f)
        if k is not None and divide_scale_clip(k, f, bg_full, SOLID_LEVEL / solid):
            return f
        f /= bg_full
        del bg_full
    else:
        _, solid = field_levels(g, r)
    f *= np.float32(SOLID_LEVEL / solid)
    return np.clip(f, 0, 255, out=f)


def _half(img: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(img at half resolution (2x2 means), the cells wholly in region, 2)``;
    a field too small to halve, or a region too thin or ragged for half of
    its pixels to lie in whole 2x2 cells (a mask of scattered pixels: its
    half-size region would be empty), is returned as it is, with factor 1."""
    import cv2

    H, W = img.shape
    region = np.asarray(region, bool)
    if min(H, W) < 64:
        return img.copy(), region, 1
    H2, W2 = H // 2 * 2, W // 2 * 2
    rv = region[:H2, :W2]
    r = rv[0::2, 0::2] & rv[1::2, 0::2] & rv[0::2, 1::2] & rv[1::2, 1::2]
    if 8 * np.count_nonzero(r) < np.count_nonzero(region):
        return img.copy(), region, 1
    g = cv2.resize(img[:H2, :W2], (W2 // 2, H2 // 2), interpolation=cv2.INTER_AREA)
    return g, r, 2


def noise_sigma(img: np.ndarray, region: np.ndarray, threshold: float) -> float:
    """Noise standard deviation on the solid phase (pixels above ``threshold``),
    from horizontal neighbour differences (robust MAD; blur is before the
    shot noise in an SEM, so the noise is white)."""
    from .histq import median_f32
    from .kernels import loaded, pair_median

    k = max(1, math.ceil(img.size / 6e5))    # every k-th row (enough pairs for a median)
    img, region = img[::k], region[::k]
    jit = loaded() if img.dtype == np.float32 else None
    if jit is not None:
        n, med = pair_median(jit, img, region, threshold)   # the same median, one pass
        if med is not None:
            return 0.0 if n < 16 else float(1.4826 * med / np.sqrt(2.0))
    # a pair counts when both pixels are in the region and above the threshold
    above = (img > threshold) & region
    m = above[:, 1:] & above[:, :-1]
    if np.count_nonzero(m) < 16:
        return 0.0
    d = np.abs(img[:, 1:] - img[:, :-1])
    med = median_f32(d, m, overwrite=True)   # NumPy's median, from a histogram
    if med is None:
        med = np.median(d[m])
    return float(1.4826 * med / np.sqrt(2.0))


def adaptive_smooth(img: np.ndarray, region: np.ndarray, *, target: float = 0.06,
                    max_sigma: float = 3.0) -> tuple[np.ndarray, float]:
    """Gaussian smoothing just strong enough for the noise of this field.

    The Gaussian sigma is chosen so that the remaining noise is ``target``
    times the void/solid contrast (white noise is divided by
    ``2 * sqrt(pi) * sigma``).  Returns the smoothed image and the sigma
    (0 when the field is clean enough as it is).
    """
    import cv2

    g, r, k = _half(img, region)        # the levels at half size, as in normalize_field
    dark, solid = field_levels(cv2.GaussianBlur(g, (0, 0), 1.5 / k), r)
    del g, r
    contrast = solid - dark
    sn = noise_sigma(img, region, dark + 0.5 * contrast)
    sigma = min(sn / (target * contrast * 2.0 * np.sqrt(np.pi)), max_sigma) if contrast > 0 else 0.0
    if sigma <= 0.3:
        return img, 0.0
    return cv2.GaussianBlur(img, (0, 0), sigma), float(sigma)


#: The default edge and blob rules of :func:`local_threshold` (also used by
#: the compiled path, :mod:`poromet.kernels`).
LOCAL_RULES = {"edge_fraction": 0.5, "alpha": 0.51, "rim_weight": 0.60, "blob_fraction": 0.25}


def local_threshold(img: np.ndarray, region: np.ndarray, *, radius: int = 2,
                    edge_fraction: float = LOCAL_RULES["edge_fraction"],
                    alpha: float = LOCAL_RULES["alpha"],
                    rim_weight: float = LOCAL_RULES["rim_weight"],
                    blob_fraction: float = LOCAL_RULES["blob_fraction"],
                    blob_depth: float = 0.65) -> tuple[np.ndarray, float, float, float]:
    """Threshold field: local rules near voids, the global midpoint elsewhere.

    With ``rng`` the local range (max - min within ``radius``) and ``C`` the
    void/solid contrast, at pixels whose local minimum is void-dark
    (below 75 % of the contrast):

    * ``rng > edge_fraction * C`` (the edge of a resolved void):
      ``T = min + alpha * (S - min) + rim_weight * (max - S)`` with ``S``
      the solid level: the midpoint of the step from the void to the solid,
      raised by part of the bright SE rim that the window sees (a
      Bernsen-type rule that follows rims and shading; with
      ``rim_weight = alpha = 0.5`` it is Bernsen's local midpoint).  A rim
      narrower than the blur lifts the edge pixels by more than half of
      the rim peak left after the blur (in 1-D, by ``R0 / peak`` of it,
      0.5 for wide rims and up to about 0.9 for rims as narrow as the
      blur), so the rim's weight is above one half.  ``alpha = 0.51`` and
      ``rim_weight = 0.6`` were the best single values on synthetic fields
      (tuned on seeds 0-59 and 1000-1059, reported on others), where
      curvature and noise pull the other way;
    * ``blob_fraction * C < rng <= edge_fraction * C`` (a void smaller than
      the blur, which never reaches half the contrast): the blob is cut at
      the depth that keeps its area, ``T = min + (1 - exp(-d)) * rng`` with
      ``d = rng / C`` -- for a blurred small disk the area inside that level
      equals the true area, since blur conserves the integrated darkness --
      and never below the global midpoint (the rule only adds voids).  The
      blob's darkest pixel must lie below ``blob_depth`` (0.65) of the
      contrast: a grain boundary or a darker grain next to bright rims and
      texture has the same small range but no void depth (at 0.75, such
      valleys in strongly rimmed, low-porosity fields were called voids:
      +2.6 pp on a shipped sample field).

    Returns
    -------
    T : ndarray of float32, shape (H, W)
        Voids are ``img < T``.
    t_global : float
        The global midpoint between the void and solid levels.
    dark, solid : float
        The void and solid levels.
    """
    import cv2

    dark, solid = field_levels(img, region)
    contrast = solid - dark
    t = dark + 0.5 * contrast
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    img = np.asarray(img, np.float32)
    T = np.empty(img.shape, np.float32)
    # in strips (see _strips): the dozen passes below stay in the cache
    for y0, y1, blk, keep in _strips(img, halo=radius):
        rng = cv2.dilate(blk, k)[keep]
        mn = cv2.erode(blk, k)[keep]
        rng -= mn                          # local range
        # near a void: the dark end of the window is void-dark (a bright
        # scan line or rim on solid has a large range too, but no void)
        near = mn < np.float32(dark + 0.75 * contrast)
        edge = rng > np.float32(edge_fraction * contrast)
        blob = near & ~edge & (rng > np.float32(blob_fraction * contrast))
        # a dark blob sits in solid: the window's bright end is solid-bright
        # (a narrow solid bridge between voids has the same small range,
        # mirrored)
        blob &= (mn + rng) > np.float32(dark + 0.85 * contrast)
        blob &= mn < np.float32(dark + blob_depth * contrast)
        edge &= near
        # blob level: min + (1 - exp(-rng / C)) * rng, at least the global
        # midpoint (computed at the blob pixels only: they are few)
        r_b = rng[blob]
        lev_b = np.maximum(mn[blob] + (1.0 - np.exp(r_b * np.float32(-1.0 / contrast))) * r_b,
                           np.float32(t))
        # edge level: min + alpha * (solid - min) + rim_weight * (max - solid)
        #   = (1 - alpha + rim_weight) * min + rim_weight * rng
        #     + (alpha - rim_weight) * solid          with max = min + rng
        rng *= np.float32(rim_weight)
        rng += mn * np.float32(1.0 - alpha + rim_weight)
        rng += np.float32((alpha - rim_weight) * solid)
        out = T[y0:y1]
        out.fill(np.float32(t))
        cv2.copyTo(rng, edge.view(np.uint8), out)     # OpenCV's masked copy: 4x NumPy's
        out[blob] = lev_b
    return T, float(t), float(dark), float(solid)


def fill_dark_floors(pores: np.ndarray, img: np.ndarray, region: np.ndarray, *,
                     level: float, max_fraction: float = 0.05,
                     edge_ratio: float | None = 0.8, soft_level: float | None = None,
                     gradient: np.ndarray | None = None) -> np.ndarray:
    """Turn dark non-void patches inside the region into voids.

    A 4-connected non-void patch whose mean gray level is below ``level``
    and whose border is soft is a visible pore bottom.  The border tells
    floors from **solid islands** inside a pore (a grain cut by the
    section), which are as dark on average once the blur has spread the
    pore's walls into them: an island's border is a solid/void edge, as
    steep as the edges of the solid matrix, while a floor rises from the
    pore's wall over a ramp.  With ``edge_ratio``, a patch is filled only if
    the mean gradient magnitude on its border pixels is below
    ``edge_ratio`` times the median over the border pixels of the bright
    patches (mean at or above ``level``: the solid, whose edges follow the
    field's blur); dark patches of one or two pixels are always filled;
    size is no limit below half the region (the floors of a large open pore
    network).  ``soft_level`` (at least ``level``): soft-bordered patches
    darker than it are filled too (bright floors; a darker solid phase has a
    steep border).  Without ``edge_ratio`` the rule is by darkness alone,
    for patches smaller than ``max_fraction`` of the region.

    ``gradient``: the gradient magnitude of ``img`` when the caller has it
    (several calls on one image).  The result always holds ``pores``.
    """
    from .labels import label_areas

    if edge_ratio is not None and gradient is not None:
        from . import kernels

        if (kernels.available() and img.dtype == np.float32 and gradient.dtype == np.float32
                and img.ndim == 2):
            return _fill_floors_fused(pores, img, region, gradient, level=level,
                                      soft_level=soft_level, edge_ratio=edge_ratio)
    # 4-connected (ndi.label's default cross); the areas from a histogram of
    # the labels (OpenCV's own statistics cost more than the labelling here)
    nonvoid = ~pores & region
    n, lab, cnt = label_areas(nonvoid, connectivity=4)
    if n <= 2:
        return pores
    n_region = np.count_nonzero(region)
    sums, others = _patch_sums(lab, cnt, img, nonvoid)
    mean = sums / np.maximum(cnt, 1)
    dark = mean < level
    dark[0] = False
    if edge_ratio is None:
        fill = dark & (cnt < max_fraction * n_region)
    else:
        grayish = mean < max(level, soft_level if soft_level is not None else level)
        grayish[0] = False
        fill = grayish & (cnt < 0.5 * n_region)
        if fill.any():
            soft = _soft_bordered(pores, region, lab, n, img, gradient, edge_ratio,
                                  bright=~dark)
            fill &= soft | (dark & (cnt <= 2))
    fill[0] = False
    if not fill.any():
        return pores
    out = np.array(pores, dtype=bool)
    if others is None:
        out |= fill[lab]
    else:
        idx, lab_o, big = others
        out.ravel()[idx[fill[lab_o]]] = True
        if fill[big]:
            out |= lab == big
    return out


def _fill_floors_fused(pores, img, region, gradient, *, level, soft_level, edge_ratio):
    """:func:`fill_dark_floors` (with ``edge_ratio``) through
    :mod:`poromet.kernels`: the patches as row runs joined by a union-find,
    their sums and their borders' gradients in the same pass; no label
    image and no full-size temporaries."""
    import cv2

    from .kernels import _kernels

    k = _kernels()
    pores = np.ascontiguousarray(pores, dtype=bool)
    region = np.ascontiguousarray(region, dtype=bool)
    # 8-adjacent to a void (a non-void pixel there is on its patch's border)
    border = cv2.dilate(pores.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    ry, rs, re, rid, cnt, sums, bcnt, bsum = k.patch_runs(
        pores, region, np.ascontiguousarray(img), np.ascontiguousarray(gradient), border)
    n = cnt.size
    if n <= 2:
        return pores
    n_region = np.count_nonzero(region)
    mean = sums / np.maximum(cnt, 1)
    dark = mean < level
    dark[0] = False
    grayish = mean < max(level, soft_level if soft_level is not None else level)
    grayish[0] = False
    fill = grayish & (cnt < 0.5 * n_region)
    if fill.any():
        bright = ~dark
        bright[0] = False
        n_ref = int(bcnt[bright].sum())
        if n_ref < 16:
            bright = np.ones(n, np.bool_)
            n_ref = int(bcnt.sum())
        gb = k.run_border_values(ry, rs, re, rid, border, gradient, bright, n_ref)
        if gb.size == 0:
            soft = np.ones(n, bool)
        else:
            soft = bsum < edge_ratio * _median(gb) * np.maximum(bcnt, 1)
        fill &= soft | (dark & (cnt <= 2))
    fill[0] = False
    if not fill.any():
        return pores
    return k.paint_runs(pores, ry, rs, re, rid, fill)


def _patch_sums(lab: np.ndarray, cnt: np.ndarray, img: np.ndarray, nonvoid: np.ndarray):
    """Per-label sums of ``img`` over the non-void patches, and
    ``(flat indices, labels, big)`` of the pixels outside the largest patch
    ``big`` (None when no patch holds most of the non-void pixels).

    The largest patch is usually the solid matrix, most of the field: its
    sum is the region's total minus the others', so only the small patches'
    pixels are visited (a weighted ``bincount`` of every pixel cost 10 ms of
    a 1280x960 field).
    """
    import cv2

    n = cnt.size
    big = int(np.argmax(cnt[1:])) + 1
    n_nonvoid = int(cnt[1:].sum())
    if 2 * cnt[big] < n_nonvoid or img.dtype != np.float32 or img.size >= 2 ** 31:
        sums = np.zeros(n)
        for y in range(0, lab.shape[0], 256):
            sums += np.bincount(lab[y:y + 256].ravel(), weights=img[y:y + 256].ravel(),
                                minlength=n)
        return sums, None
    small = lab != 0
    small &= lab != big
    idx = np.flatnonzero(small)
    lab_o = lab.ravel()[idx]
    sums = np.bincount(lab_o, weights=np.ravel(img)[idx], minlength=n)
    total = cv2.mean(np.ascontiguousarray(img), np.ascontiguousarray(nonvoid).view(np.uint8))[0]
    sums[big] = total * n_nonvoid - sums.sum()
    return sums, (idx, lab_o, big)


def gradient_magnitude(img: np.ndarray, *, dtype=np.float32, rows: int | None = None) -> np.ndarray:
    """|grad img| (Sobel, per pixel), computed in strips of ``rows`` rows
    (see :func:`_strips`) so that a large field needs no full-size
    temporaries; ``dtype`` of the result (float16 halves its memory; the
    floor rule only averages it)."""
    import cv2

    img = np.asarray(img, np.float32)
    out = np.empty(img.shape, dtype)
    for y0, y1, blk, keep in _strips(img, rows):
        gx = cv2.Sobel(blk, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        gy = cv2.Sobel(blk, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
        out[y0:y1] = cv2.magnitude(gx, gy)[keep]
    return out


#: Pixels per strip of the strip-wise filters: their temporaries then stay in
#: the cache (the curvature of a 1280x960 field: 35 ms in 512-row strips,
#: 12 ms in 128-row ones; of a 4096x3072 one: 336 ms, 112 ms in 32 rows).
STRIP_PIXELS = 1 << 17


def _strips(img: np.ndarray, rows: int | None = None, halo: int = 1):
    """Row strips for a filter of radius ``halo``: ``(y0, y1, block, keep)``
    where ``block`` holds rows ``y0 - halo .. y1 + halo - 1`` (clipped) and
    ``block[keep]`` rows ``y0:y1``; ``rows`` defaults to
    :data:`STRIP_PIXELS` pixels' worth (at least 8)."""
    H = img.shape[0]
    if rows is None:
        rows = max(8, STRIP_PIXELS // max(1, img.shape[1]))
    for y0 in range(0, H, rows):
        y1 = min(H, y0 + rows)
        a = max(0, y0 - halo)
        yield y0, y1, img[a:min(H, y1 + halo)], slice(y0 - a, y1 - a)


def _soft_bordered(pores, region, lab, n, img, gradient, ratio, *, bright) -> np.ndarray:
    """Per label 0..n-1: is the patch's border softer than ``ratio`` times
    the median border of the ``bright`` patches (all patches if none)?"""
    import cv2

    g = gradient_magnitude(img) if gradient is None else gradient
    border = cv2.dilate(pores.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    border &= region
    border &= ~pores
    idx = np.flatnonzero(border)      # then take(): 4x a boolean index of a full field
    gb, lb = np.ravel(g).take(idx), lab.ravel().take(idx)
    del idx
    if gb.size == 0:
        return np.ones(n, bool)
    ref = bright[lb]
    # (_median reorders its argument: the fallback takes a copy, since gb
    # still has to match lb below; gb[ref] is a copy already)
    steep = _median(gb[ref]) if np.count_nonzero(ref) >= 16 else _median(gb.copy())
    sums = np.bincount(lb, weights=gb, minlength=n)
    cnt = np.bincount(lb, minlength=n)
    return sums < ratio * steep * np.maximum(cnt, 1)


def _median(a: np.ndarray) -> float:
    """``np.median`` of a 1-D array without NaN, overwriting it (NumPy's own
    median imports ``numpy.ma`` on first use: 20-30 ms in every process).

    >>> v = np.array([3, 1, 4, 1, 5, 9], np.float32)
    >>> _median(v.copy()) == float(np.median(v)), _median(v[:5].copy()) == float(np.median(v[:5]))
    (True, True)
    """
    n = a.size
    h = n // 2
    if n % 2:
        a.partition(h)
        return float(a[h])
    a.partition([h - 1, h])
    return float(np.mean(a[h - 1:h + 1]))


def tangential_curvature(img: np.ndarray, *, scale: float = 1.0,
                         add_to: np.ndarray | None = None, rows: int | None = None,
                         gradient_out: np.ndarray | None = None) -> np.ndarray:
    """Second derivative of ``img`` along its level lines, per pixel (float32).

    A Gaussian blur of ``sigma`` moves a curved edge by ``sigma**2 * kappa / 2``
    towards its centre of curvature (a convex dark pore shrinks); in gray
    levels that shift is ``sigma**2 / 2`` times this quantity
    ``(Ixx Iy^2 - 2 Ixy Ix Iy + Iyy Ix^2) / |grad I|^2``, so adding it, so
    scaled, to a threshold restores the edge (for a radial edge of radius
    ``R`` and slope ``g`` it is ``g / R``).

    Computed in strips of ``rows`` rows (see :func:`_strips`; no full-size
    temporaries); the result times ``scale`` is added to ``add_to`` in place
    when given (and ``add_to`` returned), else returned as a new array.  ``gradient_out``
    (an array of the image's shape) receives :func:`gradient_magnitude`
    on the way, from the same first derivatives.

    Examples
    --------
    >>> yy, xx = np.mgrid[-20:21, -20:21]
    >>> disk = np.hypot(xx, yy).astype(np.float32)      # I = r: level lines are circles
    >>> round(float(tangential_curvature(disk)[20, 30]), 2)   # g / R = 1 / 10
    0.1
    """
    import cv2

    img = np.asarray(img, np.float32)
    out = np.zeros(img.shape, np.float32) if add_to is None else add_to
    for y0, y1, blk, keep in _strips(img, rows):
        ix = cv2.Sobel(blk, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
        iy = cv2.Sobel(blk, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
        if gradient_out is not None:
            gradient_out[y0:y1] = cv2.magnitude(ix, iy)[keep]
        ixx = cv2.Sobel(blk, cv2.CV_32F, 2, 0, ksize=3, scale=0.25)
        iyy = cv2.Sobel(blk, cv2.CV_32F, 0, 2, ksize=3, scale=0.25)
        ixy = cv2.Sobel(blk, cv2.CV_32F, 1, 1, ksize=3, scale=0.25)
        num = ixx * iy * iy
        num -= np.float32(2.0) * ixy * ix * iy
        num += iyy * ix * ix
        den = ix * ix
        den += iy * iy
        den += np.float32(1e-2)
        num /= den
        if scale != 1.0:
            num *= np.float32(scale)
        out[y0:y1] += num[keep]
    return out
