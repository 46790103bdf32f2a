"""Layered-band evidence: is a band found against a side a stack of layers?

A texture step alone does not make a stack: a homogeneous cover whose pore
density changes sharply (a pore cluster's edge) shows one as well.  A
laminated stack shows, besides the step, structure of its own inside the
band, which a denser (or sparser) part of the same ceramic does not:

* **oriented texture**: the layers, and the pores drawn out in them, run
  along the side, so the structure-tensor anisotropy inside the band exceeds
  that of the exterior next to it (:func:`_band_orientation`);
* **smooth layers**: current collectors, resin and dense electrolyte layers
  are uniform along the side and nearly free of pores and grain texture:
  at some depths of the band the coarse variation along the side and the
  gradient energy along it fall well below the exterior's, at a grey level
  above the exterior's pore level (:func:`_smooth_depth`);
* a **very clear interface** (statistic ``_EVIDENCE_T``), far above what
  a pore-density change of one material gives.

:func:`_layered` asks for one of these before a band is cut.  Two more
uses: when no side passes the texture statistic, a weaker interface is
taken if its band holds a **current collector**, a bright dense layer
(:func:`_collector`); and a band of oriented texture is followed beyond a
clear texture boundary only where the zone between is itself oriented like
a layer (:func:`_zone_orientation`).
"""

from __future__ import annotations

import numpy as np

from ._params import (_BRIGHT_MIN, _EVIDENCE_ORI, _EVIDENCE_T, _EXTRA_PX, _SMOOTH_COARSE,
                      _SMOOTH_GRAD, _SMOOTH_MIN)
from .orientation import _anisotropy
from .profiles import _pooled_spread, _step_windows, _steps


def _per_line(v, T: int) -> np.ndarray:
    """A depth given per strip (or per line) interpolated to the T lines of a side."""
    v = np.asarray(v, np.float64)
    return np.interp((np.arange(T) + 0.5) / T, (np.arange(len(v)) + 0.5) / len(v), v)


def _zone_orientation(J, side: str, inner, outer) -> float:
    """Orientation excess of the zone between two depths over the exterior beyond it.

    ``inner``, ``outer``: depths (working px) per strip or per line; the
    zone is ``inner + 3 <= s < outer - 3`` (``inner`` may be a scalar), the
    exterior ``outer + 3 < s < outer + 3 + S / 4``.  Returns the median
    anisotropy (gradients across the side against those along it) of the
    zone minus that of the exterior (0 when either is empty).
    """
    an = _anisotropy(J, side)
    T, S = an.shape
    lo = _per_line(np.atleast_1d(np.asarray(inner, np.float64)), T)[:, None]
    hi = _per_line(outer, T)[:, None]
    s = np.arange(S)[None, :]
    zone = (s >= lo + 3) & (s < hi - 3)
    ext = (s > hi + 3) & (s < hi + 3 + 0.25 * S)
    if not zone.any() or not ext.any():
        return 0.0
    return float(np.median(an[zone]) - np.median(an[ext]))


def _line_boundary(st, T: int, k: int) -> np.ndarray:
    """Boundary of a StackSide per line of the working image (working px)."""
    return _per_line(st.boundary, T) / k


def _band_orientation(J, st, k: int, *, min_depth: int) -> float:
    """Orientation excess of the band of ``st`` (from ``min_depth``) over the exterior beside it."""
    T = J[st.side][0].shape[0]
    return _zone_orientation(J, st.side, float(min_depth) - 3.0, _line_boundary(st, T, k))


def _strip_windows(X: np.ndarray, st, k: int, *, min_depth: int):
    """Per strip ``j`` of the side's profiles ``X``: ``(j, band, exterior)``
    depth slices (working px): the band from ``min_depth`` to ``_WL`` short of
    the strip's boundary, and the ``_WR`` window of exterior beyond it."""
    F, n, S = X.shape
    wl, wr = _step_windows(S)
    edges = np.linspace(0, len(st.boundary), n + 1).round().astype(int)
    for j in range(n):
        b = int(np.median(st.boundary[edges[j]:edges[j + 1]]) / k)
        yield (j, slice(min_depth, max(min_depth, b - wl)),
               slice(min(b + wl, S - 2), min(b + wl + wr, S)))


