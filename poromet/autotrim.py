"""Automatic trimming of the exterior unit: find and remove the laminated stack.

In a cross-section of a laminated (all-solid-state) battery the exterior unit
(ceramic cover, side margins) borders the power-storage unit, a stack of
parallel layers (current collectors, active material, solid electrolyte)
that run along the boundary.  :func:`trim_auto` finds, on each image side,
such a band of layers and returns the rest of the field (above the info bar)
minus a safety margin as a :class:`~poromet.records.Region`.

The detector rests on cues that hold for real laminates, not on grey levels
of one material:

* layer interfaces are **steps** in local statistics (mean grey level, local
  contrast, dark-pixel fraction, gradient energy across and along the
  layers) that stay **continuous along the boundary** for the whole field,
  while pores, grains and shading of a homogeneous ceramic do not;
* the stack touches the image edge, so the stack on one side is everything
  between that edge and the **outermost** continuous interface;
* scan-line artefacts (1-3 bright rows from charging) are removed first by a
  vertical median so they are not taken for current collectors.

Work is done at reduced resolution (longest side about 320 px); the boundary
is traced row by row (or column by column) with dynamic programming, so a
wavy or slightly tilted boundary is followed.  The margin is applied as a
Euclidean distance from the stack at full resolution.

A field in which no side shows a continuous interface keeps the whole area
above the info bar.  ``Region.confidence`` says how clear the decision was;
:func:`poromet.measure.measure_field` flags fields below
``trim.min_confidence``.
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

_WORK_PX = 320          # longest side of the working image
_MAX_DEPTH = 0.5        # deepest boundary searched, fraction of the across size
_STEP_Z = 1.5           # interface strength (in noise units) that counts as a step
_ACCEPT_Z = 2.0         # median strength along a path needed to accept an interface
_ACCEPT_COVER = 0.6     # fraction of the boundary length that must show the step
_NOISE_FLOOR = 0.02     # smallest step noise (grey-level units)
_MIN_STEP = 0.10        # smallest accepted mean step (grey-level units)
_CONSISTENT = 0.8       # |mean step| / mean |step| along an accepted interface
_RAMP = 0.4            # step still present 2 windows beyond: a ramp (shading)
_WINDOW = 0.035         # half-width of the two-sided step test, fraction of the across size


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
        Median interface strength along the boundary, in noise units.
    coverage : float
        Fraction of the boundary length where the step is clear.
    interfaces : int
        Number of continuous interfaces found inside the band (>= 1).
    """

    side: str
    boundary: np.ndarray
    strength: float
    coverage: float
    interfaces: int

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
    # columns first (keeps every row), then a 7-row vertical median, then rows
    cols = cv2.resize(a, (w, H), interpolation=cv2.INTER_AREA)
    cols = ndi.median_filter(cols, size=(7, 1), mode="nearest")
    small = cv2.resize(cols, (w, h), interpolation=cv2.INTER_AREA)
    lo, hi = np.percentile(small, (1.0, 99.0))
    small = np.clip((small - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)
    return small, k


def _features(small: np.ndarray) -> np.ndarray:
    """Local statistics (mean, contrast, dark fraction, gradient energies): (5, h, w)."""
    import cv2
    from skimage.filters import threshold_otsu

    def g(x, s):
        return cv2.GaussianBlur(x, (0, 0), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT)

    s = 2.0
    m = g(small, s)
    sd = np.sqrt(np.maximum(g(small * small, s) - m * m, 0.0))
    try:
        t = float(threshold_otsu(small))
    except ValueError:
        t = 0.5
    dark = g((small < t).astype(np.float32), s)
    sm = g(small, 1.0)
    gx = cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)
    ex, ey = np.sqrt(g(gx * gx, s)), np.sqrt(g(gy * gy, s))
    # absolute units (grey levels scaled to the 1-99 % range): a layer
    # interface is a visible change, not a change relative to the field's own spread
    feats = np.stack([m, 2.0 * sd, dark, 0.25 * ex, 0.25 * ey])
    return feats


def _orient(f: np.ndarray, side: str) -> np.ndarray:
    """View with axis -2 along the side (t) and axis -1 away from the edge (s)."""
    if side == "left":
        return f
    if side == "right":
        return f[..., ::-1]
    f = np.swapaxes(f, -1, -2)
    return f if side == "top" else f[..., ::-1]


