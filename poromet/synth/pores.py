"""Pore geometry: the exact truth mask of a synthetic field.

Pores are the union of (a) clusters of overlapping ellipses (round and
elongated pores, irregular where lobes overlap) and (b) thresholded smooth
noise (irregular, branching pores; a connected network at high porosity).
The noise threshold is chosen from the pixel values themselves, so the
requested porosity is met to the pixel inside the given region.
"""

from __future__ import annotations

import math

import numpy as np

from .noise import log_uniform, smooth_noise, uniform

__all__ = ["pore_mask", "layer_pores", "min_feature_px"]


def _draw_ellipses(rng, mask, region, target, px_um, p, cluster):
    """Draw ellipse pores into ``mask`` (uint8) until ``target`` region pixels are covered."""
    import cv2

    H, W = mask.shape
    d_lo = max(0.3 / px_um, 2.0)
    d_hi = max(p["ellipse_dmax_um"] / px_um, d_lo * 1.5)
    # expected area per pore for log-uniform diameters, times lobes and aspect
    mean_d2 = (d_hi ** 2 - d_lo ** 2) / (2 * math.log(d_hi / d_lo))
    mean_area = math.pi / 4 * mean_d2 * 1.6
    covered = 0
    cs = p["cluster_strength"]
    cmax = float(cluster.max())
    n_drawn = 0
    for _ in range(60):
        deficit = target - covered
        if deficit <= 0:
            break
        n = int(min(max(deficit / mean_area * 0.8, 3), 200_000))
        # centres: uniform candidates accepted by the cluster density
        k = n * 4 + 16
        cy = rng.uniform(0, H, k)
        cx = rng.uniform(0, W, k)
        acc = rng.random(k) < np.exp(cs * (cluster[cy.astype(int), cx.astype(int)] - cmax))
        cy, cx = cy[acc][:n], cx[acc][:n]
        m = len(cy)
        if m == 0:
            continue
        d = np.exp(rng.uniform(math.log(d_lo), math.log(d_hi), m))
        asp = 1.0 + rng.exponential(p["ellipse_elong"], m)
        ang = p["orient_deg"] + rng.normal(0, p["orient_spread_deg"], m)
        lobes = np.minimum(1 + rng.poisson(p["ellipse_lobes"], m), 5)
        a_ax = d / 2 * np.sqrt(asp)
        b_ax = d / 2 / np.sqrt(asp)
        # extra lobes: offset from the centre, smaller, turned a little
        L = 4
        r = rng.uniform(0.3, 0.9, (m, L)) * a_ax[:, None]
        t = rng.uniform(0, 2 * math.pi, (m, L))
        sc = rng.uniform(0.45, 0.9, (m, L))
        sb = rng.uniform(0.7, 1.3, (m, L))
        dang = rng.normal(0, 25, (m, L))
        xs = np.concatenate([cx[:, None], cx[:, None] + r * np.cos(t)], axis=1)
        ys = np.concatenate([cy[:, None], cy[:, None] + r * np.sin(t)], axis=1)
        aa = np.concatenate([a_ax[:, None], a_ax[:, None] * sc], axis=1)
        bb = np.concatenate([b_ax[:, None], b_ax[:, None] * sc * sb], axis=1)
        an = np.concatenate([ang[:, None], ang[:, None] + dang], axis=1)
        use = np.arange(L + 1)[None, :] < lobes[:, None]
        X = (xs[use] * 16).astype(np.int64).tolist()
        Y = (ys[use] * 16).astype(np.int64).tolist()
        A = np.maximum(aa[use] * 16, 8).astype(np.int64).tolist()
        B = np.maximum(bb[use] * 16, 8).astype(np.int64).tolist()
        AN = an[use].tolist()
        ell = cv2.ellipse
        for x0, y0, a0, b0, an0 in zip(X, Y, A, B, AN):
            ell(mask, (x0, y0), (a0, b0), an0, 0, 360, 1, -1, cv2.LINE_8, 4)
        n_drawn += m
        covered = int(np.count_nonzero(mask[region]))
    return covered, n_drawn


