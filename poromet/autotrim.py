"""Automatic trimming of the exterior unit: find and remove the laminated stack.

In a cross-section of a laminated (all-solid-state) battery the exterior unit
(ceramic cover, side margins) borders the power-storage unit, a stack of
parallel layers (current collectors, active material, solid electrolyte)
that run along the boundary.  :func:`trim_auto` finds, on each image side,
such a band of layers and returns the rest of the field (above the info bar)
minus a safety margin as a :class:`~poromet.records.Region`.

The detector rests on cues that hold for real laminates, not on grey levels
of one material:

* the stack is a set of **parallel bands**: along the side every strip of
  the field shows the same sequence of changes across it, while pores,
  grains and pore clusters of a homogeneous ceramic change from strip to
  strip;
* at each interface the **texture statistics change**: grey-level quantiles
  (the upper one follows the solid phase, the lower one the pores), and the
  gradient energy along and across the side and its anisotropy (pores and
  grains of a layer are drawn out along it);
* the exterior is **wide and homogeneous**, so the change into it is
  measured against a long window on the exterior side, with the linear
  trend of the exterior (shading) removed;
* the stack touches the image edge, so the stack on one side is everything
  between that edge and the **outermost** interface;
* scan-line artefacts (1-3 bright rows from charging) are removed first by a
  vertical median so they are not taken for current collectors.

Method, per side, at reduced resolution (longest side about 512 px): the
field is cut into 8 strips along the side; each strip gives feature profiles
across the side; at every depth a ramp-free step is computed per strip, and
the strips' mean step over its standard error (the spread over strips, pooled
over depths) gives a t statistic per feature, combined as an RMS.  A side
holds a stack when some depth passes ``_ACCEPT_T`` (or, when one side stands
out against all others, a lower level); its boundary is the deepest
significant change that agrees along the side, refined per strip within a
wave tolerance and taken as the upper envelope between strips (a wavy or
slightly tilted boundary is followed on the safe side).  The margin is
applied as a Euclidean distance from the stack at full resolution.

A second, independent cue is the **orientation** of the texture: the layers
and the pores drawn out in them run along the boundary, so next to a stack
side the structure tensor shows gradients across the side dominating those
along it, beyond what the far part of the field shows (that difference also
removes the instrument's scan-direction bias).  The band of such oriented
texture starting at the edge (:func:`_layered_band`; its end is where the
excess falls to half the band's own level) is used three ways: a weaker
texture change lying beyond it is not taken as the outermost interface (a
pore-density gradient of the cover), a texture boundary well inside it is
moved out to its end (an inner interface was found), and when no side passes
the texture statistic but exactly one side holds such a band on most
strips, that band is cut (``StackSide.cue == 'orientation'``; confidence
0.5-0.8).

A field in which no side shows a stack keeps the whole area above the info
bar.  ``Region.confidence`` says how clear the decision was (how far the
statistics are from the acceptance level, and whether another side shows
nearly as strong a change); :func:`poromet.measure.measure_field` flags
fields below ``trim.min_confidence``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import RoiError
from .records import Region

__all__ = ["StackSide", "find_stack", "stack_mask", "trim_auto", "SIDES"]

#: Image sides a stack can lie against.
SIDES = ("top", "bottom", "left", "right")

_WORK_PX = 512          # longest side of the working image
_STREAK_ROWS = 9        # vertical median against 1-3-row scan-line streaks (full-res rows)
_MAX_DEPTH = 0.62       # deepest boundary searched, fraction of the across size
_N_STRIPS = 8           # strips along a side (independent estimates of each step)
_QUANTILES = (0.15, 0.5, 0.85)
_WL = 0.02              # stack-side window, fraction of the across size
_GRAD_SIGMA = 1.5       # smoothing before the texture gradients (working px)
_COARSE_SIGMA = 4.0     # smoothing for the coarse variation along the band (working px)
_COARSE_STEP = 8        # ... compared over this distance along the band
_WR = 0.12              # exterior-side window (the exterior is wide and homogeneous)
_ACCEPT_T = 4.5         # across-strip t statistic (RMS over features) of an interface
_OUTER_T = 3.5         # statistic of the outermost interface once a stack is accepted
_OUTER_COVER = 0.85     # ... and share of strips agreeing on it
_OUTER_RATIO = 1.3      # ... and this many times the largest statistic beyond it
_OUTER_CONS = 0.9        # ... and consistency of its step over the strips
_LOCAL_SE = 0.7         # weight of the local (per-depth) spread over strips
_RELATIVE_T = 3.8       # a weaker interface is accepted when its side stands out:
_RELATIVE_RATIO = 1.4   # ... this many times the statistic of every other side
_SECOND_T = 12.0        # statistic needed to keep a second side
_ACCEPT_COVER = 0.6     # share of strips whose own step agrees
_CONSISTENT = 0.6       # |mean step vector| / mean |step vector| over the strips
_SE_FLOOR = 0.003       # smallest standard error of a step (grey levels of the 1-99 % range)
_WAVE_TOL = 0.06        # per-strip search around the common depth, fraction of the across size
_SHALLOW = 0.07         # a stack thinner than this (fraction across) is unsure
_EXTRA_PX = 1.0         # extra working pixels cut beyond the outermost interface
_ORI_GRAD = 1.0         # smoothing before the structure tensor (working px)
_ORI_INT = 3.0          # integration scale of the structure tensor (working px)
_ORI_LAYERED = 0.25     # excess orientation (across minus along, over the exterior's) of a layered band
_ORI_END = 0.5          # ... the band ends where the excess falls below this share of _ORI_LAYERED
_ORI_GAP = 0.025        # gaps (fraction across) a band may have (e.g. a current collector)
_ORI_MIN = 0.05         # thinnest layered band taken on orientation alone (fraction across)
_ORI_COVER = 0.75       # ... and share of strips that must show it


@dataclass(frozen=True, eq=False)
class StackSide:
    """A laminated stack found against one image side.

    Attributes
    ----------
    side : {'top', 'bottom', 'left', 'right'}
        The image edge the stack lies against.
    boundary : ndarray of float, shape (L,)
        Depth of the stack's outer boundary from that edge, in full-resolution
        pixels, for every column (top/bottom) or row (left/right) of the area
        above the info bar.
    strength : float
        Statistic of the outermost interface: the strips' mean step over its
        standard error (RMS over the texture features), so the field's own
        pore/grain texture sets the unit.
    coverage : float
        Fraction of the strips whose own step agrees with the common one.
    interfaces : int
        Number of significant changes (interfaces) found on this side (>= 1).
    consistency : float
        How alike the step is along the boundary (1: the same everywhere).
    cue : {'texture', 'orientation', 'both'}
        What located the boundary: the texture-step statistic, the band of
        texture oriented along the side, or both (the deeper one is kept).
    """

    side: str
    boundary: np.ndarray
    strength: float
    coverage: float
    interfaces: int
    consistency: float = 1.0
    cue: str = "texture"

    @property
    def depth_px(self) -> float:
        """Median depth of the boundary in pixels."""
        return float(np.median(self.boundary))


# -- working image and features ----------------------------------------------

def _as_float(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=-1) if a.shape[-1] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise RoiError(f"automatic trimming: image of shape {a.shape}; allowed: (H, W) "
                       "monochrome (or (H, W, 3) colour)")
    return a.astype(np.float32, copy=False)


def _working_image(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Downscale by an integer factor after removing 1-3-row scan-line streaks."""
    import cv2
    from scipy import ndimage as ndi

    H, W = a.shape
    k = max(1, int(math.ceil(max(H, W) / _WORK_PX)))
    w, h = max(W // k, 8), max(H // k, 8)
    # columns first (keeps every row), then a vertical median, then rows
    cols = cv2.resize(a, (w, H), interpolation=cv2.INTER_AREA)
    cols = ndi.median_filter(cols, size=(_STREAK_ROWS, 1), mode="reflect")
    small = cv2.resize(cols, (w, h), interpolation=cv2.INTER_AREA)
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
    """Texture profiles across one side: (F, n_strips, S).

    The working image is cut into ``n_strips`` strips along the side; for
    every strip and every depth ``s`` from the edge the features are taken
    over the strip's pixels at that depth: three grey-level quantiles (the
    upper one follows the solid phase, the lower one the pores, whatever the
    pore clustering), and the mean absolute grey-level change along and
    across the side (layers are smooth along the band).
    """
    import cv2

    o = np.ascontiguousarray(_orient(small, side), dtype=np.float32)     # (T, S)
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
    for j in range(n_strips):
        blk = o[edges[j]:edges[j + 1]]
        X[:len(_QUANTILES), j] = np.quantile(blk, _QUANTILES, axis=0)
        X[-4, j] = c_t[edges[j]:edges[j + 1]].mean(axis=0)
        X[-3, j] = d_t[edges[j]:edges[j + 1]].mean(axis=0)
        X[-2, j] = d_s[edges[j]:edges[j + 1]].mean(axis=0)
    # anisotropy of the texture: pores and grains of a layer are drawn out
    # along the band (scale-free, independent of the porosity level)
    X[-1] = 0.5 * (X[-2] - X[-3]) / np.maximum(X[-2] + X[-3], 1e-3)
    X = cv2.GaussianBlur(X.reshape(F * n_strips, S), (0, 0), sigmaX=1.0, sigmaY=1e-3,
                         borderType=cv2.BORDER_REFLECT).reshape(F, n_strips, S)
    return X


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
    s = np.arange(wl, S - wr + 1)
    if s.size == 0:
        return D
    left = (C0[..., s] - C0[..., s - wl]) / wl
    right = (C0[..., s + wr] - C0[..., s]) / wr
    m = (S - s).astype(np.float64)
    sum_s = (S - 1 + s) * m / 2.0
    sum_s2 = ((S - 1) * S * (2 * S - 1) - (s - 1) * s * (2 * s - 1)) / 6.0
    sx = C0[..., S:S + 1] - C0[..., s]
    ssx = C1[..., S:S + 1] - C1[..., s]
    den = np.maximum(m * sum_s2 - sum_s ** 2, 1e-9)
    slope = (m * ssx - sum_s * sx) / den
    D[..., s] = right - left - slope * (wl + wr) / 2.0
    return D


def _side_stat(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Across-strip t statistic per depth: (T(s), mean step vector (F, S)).

    Each feature's mean step over the strips is divided by its standard
    error over the strips (a bootstrap-free estimate of how much the step
    varies along the side); T is the RMS over features.  A pore cluster in
    one strip gives a large step there and a large standard error.
    """
    F, n, S = D.shape
    Dm = D.mean(axis=1)
    sd = D.std(axis=1, ddof=1)
    # the spread over strips at one depth has few degrees of freedom: pool it
    # over depths (median), but keep a locally larger spread (non-stationary
    # texture, e.g. a band of large pores)
    pooled = np.nanmedian(sd, axis=1, keepdims=True)
    se = np.fmax(pooled, _LOCAL_SE * sd) / math.sqrt(n)
    t = Dm / np.maximum(se, _SE_FLOOR)
    T = np.sqrt(np.mean(t * t, axis=0))
    return np.nan_to_num(T, nan=0.0), np.nan_to_num(t, nan=0.0)


def _side_boundary(X: np.ndarray, *, max_depth: int, min_depth: int,
                   accept: float = _ACCEPT_T, cap: int | None = None):
    """The outermost interface of one side, or None.

    Returns ``(b_strips, strength, coverage, consistency, n_runs, T)``:
    boundary depth per strip (working px), peak statistic, share of strips
    whose own step agrees, how alike the strips' steps are, number of
    separate significant changes (interfaces) and the statistic profile.
    """
    F, n, S = X.shape
    wl = max(3, int(round(_WL * S)))
    wr = max(8, int(round(_WR * S)))
    D = _steps(X, wl, wr)
    T, t = _side_stat(D)
    hi = min(max_depth, S - wr)
    lo = max(min_depth, wl)
    T_in = np.zeros(S)
    T_in[lo:hi + 1] = T[lo:hi + 1]
    best_rej = float(T_in.max()) / _ACCEPT_T if T_in.size else 0.0
    if not (T_in >= accept).any():
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
        bj, coverage, consistency = _refine(D, t, b, lo=lo, hi=S - wr, tol=_WAVE_TOL * S)
        strength = float(T_in[b])
        # a weaker interface must stand out against the exterior beyond it
        # (which holds no interface, only pore clusters and shading)
        deeper = loc[loc > b + max(wl, int(round(_WAVE_TOL * S)))]
        beyond = float(T_in[deeper].max()) if deeper.size else 0.0
        if strength >= accept or (coverage >= _OUTER_COVER and consistency >= _OUTER_CONS
                                  and strength >= _OUTER_RATIO * beyond):
            break
    return (bj, strength, coverage, consistency, len(peaks)), best_rej, T


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


def _stack_side(res, side: str, shape, k: int, cue: str = "texture") -> StackSide:
    """StackSide at full resolution from a per-strip boundary (working px).

    The boundary of each full-resolution row/column is interpolated between
    strip centres, then the upper envelope over one strip length is taken,
    plus the localisation uncertainty (the step lies between working pixels).
    """
    from scipy.ndimage import maximum_filter1d

    bj, strength, cover, cons, n_if = res
    n = len(bj)
    L = shape[0] if side in ("left", "right") else shape[1]
    edges = np.linspace(0, L, n + 1)
    centers = 0.5 * (edges[:-1] + edges[1:])
    far = (np.asarray(bj, np.float64) + 1.0 + _EXTRA_PX) * k
    bnd = np.interp(np.arange(L) + 0.5, centers, far)
    bnd = maximum_filter1d(bnd, size=max(1, int(L / n)) | 1, mode="nearest")
    return StackSide(side=side, boundary=bnd, strength=strength, coverage=cover,
                     interfaces=n_if, consistency=cons, cue=cue)


def _orientation_maps(small: np.ndarray):
    """Structure-tensor energies (J_xx, J_yy) of the working image."""
    import cv2

    sm = cv2.GaussianBlur(small, (0, 0), _ORI_GRAD)
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
    return (cv2.GaussianBlur(gx * gx, (0, 0), _ORI_INT),
            cv2.GaussianBlur(gy * gy, (0, 0), _ORI_INT))


def _layered_band(J, side: str, *, max_depth: int, min_depth: int,
                  n_strips: int = _N_STRIPS):
    """Depth of a band whose texture is oriented along the side, per strip.

    The layers of a stack (and the pores drawn out in them) run parallel to
    the boundary: gradients across the side dominate those along it.  The
    orientation excess ``e(s)`` is the anisotropy ``(J_ss - J_tt) / (J_ss +
    J_tt)`` at depth ``s`` minus that of the far part of the field (which
    removes a scan-direction bias of the instrument and the exterior's own
    texture).  Returns ``(depth_per_strip, level, cover)`` in working px, or
    None when no band oriented along the side starts at the edge: ``level``
    is the band's median excess, ``cover`` the share of strips showing it.
    """
    Jxx, Jyy = J
    js, jt = (Jxx, Jyy) if side in ("left", "right") else (Jyy, Jxx)
    js, jt = _orient(js, side), _orient(jt, side)
    an = (js - jt) / (js + jt + 1e-6)                       # (T, S)
    T, S = an.shape
    far = an[:, int(0.5 * S):int(0.85 * S)]
    if far.shape[1] < 4:
        return None
    e = an - float(np.median(far))
    edges = np.linspace(0, T, n_strips + 1).round().astype(int)
    ej = np.stack([np.median(e[edges[j]:edges[j + 1]], axis=0) for j in range(n_strips)])
    E = np.median(ej, axis=0)
    lo = max(min_depth, 1)
    gap = max(2, int(round(_ORI_GAP * S)))

    def band_end(prof, thr=_ORI_END * _ORI_LAYERED):
        on = prof >= thr
        if not on[lo:lo + gap + 1].any():
            return 0
        end, miss = lo, 0
        for s in range(lo, max_depth + 1):
            if on[s]:
                end, miss = s + 1, 0
            else:
                miss += 1
                if miss > gap:
                    break
        return end

    d = band_end(E)
    if d - lo < _ORI_MIN * S:
        return None
    level = float(np.median(E[lo:d]))
    if level < _ORI_LAYERED:
        return None
    # the (blurred) end of the band lies where the excess has fallen to half
    # the band's own level
    thr = _ORI_END * level
    d = max(band_end(E, thr), lo + 1)
    tol = max(2, int(round(_WAVE_TOL * S)))
    dj = np.array([band_end(p, thr) for p in ej], np.float64)
    shows = (dj > lo) & (np.array([np.median(p[lo:max(lo + 1, min(d, int(dj_) or lo + 1))])
                                   for p, dj_ in zip(ej, dj)]) >= _ORI_END * _ORI_LAYERED)
    cover = float(np.mean(shows))
    # each strip's own end within the wave tolerance; unclear strips keep d + tol
    dj = np.where(shows, np.clip(dj, d - tol, d + tol), d + tol)
    return dj, level, cover


def _detect(image, info_bar_px: int, sides, max_depth: float):
    """All sides: (stacks, confidence)."""
    a = _as_float(image)
    H = a.shape[0] - int(info_bar_px)
    if H < 16 or a.shape[1] < 16:
        return [], 1.0
    a = a[:H]
    small, k = _working_image(a)
    # rows next to the image edge are changed by the streak median: no
    # interface is looked for there
    edge = int(math.ceil(_STREAK_ROWS / (2 * k))) + 1
    out, cand, ori_only = [], [], []
    J = _orientation_maps(small)
    for side in sides:
        if side not in SIDES:
            raise RoiError(f"find_stack: side {side!r}; allowed: {', '.join(SIDES)}")
        X = _side_profiles(small, side)
        S = X.shape[2]
        ori = _layered_band(J, side, max_depth=int(max_depth * S), min_depth=edge)
        ori_ok = ori is not None and ori[2] >= _ORI_COVER
        tol = max(2, int(round(_WAVE_TOL * S)))
        cap = int(np.max(ori[0])) + tol if ori_ok else None
        res, rej, _ = _side_boundary(X, max_depth=int(max_depth * S), min_depth=edge, cap=cap)
        cand.append((rej * _ACCEPT_T, side, X, ori if ori_ok else None))
        if res is None or res[2] < _ACCEPT_COVER or res[3] < _CONSISTENT:
            if ori_ok:
                ori_only.append((side, ori))
            continue
        if ori_ok and np.median(ori[0]) > np.median(res[0]) + 2 * tol:
            # the layered band goes on beyond the texture step: an inner
            # interface was found; cut at the deeper of the two per strip
            res = (np.maximum(res[0], ori[0]),) + tuple(res[1:])
            out.append(_stack_side(res, side, a.shape, k, cue="both"))
        else:
            out.append(_stack_side(res, side, a.shape, k))
    if not out and len(cand) > 1:
        # a weaker interface is still taken when one side stands out clearly
        # against the others: they show this field's own texture noise
        cand.sort(key=lambda c: -c[0])
        (t0, side, X, _), t1 = cand[0], cand[1][0]
        if t0 >= _RELATIVE_T and t0 >= _RELATIVE_RATIO * t1:
            S = X.shape[2]
            res, _, _ = _side_boundary(X, max_depth=int(max_depth * S), min_depth=edge,
                                       accept=t0 - 1e-6)
            if res is not None and res[2] >= _OUTER_COVER and res[3] >= _OUTER_CONS:
                out.append(_stack_side(res, side, a.shape, k))
    if not out and len(ori_only) == 1:
        # no texture step passed, but one side holds a band whose texture is
        # oriented along it (layers, pores drawn out along them) and the
        # other sides do not: the stack, with a wavy or blurred boundary
        side, (dj, level, cover) = ori_only[0]
        out.append(_stack_side((dj, level, cover, 1.0, 1), side, a.shape, k,
                               cue="orientation"))
    tmax = {side: t for t, side, _, _ in cand}
    if len(out) > 1:
        # one exterior unit borders the stack on one side as a rule: a second
        # side (the one with the weaker strongest change) is kept only when
        # it is as clear as a stack can be
        out.sort(key=lambda s: -tmax[s.side])
        keep = [out[0]]
        for st in out[1:]:
            # ... and when the bands leave most of the field between them
            opposite = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}
            room = True
            for other in keep:
                if other.side == opposite[st.side]:
                    across = a.shape[0] if st.side in ("top", "bottom") else a.shape[1]
                    room = room and (st.depth_px + other.depth_px) <= 0.6 * across
            if tmax[st.side] >= _SECOND_T and st.coverage >= 0.9 and room:
                keep.append(st)
        out = keep
    out.sort(key=lambda s: -s.depth_px)
    return out, _confidence(out, tmax, a.shape)


def find_stack(image, *, info_bar_px: int = 0, sides=SIDES,
               max_depth: float = _MAX_DEPTH) -> list[StackSide]:
    """Find laminated-stack bands against the sides of an SEM field.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Raw monochrome image (any dtype), info bar included.
    info_bar_px : int
        Height of the data bar at the bottom; those rows are ignored.
    sides : iterable of {'top', 'bottom', 'left', 'right'}
        Sides to examine.
    max_depth : float
        Deepest boundary looked for, as a fraction of the image size across
        the side (0 < max_depth < 1).

    Returns
    -------
    list of StackSide
        One entry per side that shows a stack, deepest boundary first (a
        second side only when its interface is very clear).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(120, 10, (192, 256)).astype(np.float32)
    >>> img[:, :60] = 200                         # a bright band on the left ...
    >>> img[:, 30:40] = 60                        # ... with a dark layer in it
    >>> [(s.side, 60 <= s.depth_px <= 80) for s in find_stack(img)]
    [('left', True)]
    """
    return _detect(image, info_bar_px, sides, max_depth)[0]


def stack_mask(shape, stacks, *, info_bar_px: int = 0) -> np.ndarray:
    """Boolean mask (H, W) of the stack bands (True in the stack).

    Parameters
    ----------
    shape : (H, W)
        Full image shape, info bar included.
    stacks : list of StackSide
        From :func:`find_stack` on the same image.
    info_bar_px : int
        Rows of the data bar (not part of any band).
    """
    H, W = shape
    Hs = H - int(info_bar_px)
    m = np.zeros((H, W), bool)
    for st in stacks:
        b = np.asarray(st.boundary, np.float64)
        if st.side in ("left", "right"):
            s = np.arange(W)[None, :] + 0.5
            s = s if st.side == "left" else W - s
            m[:Hs] |= s < b[:Hs, None]
        else:
            s = np.arange(Hs)[:, None] + 0.5
            s = s if st.side == "top" else Hs - s
            m[:Hs] |= s < b[None, :W]
    return m


# -- the region -----------------------------------------------------------------

def _margin_px(settings, pixel_size_um: float | None) -> float:
    if pixel_size_um and pixel_size_um > 0:
        return float(settings.margin_um) / float(pixel_size_um)
    return float(settings.margin_px)


def _confidence(stacks: list[StackSide], tmax: dict, shape=None) -> float:
    """Map the decision's clarity to [0, 1].

    ``tmax`` holds, per side examined, the largest interface statistic found
    on it.  Without a stack: how far the strongest candidate stayed below
    acceptance (a field where something almost passed as a stack is unsure:
    at the acceptance level the confidence is 0.45).  With a stack: how far
    the side's strongest interface is above acceptance and how clear the
    outermost one is along the side; if another side shows nearly as strong
    a change, the choice is unsure (at most 0.45).  An outermost interface
    weaker than the acceptance level (taken beyond a strong one) caps the
    confidence at 0.5-0.7, and at 0.45 when it lies deeper than 45 % of the
    field (``shape``: the area above the info bar): such a cut may be a pore
    cluster of the exterior.  A band thinner than ``_SHALLOW`` of the field
    is unsure too (0.45): its outer layers may have been missed.
    """
    if not tmax:
        return 1.0
    if not stacks:
        t = max(tmax.values())
        return float(np.clip(1.0 - 0.55 * (t - _OUTER_T) / (_ACCEPT_T - _OUTER_T), 0.3, 1.0))
    c = []
    for st in stacks:
        if st.cue == "orientation":
            # found on orientation alone (strength: the band's excess)
            lvl = np.clip((st.strength - _ORI_LAYERED) / _ORI_LAYERED, 0, 1)
            c.append(0.5 + 0.3 * float(lvl) * st.coverage)
            continue
        t = tmax.get(st.side, st.strength)
        clarity = np.clip((t - _ACCEPT_T) / (1.5 * _ACCEPT_T), 0, 1)
        cover = np.clip((st.coverage - _ACCEPT_COVER) / (1 - _ACCEPT_COVER), 0, 1)
        cons = np.clip((st.consistency - _CONSISTENT) / (1 - _CONSISTENT), 0, 1)
        ci = 0.45 + 0.3 * clarity + 0.1 * cover + 0.15 * cons
        if shape is not None:
            across = shape[0] if st.side in ("top", "bottom") else shape[1]
            if st.depth_px < _SHALLOW * across:
                # only a thin band at the very edge: its outer layers may
                # have been missed (they are often weak against the exterior)
                ci = min(ci, 0.45)
        if st.strength < _ACCEPT_T:
            ci = min(ci, 0.5 + 0.2 * float(np.clip((st.strength - _OUTER_T)
                                                   / (_ACCEPT_T - _OUTER_T), 0, 1)))
            if shape is not None:
                across = shape[0] if st.side in ("top", "bottom") else shape[1]
                if st.depth_px > 0.45 * across:
                    ci = min(ci, 0.45)
        c.append(ci)
    conf = float(min(c))
    kept = {st.side for st in stacks}
    others = [t for side, t in tmax.items() if side not in kept]
    main = max(tmax.get(st.side, st.strength) for st in stacks)
    texture = any(st.cue != "orientation" for st in stacks)
    if texture and others and max(others) >= max(0.8 * main, _OUTER_T + 1.0):
        conf = min(conf, 0.45)
    return conf


def trim_auto(image, *, info_bar_px: int = 0, pixel_size_um: float | None = None,
              settings=None) -> Region:
    """The exterior-unit region of an SEM field, found without a sidecar.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Raw monochrome image (uint8, uint16 or float), info bar included.
    info_bar_px : int
        Height of the data bar at the bottom; those rows are outside the region.
    pixel_size_um : float or None
        Pixel size, used to convert ``settings.margin_um`` to pixels; None:
        ``settings.margin_px`` is used.
    settings : poromet.pipeline.TrimSettings or None
        ``margin_um`` / ``margin_px``: distance kept from the stack.

    Returns
    -------
    Region
        ``source='auto'``; ``mask`` True in the exterior unit (whole area
        above the info bar when no stack is found); ``confidence`` in [0, 1];
        ``description`` names the sides removed and the margin.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> img = rng.normal(120, 10, (192, 256)).astype(np.float32)
    >>> r = trim_auto(img, info_bar_px=20)
    >>> r.description, float(r.mask[:172].mean()), bool(r.mask[172:].any())
    ('auto: no stack found, whole field above info bar', 1.0, False)
    """
    import cv2
    from .pipeline import TrimSettings

    settings = settings if settings is not None else TrimSettings()
    a = _as_float(image)
    H, W = a.shape
    bar = int(info_bar_px)
    stacks, conf = _detect(a, bar, SIDES, _MAX_DEPTH)
    mask = np.zeros((H, W), bool)
    mask[: H - bar] = True
    warnings = []
    if not stacks:
        return Region(mask=mask, description="auto: no stack found, whole field above info bar",
                      source="auto", confidence=round(conf, 4))
    margin = _margin_px(settings, pixel_size_um)
    st_mask = stack_mask((H, W), stacks, info_bar_px=bar)
    if margin > 0:
        free = np.ascontiguousarray((~st_mask[: H - bar]).astype(np.uint8))
        dist = cv2.distanceTransform(free, cv2.DIST_L2, 5)
        mask[: H - bar] = dist > margin
    else:
        mask[: H - bar] &= ~st_mask[: H - bar]
    if len(stacks) > 1:
        warnings.append(f"auto trimming: stack found on {len(stacks)} sides "
                        f"({', '.join(s.side for s in stacks)})")
    sides = ", ".join(f"{s.side} (depth {s.depth_px:.0f} px)" for s in stacks)
    desc = f"auto: stack on {sides} removed, margin {margin:.0f} px"
    return Region(mask=mask, description=desc, source="auto", confidence=round(conf, 4),
                  warnings=tuple(warnings))
