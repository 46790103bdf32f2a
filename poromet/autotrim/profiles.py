"""Texture profiles across an image side, ramp-free steps and the outermost interface.

The working image (downscaled, scan-line streaks removed) is cut into strips
along a side; each strip gives feature profiles across the side, and at every
depth the strips' mean step over its standard error gives the interface
statistic (see :mod:`poromet.autotrim`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import RoiError
from ._params import (_ACCEPT_T, _COARSE_SIGMA, _COARSE_STEP, _COVER_SOLID, _COVER_T,
                      _COVER_UNIFORM, _COVER_WIDTH, _GRAD_SIGMA, _KNOWN_CONS, _LOCAL_SE,
                      _N_STRIPS, _OUTER_CONS, _OUTER_COVER, _OUTER_RATIO, _OUTER_T, _QUANTILES,
                      _SE_FLOOR, _STREAK_ROWS, _WAVE_TOL, _WL, _WORK_PX, _WR)


def _as_float(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=-1) if a.shape[-1] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise RoiError(f"automatic trimming: image of shape {a.shape}; allowed: (H, W) "
                       "monochrome (or (H, W, 3) colour)")
    return a.astype(np.float32, copy=False)


#: Devillard's median-of-9 selection network ("Fast median search", 1998):
#: 19 compare-exchanges (a, b) -> (min, max); the median ends in element 4.
_MED9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
         (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def _network(size: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchanges that leave the median of ``size`` values in element
    ``size // 2``: Devillard's 19 for 9, else odd-even transposition sort."""
    if size == 9:
        return _MED9
    return tuple((i, i + 1) for step in range(size) for i in range(step % 2, size - 1, 2))