def _top_k_threshold(values: np.ndarray, k: int) -> float:
    """The k-th largest value (so that ``values >= t`` holds k of them)."""
    if k <= 0:
        return float("inf")
    if k >= values.size:
        return float("-inf")
    return float(np.partition(values, values.size - k)[values.size - k])


def _specks(pores: np.ndarray, min_area: int) -> tuple[np.ndarray, int]:
    """Mask of the 8-connected pore components smaller than ``min_area`` px, and their count."""
    import cv2

    n, lab, stats, _ = cv2.connectedComponentsWithStats(pores.view(np.uint8), connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
    small = small[small > 0]
    lut = np.zeros(n, bool)
    lut[small] = True
    return lut[lab], int(small.size)


def min_feature_px(px_um: float) -> int:
    """Width in pixels (odd, at least 3) of the disk that a 0.3 um feature must hold.

    Odd, so that the opening and the closing are centred (an even kernel
    shifts them by half a pixel and leaves new thin parts behind).
    """
    return 2 * max(1, int(math.ceil((0.3 / px_um - 1.0) / 2 - 1e-6))) + 1


def _resolved(raw: np.ndarray, region: np.ndarray, min_area: int, px_um: float) -> np.ndarray:
    """``raw`` without its features narrower than 0.3 um, in pores and solid.

    The pore spec is 0.3-5 um *across*: a part of a pore that an opening
    with a disk 0.3 um wide removes (a one- or two-pixel sliver, thin neck
    or tail) is below it, as is a component smaller than ``min_area``; and
    a solid ligament between pores narrower than that disk (which the
    closing fills) is below the resolution as much as a pore sliver is.
    Opening, closing and the area filter are increasing operators: more
    pores in give more pores out, which the threshold search relies on.
    """
    import cv2

    n = min_feature_px(px_um)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (n, n))
    m = cv2.morphologyEx(raw.view(np.uint8), cv2.MORPH_OPEN, k)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k).view(bool) & region
    return m & ~_specks(m, min_area)[0]