# -- one side -----------------------------------------------------------------

def _step_strength(feats: np.ndarray, side: str):
    """Signed feature steps D (F, T, S) and their strength z (T, S) in noise units."""
    import cv2

    f = np.ascontiguousarray(_orient(feats, side))
    F, T, S = f.shape
    sig_t = max(3.0, 0.04 * T)
    w = max(4, int(round(_WINDOW * S)))
    D = np.zeros((F, T, S), np.float32)
    for i in range(F):
        p = cv2.GaussianBlur(f[i], (0, 0), sigmaX=0.7, sigmaY=sig_t,
                             borderType=cv2.BORDER_REFLECT)
        c = np.zeros((T, S + 1), np.float64)
        np.cumsum(p, axis=1, out=c[:, 1:])
        # mean of [s, s + w) minus mean of [s - w, s)
        D[i, :, w:S - w] = ((c[:, 2 * w:S] - c[:, w:S - w]) - (c[:, w:S - w] - c[:, :S - 2 * w])) / w
    gmag = np.sqrt((D * D).sum(axis=0))
    inner = gmag[:, w:S - w]
    noise = float(np.median(inner)) if inner.size else 1.0
    noise = max(noise, _NOISE_FLOOR)
    return D, gmag / noise, noise


def _best_path(score: np.ndarray, lo: np.ndarray, hi: np.ndarray,
               max_step: int) -> np.ndarray | None:
    """Continuous path lo(t) <= s(t) <= hi(t) maximizing the summed score (dynamic programming)."""
    T, S = score.shape
    cols = np.arange(S)
    neg = np.float32(-1e9)
    sc = np.where((cols[None, :] >= lo[:, None]) & (cols[None, :] <= hi[:, None]), score, neg).astype(np.float32)
    acc = sc[0].copy()
    back = np.zeros((T, S), np.int16)
    for t in range(1, T):
        best = acc.copy()
        arg = np.zeros(S, np.int16)
        for dlt in range(1, max_step + 1):
            left = np.full(S, neg, np.float32)
            left[dlt:] = acc[:-dlt]
            right = np.full(S, neg, np.float32)
            right[:-dlt] = acc[dlt:]
            m = left > best
            best = np.where(m, left, best)
            arg = np.where(m, -dlt, arg).astype(np.int16)
            m = right > best
            best = np.where(m, right, best)
            arg = np.where(m, dlt, arg).astype(np.int16)
        acc = best + sc[t]
        back[t] = arg
    s = int(np.argmax(acc))
    if acc[s] <= neg / 2:
        return None
    path = np.empty(T, np.int64)
    path[-1] = s
    for t in range(T - 1, 0, -1):
        s = s + int(back[t, s])
        path[t - 1] = s
    return path