def _vertical_median(a: np.ndarray, size: int) -> np.ndarray:
    """Running median over ``size`` (odd) rows, per column; equal to
    ``scipy.ndimage.median_filter(a, size=(size, 1), mode="reflect")``.

    The rows of the window go through a network of elementwise minima and
    maxima (exact, no NaN in our images); an output that no later exchange
    reads is not computed (30 passes for 9 rows, a full sort takes 72), and
    the rows are taken in strips that stay in the cache: 3-5 ms for a
    768x512 working image, where the earlier full sorting network over
    whole rows took 24-35 ms (and SciPy's generic rank filter twice that).

    >>> a = np.array([[3.], [9.], [1.], [7.], [5.]], np.float32)
    >>> _vertical_median(a, 3).ravel().tolist()
    [3.0, 3.0, 7.0, 5.0, 5.0]
    """
    r = size // 2
    H, W = a.shape
    p = np.pad(a, ((r, r), (0, 0)), mode="symmetric")      # SciPy's 'reflect'
    net = _network(size)
    # element i is read after exchange k when a later exchange takes it, or
    # it is the median
    live, needed = [], {r}
    for pair in reversed(net):
        live.append(set(needed))
        needed |= set(pair)
    live.reverse()
    out = np.empty_like(a)
    step = max(8, (1 << 15) // max(W, 1))          # strips of ~32k pixels stay in cache
    for r0 in range(0, H, step):
        h = min(step, H - r0)
        rows = [p[r0 + i:r0 + i + h] for i in range(size)]   # views; results are new arrays
        for (i, j), after in zip(net, live):
            lo = np.minimum(rows[i], rows[j]) if i in after else None
            if j in after:
                rows[j] = np.maximum(rows[i], rows[j])
            if lo is not None:
                rows[i] = lo
        out[r0:r0 + h] = rows[r]
    return out


def _working_image(a: np.ndarray, *, streaks: bool = True) -> tuple[np.ndarray, int]:
    """Downscale by an integer factor after removing 1-3-row scan-line
    streaks (``streaks=False``: without removing them), scaled to [0, 1]."""
    import cv2

    H, W = a.shape
    k = max(1, int(math.ceil(max(H, W) / _WORK_PX)))
    w, h = max(W // k, 8), max(H // k, 8)
    if streaks:
        # columns first (keeps every row), then a vertical median, then rows
        cols = cv2.resize(a, (w, H), interpolation=cv2.INTER_AREA)
        cols = _vertical_median(cols, _STREAK_ROWS)
        small = cv2.resize(cols, (w, h), interpolation=cv2.INTER_AREA)
    else:
        small = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
    lo, hi = np.percentile(small, (1.0, 99.0))
    small = np.clip((small - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)
    return small, k


def _orient(f: np.ndarray, side: str) -> np.ndarray:
    """View with axis -2 along the side (t) and axis -1 away from the edge (s)."""
    if side == "left":
        return f
    if side == "right":
        return f[..., ::-1]
    f = np.swapaxes(f, -1, -2)
    return f if side == "top" else f[..., ::-1]


def _side_profiles(small: np.ndarray, side: str, n_strips: int = _N_STRIPS) -> np.ndarray:
    """Texture profiles across one side: (F, n_strips, S); see :func:`_profiles`."""
    return _profiles(np.ascontiguousarray(_orient(small, side), dtype=np.float32), n_strips)


def _profiles(o: np.ndarray, n_strips: int = _N_STRIPS) -> np.ndarray:
    """Texture profiles of an oriented working image ``o`` (T, S): (F, n_strips, S).

    The working image is cut into ``n_strips`` strips along the side; for
    every strip and every depth ``s`` from the edge the features are taken
    over the strip's pixels at that depth: three grey-level quantiles (the
    upper one follows the solid phase, the lower one the pores, whatever the
    pore clustering), and the mean absolute grey-level change along and
    across the side (layers are smooth along the band).
    """
    import cv2

    o = np.ascontiguousarray(o, dtype=np.float32)     # (T, S): along the side, away from it
    T, S = o.shape
    # gradients of a lightly smoothed copy: structure, not shot noise
    sm = cv2.GaussianBlur(o, (0, 0), sigmaX=_GRAD_SIGMA, borderType=cv2.BORDER_REFLECT)
    d_t = np.zeros_like(o)
    d_t[1:] = np.abs(np.diff(sm, axis=0))
    d_s = np.zeros_like(o)
    d_s[:, 1:] = np.abs(np.diff(sm, axis=1))
    # coarse variation along the band: a layer is uniform along it, a
    # ceramic with pore clusters is not
    cs = cv2.GaussianBlur(o, (0, 0), sigmaX=_COARSE_SIGMA, borderType=cv2.BORDER_REFLECT)
    c_t = np.zeros_like(o)
    c_t[_COARSE_STEP:] = np.abs(cs[_COARSE_STEP:] - cs[:-_COARSE_STEP])
    edges = np.linspace(0, T, n_strips + 1).round().astype(int)
    F = len(_QUANTILES) + 4
    X = np.empty((F, n_strips, S), np.float32)
    lens = np.diff(edges)
    for idx, r, blocks in _sorted_strips(o, edges):
        for i, q in enumerate(_QUANTILES):        # numpy's default ('linear') quantile
            pos = q * (r - 1)
            lo = int(math.floor(pos))
            hi = min(lo + 1, r - 1)
            X[i, idx] = blocks[:, lo] + (pos - lo) * (blocks[:, hi] - blocks[:, lo])
    for f, g in ((-4, c_t), (-3, d_t), (-2, d_s)):
        X[f] = np.add.reduceat(g, edges[:-1], axis=0) / lens[:, None]
    # anisotropy of the texture: pores and grains of a layer are drawn out
    # along the band (scale-free, independent of the porosity level)
    X[-1] = 0.5 * (X[-2] - X[-3]) / np.maximum(X[-2] + X[-3], 1e-3)
    X = cv2.GaussianBlur(X.reshape(F * n_strips, S), (0, 0), sigmaX=1.0, sigmaY=1e-3,
                         borderType=cv2.BORDER_REFLECT).reshape(F, n_strips, S)
    return X


def _step_windows(across: int) -> tuple[int, int]:
    """The step windows (``wl`` inside, ``wr`` outside, working px) for a
    side ``across`` working px deep."""
    return max(3, int(round(_WL * across))), max(8, int(round(_WR * across)))


def _sorted_strips(a: np.ndarray, edges: np.ndarray):
    """The strips ``a[edges[j]:edges[j + 1]]`` (T, S) sorted over their lines,
    those of one length in one call (``linspace`` edges give at most two
    lengths): yields ``(strip indices, length, sorted (m, length, S))``."""
    edges = np.asarray(edges)
    lens = np.diff(edges)
    for r in np.unique(lens[lens > 0]):
        idx = np.flatnonzero(lens == r)
        yield idx, int(r), np.sort(a[edges[idx][:, None] + np.arange(r)[None, :]], axis=1)


def _strip_medians(a: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Median over the lines of each strip ``a[edges[j]:edges[j + 1]]``,
    per depth: (n_strips, S); equal to ``np.median(strip, axis=0)`` (NaN-free
    ``a``), the strips of one length sorted in one call.

    >>> a = np.arange(12, dtype=np.float32).reshape(6, 2)[::-1]
    >>> _strip_medians(a, np.array([0, 3, 6])).tolist()
    [[8.0, 9.0], [2.0, 3.0]]
    """
    out = np.full((len(edges) - 1, a.shape[1]), np.nan, a.dtype)
    for idx, r, blocks in _sorted_strips(a, edges):
        h = r // 2
        # NumPy's median of an even count: the mean of the middle two, (a + b) / 2
        out[idx] = blocks[:, h] if r % 2 else (blocks[:, h - 1] + blocks[:, h]) / a.dtype.type(2)
    return out


def _steps(X: np.ndarray, wl: int, wr: int) -> np.ndarray:
    """Ramp-free step at every depth: (F, n, S); NaN where not computable.

    ``D(s) = mean[s, s+wr) - mean[s-wl, s) - slope * (wl + wr) / 2`` with
    ``slope`` the least-squares slope of the profile over ``[s, S)`` (the
    exterior side): a linear shading ramp gives 0, a change of material h.
    """
    F, n, S = X.shape
    x = X.astype(np.float64)
    sidx = np.arange(S, dtype=np.float64)
    C0 = np.zeros((F, n, S + 1))
    C1 = np.zeros((F, n, S + 1))
    np.cumsum(x, axis=2, out=C0[..., 1:])
    np.cumsum(x * sidx, axis=2, out=C1[..., 1:])
    D = np.full((F, n, S), np.nan)
    s0, s1 = wl, S - wr + 1                   # the computable depths s0 <= s < s1
    if s1 <= s0:
        return D
    s = np.arange(s0, s1)
    # every index is a contiguous range of s: slices, not gathers
    c_s = C0[..., s0:s1]
    left = (c_s - C0[..., 0:s1 - wl]) / wl
    right = (C0[..., s0 + wr:S + 1] - c_s) / wr
    m = (S - s).astype(np.float64)
    sum_s = (S - 1 + s) * m / 2.0
    sum_s2 = ((S - 1) * S * (2 * S - 1) - (s - 1) * s * (2 * s - 1)) / 6.0
    sx = C0[..., S:S + 1] - c_s
    ssx = C1[..., S:S + 1] - C1[..., s0:s1]
    den = np.maximum(m * sum_s2 - sum_s ** 2, 1e-9)
    slope = (m * ssx - sum_s * sx) / den
    D[..., s0:s1] = right - left - slope * (wl + wr) / 2.0
    return D


def _pooled_spread(D: np.ndarray) -> np.ndarray:
    """Spread of the steps over strips, pooled over depths (median): (F, 1)."""
    return _nanmedian_rows(D.std(axis=1, ddof=1))[:, None]


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=1)`` of a 2-D float array, equal to the last
    bit (the mean of the two middle values is NumPy's ``(a + b) / 2``) and
    without its per-call overhead; NaN for an all-NaN row, without a warning.

    >>> a = np.array([[3, np.nan, 1, 2], [np.nan, 4, 1, np.nan], [np.nan] * 4])
    >>> _nanmedian_rows(a).tolist()[:2]
    [2.0, 2.5]
    """
    srt = np.sort(a, axis=1)                       # NaN sort last
    n = np.count_nonzero(~np.isnan(a), axis=1)
    hi = n // 2
    lo = np.where(n % 2 == 1, hi, hi - 1)
    rows = np.arange(a.shape[0])
    out = (srt[rows, np.maximum(lo, 0)] + srt[rows, np.minimum(hi, a.shape[1] - 1)]) / 2.0
    out[n == 0] = np.nan
    return out


def _side_stat(D: np.ndarray, pooled: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Across-strip t statistic per depth: (T(s), mean step vector (F, S)).

    Each feature's mean step over the strips is divided by its standard
    error over the strips (a bootstrap-free estimate of how much the step
    varies along the side); T is the RMS over features.  A pore cluster in
    one strip gives a large step there and a large standard error.
    ``pooled`` (F, 1): the spread pooled over depths, when it is taken from
    another view of the same side (the straightened one keeps the unit of
    the original view).
    """
    F, n, S = D.shape
    Dm = D.mean(axis=1)
    sd = D.std(axis=1, ddof=1)
    # the spread over strips at one depth has few degrees of freedom: pool it
    # over depths (median), but keep a locally larger spread (non-stationary
    # texture, e.g. a band of large pores)
    if pooled is None:
        pooled = _pooled_spread(D)
    se = np.fmax(pooled, _LOCAL_SE * sd) / math.sqrt(n)
    t = Dm / np.maximum(se, _SE_FLOOR)
    T = np.sqrt(np.mean(t * t, axis=0))
    return np.nan_to_num(T, nan=0.0), np.nan_to_num(t, nan=0.0)


def _side_boundary(X: np.ndarray, *, max_depth: int, min_depth: int,
                   accept: float = _ACCEPT_T, cap: int | None = None,
                   pooled: np.ndarray | None = None, across: int | None = None,
                   known: bool = False):
    """The outermost interface of one side, or None.

    Returns ``(b_strips, strength, coverage, consistency, n_runs, T)``:
    boundary depth per strip (working px), peak statistic, share of strips
    whose own step agrees, how alike the strips' steps are, number of
    separate significant changes (interfaces) and the statistic profile.
    ``across``: size of the whole side when ``X`` is cut short (a band on
    the opposite side left out); the windows keep their size.  ``known``: a
    stack is already established on this side (another view of it); only an
    interface that passes the outer-interface tests is returned, none needs
    to reach ``accept``.
    """
    F, n, S = X.shape
    A = S if across is None else int(across)      # windows scale with the whole side
    wl, wr = _step_windows(A)
    D = _steps(X, wl, wr)
    T, t = _side_stat(D, pooled)
    hi = min(max_depth, S - wr)
    lo = max(min_depth, wl)
    T_in = np.zeros(S)
    T_in[lo:hi + 1] = T[lo:hi + 1]
    best_rej = float(T_in.max()) / _ACCEPT_T if T_in.size else 0.0
    if known:
        accept = math.inf
    elif not (T_in >= accept).any():
        return None, best_rej, T
    # a stack is there; its outermost interface may be weaker than the
    # strongest one (a layer much like the exterior): lower level beyond it
    above = T_in >= _OUTER_T
    # local maxima (interfaces); the outermost interface is the deepest one
    # that is clear along the whole side
    loc = np.flatnonzero((T_in[1:-1] >= T_in[:-2]) & (T_in[1:-1] >= T_in[2:])
                         & (T_in[1:-1] > 0)) + 1
    pk = loc[above[loc]]
    peaks: list[int] = []
    for p in pk[np.argsort(-T_in[pk], kind="stable")]:
        if all(abs(int(p) - q) > wl for q in peaks):
            peaks.append(int(p))
    peaks.sort()
    for b in peaks[::-1]:
        if cap is not None and b > cap and T_in[b] < accept and b != peaks[0]:
            # a weaker change beyond the band of layers oriented along the
            # side: a pore-density change of the exterior, not a layer
            continue
        bj, coverage, consistency = _refine(D, t, b, lo=lo, hi=S - wr, tol=_WAVE_TOL * A)
        inner = [q for q in peaks if q < b]
        if inner and T_in[b] >= accept and np.median(bj) < 0.5 * (inner[-1] + b):
            # the strips of an interface clear in its own right went to a
            # stronger one inside, within the wave tolerance (the outer one
            # would be left in the field): each strip's own depth is looked
            # for from half-way between them (a weaker candidate must line
            # up on its own)
            bj, coverage, consistency = _refine(D, t, b, lo=max(lo, (inner[-1] + b) // 2 + 1),
                                                hi=S - wr, tol=_WAVE_TOL * A)
        strength = float(T_in[b])
        # a weaker interface must stand out against the exterior beyond it
        # (which holds no interface, only pore clusters and shading)
        deeper = loc[loc > b + max(wl, int(round(_WAVE_TOL * A)))]
        beyond = float(T_in[deeper].max()) if deeper.size else 0.0
        cons_min = _OUTER_CONS
        if known:
            # a view straightened along this very interface: its strips
            # must line up at one depth (a pore cluster's course does not)
            cons_min = _KNOWN_CONS
            coverage = min(coverage, float(np.mean(np.abs(bj - b) <= wl)))
        if strength >= accept or (coverage >= _OUTER_COVER and consistency >= cons_min
                                  and strength >= _OUTER_RATIO * beyond):
            if (inner and strength < _COVER_T
                    and _cover_zone(X, D, t, inner[-1], bj, lo=lo, hi=S - wr, wl=wl, wr=wr,
                                    tol=_WAVE_TOL * A, width=_COVER_WIDTH * A)):
                # the zone out to this change is the exterior's own material
                # (the edge of a pore cluster of the cover): the interface
                # before it is the outer one
                continue
            break
    else:
        if known or not peaks:
            return None, best_rej, T
    return (bj, strength, coverage, consistency, len(peaks)), best_rej, T


def _spread_ratio(sdz: np.ndarray, sde) -> float:
    """How much a zone varies along the side against exterior windows.

    ``sdz`` (F,): spread over the strips of the zone's mean features;
    ``sde``: the same for exterior windows of the zone's width (a list of
    (F,) arrays, their median taken).  Returns the RMS ratio over the
    texture features (the anisotropy left out): below 1 a layer uniform
    along the side, about 1 or more the cover's own variation.
    """
    u = sdz[:6] / np.maximum(np.median(sde, axis=0)[:6], 1e-6)
    return float(np.sqrt(np.mean(u * u)))


def _zone_windows(X: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """Mean features of each strip over its own depths ``[z0[j], z1[j])``: (F, n)."""
    return np.stack([X[:, j, int(a):int(b)].mean(axis=1) for j, (a, b) in enumerate(zip(z0, z1))],
                    axis=1)


def _cover_zone(X: np.ndarray, D: np.ndarray, t: np.ndarray, p: int, bj: np.ndarray, *,
                lo: int, hi: int, wl: int, wr: int, tol: float, width: float) -> bool:
    """The zone between interface ``p`` and the deeper one ``bj`` is the exterior's material.

    A pore cluster of a heterogeneous cover ends in a texture step as well,
    but the zone up to it is the cover itself: the solid phase has the
    exterior's grey level (upper quantile within ``_COVER_SOLID``) and the
    zone varies along the side as much as exterior windows of its width do
    (over the strips, RMS ratio over the texture features at least
    ``_COVER_UNIFORM``), where a layer of the stack is uniform along it.
    The zone must be ``width`` wide (working px, ``_COVER_WIDTH`` of the
    side: a thinner one lies within the wave tolerance of its interfaces).
    ``p``: depth of the inner interface on the side profile, ``bj``: the
    deeper interface per strip (working px); ``lo``, ``hi``, ``tol``: the
    depth range and per-strip search of :func:`_refine`, ``wl``, ``wr``: the
    step windows.
    """
    F, n, S = X.shape
    pj, _, _ = _refine(D, t, int(p), lo=lo, hi=hi, tol=tol)
    z0 = pj.astype(int) + wl
    z1 = bj.astype(int) - wl
    e0 = bj.astype(int) + wl
    # strips where the two interfaces leave a zone between them
    ok = z1 - z0 >= 3
    if 2 * np.count_nonzero(ok) < n or int(e0.max()) + wr > S:
        return False
    X, z0, z1, e0 = X[:, ok], z0[ok], z1[ok], e0[ok]
    w = int(np.median(z1 - z0))
    if w < width:
        return False                # a thin zone's means mix in the neighbouring layers
    zone = _zone_windows(X, z0, z1)
    ext = _zone_windows(X, e0, e0 + wr)
    if abs(float(np.median(zone[2] - ext[2]))) >= _COVER_SOLID:
        return False                                  # a solid of other grey: a layer
    sdz = zone.std(axis=1, ddof=1)
    sde = [_zone_windows(X, e0 + m, e0 + m + w).std(axis=1, ddof=1)
           for m in range(0, S - int(e0.max()) - w + 1, max(1, w // 2))]
    if not sde:
        return False
    return _spread_ratio(sdz, sde) >= _COVER_UNIFORM


def _refine(D: np.ndarray, t: np.ndarray, b: int, *, lo: int, hi: int, tol: float):
    """Per-strip depth of the interface found at depth b of the side profile.

    Each strip's step is projected on the common step direction and its
    maximum taken within ``b +- tol``.  A strip whose own step is unclear
    keeps the conservative depth ``b + tol``.  Returns ``(bj, coverage,
    consistency)``.
    """
    F, n, S = D.shape
    u = t[:, b] / max(float(np.linalg.norm(t[:, b])), 1e-9)
    sd = np.nanstd(D[:, :, b], axis=1, ddof=1)
    sd = np.maximum(np.nan_to_num(sd, nan=_SE_FLOOR), _SE_FLOOR * math.sqrt(n))
    tol = max(2, int(round(tol)))
    a0, a1 = max(lo, b - tol), min(hi, b + tol)
    win = np.tensordot(u / sd, np.nan_to_num(D[:, :, a0:a1 + 1]), axes=(0, 0))   # (n, m)
    bj = a0 + np.argmax(win, axis=1)
    pj = win.max(axis=1)
    p_ref = float(np.median(pj))
    agree = pj >= 0.4 * max(p_ref, 1e-9)
    coverage = float(np.mean(agree))
    bj = np.where(agree, bj, a1).astype(np.float64)
    Db = np.nan_to_num(D[:, np.arange(n), bj.astype(int)]) / sd[:, None]
    consistency = float(np.linalg.norm(Db.mean(axis=1))
                        / max(float(np.linalg.norm(Db, axis=0).mean()), 1e-9))
    return bj, coverage, consistency


def _near_band_depth(X: np.ndarray, *, min_depth: int, level: float) -> int | None:
    """Depth of the deepest very clear interface (statistic >= ``level``) in
    the near half of a side, or None: where a band against that edge ends
    for the side opposite to it."""
    F, n, S = X.shape
    wl, wr = _step_windows(S)
    T, _ = _side_stat(_steps(X, wl, wr))
    T = T[: S // 2]
    loc = np.flatnonzero((T[1:-1] >= T[:-2]) & (T[1:-1] >= T[2:]) & (T[1:-1] >= level)) + 1
    loc = loc[loc >= min_depth]
    return int(loc.max()) if loc.size else None