def pore_mask(rng: np.random.Generator, shape: tuple[int, int], region: np.ndarray,
              porosity: float, *, px_um: float) -> tuple[np.ndarray, dict]:
    """An irregular pore mask with ``round(porosity * region.sum())`` pores in ``region``.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (H, W)
    region : ndarray of bool, shape (H, W)
        Where the porosity is met (the exterior unit).
    porosity : float
        Target pore fraction in ``region``, in [0, 0.95].
    px_um : float
        Pixel size in micrometres; pore sizes are drawn in micrometres.

    Returns
    -------
    pores : ndarray of bool, shape (H, W)
        True for void pixels (False outside ``region``).
    params : dict
        Every drawn geometric parameter.
    """
    import cv2

    H, W = shape
    area = int(np.count_nonzero(region))
    k_total = int(round(porosity * area))
    p = {
        "ellipse_share": uniform(rng, 0.15, 0.75),
        "ellipse_dmax_um": uniform(rng, 1.5, 5.0),
        "ellipse_elong": uniform(rng, 0.1, 1.2),
        "ellipse_lobes": uniform(rng, 0.0, 1.5),
        "orient_deg": float(rng.choice([0.0, 0.0, 90.0, uniform(rng, 0, 180)])),
        "orient_spread_deg": uniform(rng, 10, 90),
        "cluster_sigma_um": uniform(rng, 4, 15),
        "cluster_strength": uniform(rng, 0.0, 1.5),
        "noise_fine_um": uniform(rng, 0.12, 0.35),
        "noise_coarse_um": uniform(rng, 0.5, 1.6),
        "noise_coarse_weight": uniform(rng, 0.2, 1.0),
        "noise_aspect": log_uniform(rng, 1.0, 2.2),
        "noise_cluster_weight": uniform(rng, 0.0, 0.8),
    }
    cluster = smooth_noise(rng, (H, W), p["cluster_sigma_um"] / px_um)
    ell = np.zeros((H, W), np.uint8)
    target_e = int(round(p["ellipse_share"] * k_total))
    covered, n_ell = _draw_ellipses(rng, ell, region, target_e, px_um, p, cluster)
    p["ellipse_count"] = int(n_ell)
    # rough, not perfectly elliptical outlines: move the edge by smooth noise
    p["rough_px"] = uniform(rng, 0.0, 1.2)
    if p["rough_px"] > 0.05 and covered:
        sd = cv2.distanceTransform(ell, cv2.DIST_L2, 3)
        sd -= cv2.distanceTransform(1 - ell, cv2.DIST_L2, 3)
        sd += np.float32(p["rough_px"]) * smooth_noise(rng, (H, W), uniform(rng, 1.2, 3.0))
        ell = (sd > 0).view(np.uint8)
        del sd
    ell_b = ell.view(bool) & region

    # irregular pores: thresholded multi-scale noise, elongated like the ellipses
    asp = p["noise_aspect"] if p["orient_deg"] < 45 or p["orient_deg"] > 135 else 1 / p["noise_aspect"]
    field = smooth_noise(rng, (H, W), p["noise_fine_um"] / px_um, aspect=asp)
    field += np.float32(p["noise_coarse_weight"]) * smooth_noise(
        rng, (H, W), p["noise_coarse_um"] / px_um, aspect=asp)
    field += np.float32(p["noise_cluster_weight"]) * cluster
    free = region & ~ell_b
    # features narrower than 0.3 um (pore specks, one- or two-pixel slivers,
    # necks and tails that thresholded elongated noise leaves, and solid
    # ligaments as thin) are removed, and the noise threshold is chosen so
    # that what remains meets the porosity (the removal is increasing in it)
    min_area = max(3, int(round(math.pi / 4 * (0.3 / px_um) ** 2)))
    vals = np.sort(field[free])[::-1]

    def resolved(n_noise: int) -> np.ndarray:
        t = vals[min(n_noise, vals.size) - 1] if n_noise > 0 else np.inf
        return _resolved(ell_b | (free & (field >= t)), region, min_area, px_um)

    # the noise rank whose resolved mask meets the target: interpolation
    # search on the (increasing) count, to 0.02 % of the region
    tol = max(1, int(2e-4 * area))
    lo, c_lo = 0, int(np.count_nonzero(resolved(0)))
    hi, c_hi = vals.size, int(np.count_nonzero(resolved(vals.size)))
    n = max(0, k_total - int(np.count_nonzero(ell_b)))
    pores = None
    for _ in range(30):
        if pores is not None and (abs(c - k_total) <= tol or hi - lo <= 1):
            break
        n = int(min(max(n, lo + 1), hi - 1)) if hi - lo > 1 else lo
        cand = resolved(n)
        c = int(np.count_nonzero(cand))
        pores = cand
        if c <= k_total:
            lo, c_lo = n, c
        else:
            hi, c_hi = n, c
        # next guess: linear between the bracket ends
        n = lo + int(round((k_total - c_lo) * (hi - lo) / max(c_hi - c_lo, 1)))
    p["min_pore_area_px"] = int(min_area)
    p["min_feature_px"] = min_feature_px(px_um)
    return pores, p


def layer_pores(rng: np.random.Generator, layer_map: np.ndarray, porosities: dict[int, float],
                *, px_um: float, aspect: float) -> np.ndarray:
    """Pores of the laminated stack layers, each layer with its own porosity.

    Parameters
    ----------
    layer_map : ndarray of int, shape (H, W)
        0 outside the stack, 1..L for the layers.
    porosities : dict
        Layer number -> pore fraction.
    aspect : float
        Elongation of pores along the layers (see :func:`smooth_noise`).
    """
    field = smooth_noise(rng, layer_map.shape, 0.25 / px_um, aspect=aspect)
    field += np.float32(0.6) * smooth_noise(rng, layer_map.shape, 0.8 / px_um, aspect=aspect)
    pores = np.zeros(layer_map.shape, bool)
    for j, frac in porosities.items():
        if frac <= 0:
            continue
        sel = layer_map == j
        vals = field[sel]
        t = _top_k_threshold(vals, int(round(frac * vals.size)))
        pores |= sel & (field >= t)
    return pores