def _trace_side(D: np.ndarray, z: np.ndarray, noise: float, *, max_depth: int, min_depth: int,
                w: int):
    """Accepted continuous interfaces of one side, innermost first (working pixels).

    An interface is accepted when the step is clear along most of its length
    and is the *same* step everywhere (same materials on both sides): the
    mean signed step is a large part of the mean step size.  Pore clusters
    and shading give steps that are local or change sign along the path.
    """
    T, S = z.shape
    S = min(S, max_depth + 1)
    z = z[:, :S]
    score = np.minimum(z, 3 * _STEP_Z) - _STEP_Z
    max_step = max(1, int(round(0.02 * S)))
    ts = np.arange(T)
    found = []
    # recursive partition: the strongest continuous ridge between lo and hi,
    # then the strongest inside and outside it, ... (all ridges, any order)
    todo = [(np.full(T, min_depth, np.int64), np.full(T, S - 1, np.int64))]
    calls = 0
    while todo and calls < 12:
        lo, hi = todo.pop()
        if int((hi - lo).min()) < 3:
            continue
        calls += 1
        path = _best_path(score, lo, hi, max_step)
        if path is None or float(np.mean(z[ts, path] >= _STEP_Z)) < 0.3:
            continue
        todo.append((lo, np.maximum(path - w, lo)))
        todo.append((np.minimum(path + w, hi), hi))
        zp = z[ts, path]
        Dp = D[:, ts, path]                      # (F, T)
        mean_step = float(np.linalg.norm(Dp.mean(axis=1)))
        consistency = mean_step / max(float(np.linalg.norm(Dp, axis=0).mean()), 1e-9)
        cover = float(np.mean(zp >= _STEP_Z))
        strength = mean_step / noise
        # a step, not a ramp (shading): beyond the interface, on the exterior
        # side, the same change must have stopped
        u = Dp.mean(axis=1) / max(mean_step, 1e-9)
        beyond = np.minimum(path + 2 * w, D.shape[2] - 1)
        ramp = float(np.abs(np.tensordot(u, D[:, ts, beyond], axes=1)).mean()) / max(mean_step, 1e-9)
        ok = (strength >= _ACCEPT_Z and cover >= _ACCEPT_COVER and mean_step >= _MIN_STEP
              and consistency >= _CONSISTENT and ramp <= _RAMP)
        if ok:
            found.append((path, strength, cover))
    found.sort(key=lambda f: float(np.median(f[0])))
    return found


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
        One entry per side that shows a stack, deepest boundary first.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(120, 10, (192, 256)).astype(np.float32)
    >>> img[:, :60] = 200                         # a bright band on the left ...
    >>> img[:, 30:40] = 60                        # ... with a dark layer in it
    >>> [(s.side, round(s.depth_px)) for s in find_stack(img)]
    [('left', 64)]
    """
    a = _as_float(image)
    H = a.shape[0] - int(info_bar_px)
    if H < 16 or a.shape[1] < 16:
        return []
    a = a[:H]
    small, k = _working_image(a)
    feats = _features(small)
    out = []
    for side in sides:
        if side not in SIDES:
            raise RoiError(f"find_stack: side {side!r}; allowed: {', '.join(SIDES)}")
        D, z, noise = _step_strength(feats, side)
        T, S = z.shape
        found = _trace_side(D, z, noise, max_depth=int(max_depth * S), min_depth=3,
                            w=max(4, int(round(_WINDOW * S))))
        if not found:
            continue
        path, strength, cover = max(found, key=lambda f: float(np.median(f[0])))
        # back to full resolution: the step sits between working pixels
        # path-1 and path+1; take the far edge (conservative)
        t_full = (np.arange(a.shape[0] if side in ("left", "right") else a.shape[1]) + 0.5) / k - 0.5
        bnd = np.interp(t_full, np.arange(T), (path + 1.0) * k)
        out.append(StackSide(side=side, boundary=bnd, strength=strength, coverage=cover,
                             interfaces=len(found)))
    out.sort(key=lambda s: -s.depth_px)
    return out


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


def _confidence(stacks: list[StackSide], z_best: float) -> float:
    """Map the decision's clarity to [0, 1]."""
    if not stacks:
        return 1.0
    c = []
    for st in stacks:
        strength = np.clip((st.strength - _ACCEPT_Z) / (2 * _ACCEPT_Z), 0, 1)
        cover = np.clip((st.coverage - _ACCEPT_COVER) / (1 - _ACCEPT_COVER), 0, 1)
        c.append(0.5 + 0.25 * strength + 0.25 * cover)
    return float(min(c))


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
    stacks = find_stack(a, info_bar_px=bar)
    mask = np.zeros((H, W), bool)
    mask[: H - bar] = True
    warnings = []
    if not stacks:
        return Region(mask=mask, description="auto: no stack found, whole field above info bar",
                      source="auto", confidence=_confidence([], 0.0))
    margin = _margin_px(settings, pixel_size_um)
    st_mask = stack_mask((H, W), stacks, info_bar_px=bar)
    if margin > 0:
        free = np.ascontiguousarray((~st_mask[: H - bar]).astype(np.uint8))
        dist = cv2.distanceTransform(free, cv2.DIST_L2, 5)
        mask[: H - bar] = dist > margin
    else:
        mask[: H - bar] &= ~st_mask[: H - bar]
    conf = _confidence(stacks, 0.0)
    if len(stacks) > 1:
        warnings.append(f"auto trimming: stack found on {len(stacks)} sides "
                        f"({', '.join(s.side for s in stacks)})")
        conf = min(conf, 0.6)
    sides = ", ".join(f"{s.side} (depth {s.depth_px:.0f} px)" for s in stacks)
    desc = f"auto: stack on {sides} removed, margin {margin:.0f} px"
    return Region(mask=mask, description=desc, source="auto", confidence=round(conf, 4),
                  warnings=tuple(warnings))