def _smooth_depth(X: np.ndarray, st, k: int, *, min_depth: int) -> float:
    """Depth (working px, median over strips) of smooth layers in the band.

    ``X``: the side's texture profiles (:func:`~poromet.autotrim.profiles._profiles`,
    all strips, whole side).  Per strip, the exterior is the window of
    ``_WR`` beyond the boundary; a depth of the band belongs to a smooth
    layer when its coarse variation along the side is below
    ``_SMOOTH_COARSE`` and its gradient energy along the side below
    ``_SMOOTH_GRAD`` times the exterior's, and its median grey level is above
    the exterior's lower quantile (a large pore is smooth as well, but dark).
    """
    depth = []
    for j, band, ext in _strip_windows(X, st, k, min_depth=min_depth):
        if band.stop <= band.start:
            depth.append(0.0)
            continue
        q15 = float(np.median(X[0, j, ext]))
        coarse = float(np.median(X[-4, j, ext]))
        grad = float(np.median(X[-3, j, ext]))
        smooth = ((X[-4, j, band] <= _SMOOTH_COARSE * coarse)
                  & (X[-3, j, band] <= _SMOOTH_GRAD * grad) & (X[1, j, band] > q15))
        depth.append(float(np.count_nonzero(smooth)))
    return float(np.median(depth))


def _bright_depth(X: np.ndarray, st, k: int, *, min_depth: int) -> float:
    """Depth (working px, median over strips) of a bright dense layer in the band.

    A current collector is denser and brighter than any ceramic: at its
    depths a strip's lower grey-level quantile lies above the upper quantile
    of the exterior beside the boundary (the whole distribution above the
    exterior's solid).
    """
    depth = []
    for j, band, ext in _strip_windows(X, st, k, min_depth=min_depth):
        q85 = float(np.median(X[2, j, ext]))
        depth.append(float(np.count_nonzero(X[0, j, band] > q85)))
    return float(np.median(depth))


def _collector(X: np.ndarray, st, k: int, *, min_depth: int) -> bool:
    """The band of ``st`` holds a bright dense layer (:func:`_bright_depth`)."""
    return _bright_depth(X, st, k, min_depth=min_depth) >= _BRIGHT_MIN * X.shape[2]


def _layered(small, J, X, st, k: int, t_side: float, *, min_depth: int) -> str:
    """The evidence of layers the band of ``st`` shows (see the module docstring).

    ``X``: the side's texture profiles; ``t_side``: the strongest interface
    statistic found on the side.  Returns the first evidence found,
    ``'interface'``, ``'orientation'`` or ``'smooth'`` (smooth layers alone),
    or ``''`` (false) when the band shows none.
    """
    if t_side >= _EVIDENCE_T:
        return "interface"
    if _band_orientation(J, st, k, min_depth=min_depth) >= _EVIDENCE_ORI:
        return "orientation"
    across = X.shape[2]
    return "smooth" if _smooth_depth(X, st, k, min_depth=min_depth) >= _SMOOTH_MIN * across else ""


def _step_evenness(X: np.ndarray, st, k: int) -> float:
    """How evenly the strips of a side show the step at the boundary of ``st``.

    Per strip, the step vector at its boundary (best of +-2 working px, each
    feature in units of its spread over strips) is projected on the strips'
    mean step direction; returns the smallest projection over the median
    one.  An interface between two materials steps alike all along the side
    (about 0.3-0.9); the edge of a pore cluster of the cover, which is round
    and covers part of the side only, leaves strips with no step (below 0.25,
    or negative).
    """
    F, n, S = X.shape
    wl, wr = _step_windows(S)
    D = _steps(X, wl, wr)
    unit = np.maximum(_pooled_spread(D)[:, 0], 1e-9)[:, None]
    edges = np.linspace(0, len(st.boundary), n + 1).round().astype(int)
    Z = []
    for j in range(n):
        b = int(round(float(np.median(st.boundary[edges[j]:edges[j + 1]])) / k - 1 - _EXTRA_PX))
        b = min(max(b, wl), S - wr)
        Z.append(D[:, j, max(wl, b - 2):b + 3] / unit)
    m = np.nanmean(np.concatenate(Z, axis=1), axis=1)
    if not np.all(np.isfinite(m)):
        return 1.0
    u = m / max(float(np.linalg.norm(m)), 1e-9)
    a = np.array([float(np.max(u @ np.nan_to_num(z, nan=0.0))) for z in Z])
    med = float(np.median(a))
    return float(a.min() / med) if med > 0 else 0.0
