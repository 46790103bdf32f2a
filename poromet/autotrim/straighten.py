"""Straightening a side along a tracked interface (wavy stacks).

Every interface of a laminate follows the stack's outer boundary (each with a
small wobble of its own), so once one interface is found its course along
the side gives the wave of all of them.  Shifting every line across the side
by that course makes the interfaces straight: the strips' steps then line up
at one depth, and a weak outer interface that a wave of a few per cent of
the field smeared over many depths stands out again.
"""

from __future__ import annotations

import numpy as np

from ._params import _TRACK_JUMP, _TRACK_ROWS
from .profiles import _profiles, _steps


def _shift_lines(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``o2[t, s] = o[t, s + d[t]]`` (integer ``d >= 0``), reflected at the far end."""
    T, S = o.shape
    idx = np.arange(S)[None, :] + np.asarray(d, np.int64)[:, None]
    idx = np.where(idx < S, idx, 2 * (S - 1) - idx)
    idx = np.clip(idx, 0, S - 1)
    return np.take_along_axis(o, idx, axis=1)


def _best_paths(score: np.ndarray, jump: int) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic programming over (n, m) scores, moving at most ``jump``
    between rows: ``(back, acc)``, ``back[j, i]`` the best predecessor of
    ``i`` in row ``j - 1`` (the lowest one among equals), ``acc`` the
    accumulated scores of the last row.

    The ``2 jump + 1`` predecessors of every position are windows of one
    padded row (a view), and ``argmax`` takes the first of equal scores.
    """
    n, m = score.shape
    pad = np.full(m + 2 * jump, -np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(pad, m)     # (2 jump + 1, m)
    pos = np.arange(m)
    acc = score[0].copy()
    back = np.zeros((n, m), np.int64)
    for j in range(1, n):
        pad[jump:jump + m] = acc
        k = np.argmax(windows, axis=0)
        back[j] = pos + k - jump
        acc = windows[k, pos] + score[j]
    return back, acc


def _track(o: np.ndarray, u: np.ndarray, b: int, *, wl: int, wr: int, tol: int) -> np.ndarray:
    """Course of the interface found at depth ``b``, per line along the side (working px).

    The side is cut into fine strips of ``_TRACK_ROWS`` lines; in each the
    step is projected on the interface's step direction ``u`` (features in
    units of their spread over the strips) and the best path through
    ``b +- 2 tol`` is found by dynamic programming, moving at most
    ``_TRACK_JUMP`` px between neighbouring strips.
    """
    T, S = o.shape
    n = max(8, T // _TRACK_ROWS)
    X = _profiles(o, n)
    D = _steps(X, wl, wr)                                      # (F, n, S)
    sd = np.median(D[:, :, wl:S - wr + 1].std(axis=1), axis=1)  # (F,), computable depths
    w = u / np.maximum(np.nan_to_num(sd, nan=1.0), 1e-6)
    a0, a1 = max(wl, b - 2 * tol), min(S - wr, b + 2 * tol)
    if a1 - a0 < 2:
        return np.full(T, float(b))
    score = np.tensordot(w, np.nan_to_num(D[:, :, a0:a1 + 1]), axes=(0, 0))   # (n, m)
    back, acc = _best_paths(score, _TRACK_JUMP)
    path = np.empty(n, np.int64)
    path[-1] = int(np.argmax(acc))
    for j in range(n - 1, 0, -1):
        path[j - 1] = back[j, path[j]]
    edges = np.linspace(0, T, n + 1)
    centers = 0.5 * (edges[:-1] + edges[1:])
    return np.interp(np.arange(T) + 0.5, centers, (a0 + path).astype(np.float64))
