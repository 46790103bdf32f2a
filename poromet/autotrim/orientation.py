"""Orientation cue: a band of texture oriented along an image side (layers).

The layers of a stack, and the pores drawn out in them, run parallel to the
boundary; the structure tensor shows it (see :mod:`poromet.autotrim`).
"""

from __future__ import annotations

import numpy as np

from ._params import (_N_STRIPS, _ORI_END, _ORI_GAP, _ORI_GRAD, _ORI_INT, _ORI_LAYERED,
                      _ORI_MIN, _WAVE_TOL)
from .profiles import _orient, _strip_medians
from .straighten import _shift_lines


def _energies(img: np.ndarray):
    """Structure-tensor energies (J_xx, J_yy) of a working image."""
    import cv2

    sm = cv2.GaussianBlur(img, (0, 0), _ORI_GRAD)
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
    return (cv2.GaussianBlur(gx * gx, (0, 0), _ORI_INT),
            cv2.GaussianBlur(gy * gy, (0, 0), _ORI_INT))


def _orientation_maps(small: np.ndarray, plain: np.ndarray | None = None) -> dict:
    """Structure-tensor energies across and along each side: ``{side: (J_ss, J_tt)}``,
    each (T, S) as :func:`~poromet.autotrim.profiles._orient` turns it.

    ``small``: the working image after the vertical streak median, which
    keeps vertical structure (the layers of a left or right stack) and
    removes scan-line streaks, which run along the top and bottom sides.
    ``plain``: the working image without that median, for the top and
    bottom sides: the median erases thin horizontal structure, the very
    layers and drawn-out pores of a top or bottom stack.  None: ``small``
    for all sides.
    """
    Jxx, Jyy = _energies(small)
    Pxx, Pyy = (Jxx, Jyy) if plain is None else _energies(plain)
    return {"left": (_orient(Jxx, "left"), _orient(Jyy, "left")),
            "right": (_orient(Jxx, "right"), _orient(Jyy, "right")),
            "top": (_orient(Pyy, "top"), _orient(Pxx, "top")),
            "bottom": (_orient(Pyy, "bottom"), _orient(Pxx, "bottom"))}


def _anisotropy(J: dict, side: str) -> np.ndarray:
    """Structure-tensor anisotropy ``(J_ss - J_tt) / (J_ss + J_tt)`` of a side (T, S)."""
    js, jt = J[side]
    return (js - jt) / (js + jt + 1e-6)


def _layered_band(J, side: str, *, max_depth: int, min_depth: int,
                  n_strips: int = _N_STRIPS, shift: np.ndarray | None = None,
                  ref_level: float | None = None):
    """Depth of a band whose texture is oriented along the side, per strip.

    The layers of a stack (and the pores drawn out in them) run parallel to
    the boundary: gradients across the side dominate those along it.  The
    orientation excess ``e(s)`` is the anisotropy ``(J_ss - J_tt) / (J_ss +
    J_tt)`` at depth ``s`` minus that of the far part of the field (which
    removes a scan-direction bias of the instrument and the exterior's own
    texture).  Returns ``(depth_per_strip, level, cover)`` in working px, or
    None when no band oriented along the side starts at the edge: ``level``
    is the band's median excess, ``cover`` the share of strips showing it.
    ``shift``: per line along the side, the straightening shift of
    :func:`poromet.autotrim.straighten._shift_lines` (depths are then in the
    straightened frame).  ``ref_level``: the band's level in another view of
    the same side (the original one); the band then ends at half the lower of
    the two levels, so a view that sharpens a strong layer (a current
    collector) does not end the band before a weakly oriented outer layer.
    """
    an = _anisotropy(J, side)                               # (T, S)
    if shift is not None:
        an = _shift_lines(an, shift)
    T, S = an.shape
    far = an[:, int(0.5 * S):int(0.85 * S)]
    if far.shape[1] < 4:
        return None
    e = an - float(np.median(far))
    edges = np.linspace(0, T, n_strips + 1).round().astype(int)
    ej = _strip_medians(e, edges)
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

    # the band at half the layered level, its own level at least the
    # layered one; when the cover beside it is oriented too (pores drawn out
    # along the side), the band runs on into it and its level is diluted:
    # then the band at the layered level, its own level at least twice that
    for start in (_ORI_END * _ORI_LAYERED, _ORI_LAYERED):
        d = band_end(E, start)
        level = float(np.median(E[lo:d])) if d - lo >= _ORI_MIN * S else 0.0
        if level >= start / _ORI_END:
            break
    else:
        return None
    # the (blurred) end of the band lies where the excess has fallen to half
    # the band's own level
    thr = _ORI_END * (level if ref_level is None else min(level, float(ref_level)))
    d = max(band_end(E, thr), lo + 1)
    tol = max(2, int(round(_WAVE_TOL * S)))
    dj = np.array([band_end(p, thr) for p in ej], np.float64)
    shows = (dj > lo) & (np.array([np.median(p[lo:max(lo + 1, min(d, int(dj_) or lo + 1))])
                                   for p, dj_ in zip(ej, dj)]) >= _ORI_END * _ORI_LAYERED)
    cover = float(np.mean(shows))
    # each strip's own end within the wave tolerance; unclear strips keep d + tol
    dj = np.where(shows, np.clip(dj, d - tol, d + tol), d + tol)
    return dj, level, cover
