"""Trimming: the region of an SEM field to measure (the patent's exterior unit).

The region comes, in this order, from the ``roi`` the user gives, from a
sidecar file next to the image (:func:`find_sidecar`), from automatic
exterior-unit detection (``trim.mode = "auto"``) or is the whole image above
the info bar.  :func:`trim_region` always returns a
:class:`~poromet.records.Region` whose boolean mask has the image's shape; the
info-bar rows are always outside it.

Coordinates and the pixel convention
------------------------------------
All coordinates are in pixels of the original image, origin at the top-left
corner, ``x`` to the right (column), ``y`` down (row).  As in ImageJ, pixel
``(col c, row r)`` is the unit square ``[c, c+1) x [r, r+1)`` with its centre
at ``(c + 0.5, r + 0.5)``.  A pixel belongs to a polygon or oval when its
**centre** lies inside it (even-odd rule for self-intersecting or composite
outlines; a centre exactly on a left/top edge is inside, on a right/bottom
edge outside).  Hence the rectangle ``x, y, w, h`` is exactly the pixels
``[y:y+h, x:x+w]``, and the polygon ``(x,y) (x+w,y) (x+w,y+h) (x,y+h)`` gives
the same pixels.

Sidecar formats
---------------
``<stem>.roi.json``
    ``{"rect": [x, y, w, h]}`` or ``{"polygon": [[x, y], [x, y], ...]}``;
    optional ``"comment"`` and ``"image"`` keys are ignored.
``<stem>.mask.png``
    Same size as the image; nonzero pixels are the region (any colour
    channel nonzero; with an alpha channel, transparent pixels are outside).
``<stem>.roi``
    ImageJ ROI (read with ``roifile``): rectangle, oval, polygon, freehand,
    traced and composite (shape) ROIs.  A RoiManager ``.zip`` given
    explicitly is the union of its area ROIs.

The readers of these files are in :mod:`poromet.roi_files`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import PorometError, RoiError
from .records import Region

__all__ = ["RoiWarning", "SIDECAR_SUFFIXES", "find_sidecar", "is_sidecar", "parse_roi_string",
           "trim_region", "polygon_mask"]

#: Sidecar name endings, in priority order.
SIDECAR_SUFFIXES = (".roi.json", ".mask.png", ".roi")
_JSON_KEYS = ("rect", "polygon")
_JSON_IGNORED = ("comment", "image")


class RoiWarning(UserWarning):
    """A region was usable only after a change (clipped to the image, info bar removed)."""


# -- sidecars -----------------------------------------------------------------

def _stems(image_path: Path) -> list[str]:
    """Candidate stems: name without its last suffix, then without ``.ome.<ext>``."""
    name = image_path.name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    stems = [stem]
    if stem.lower().endswith(".ome") and len(stem) > 4:
        stems.append(stem[:-4])
    return stems


def find_sidecar(image_path: str | os.PathLike) -> Path | None:
    """Find the region file stored next to an image.

    Parameters
    ----------
    image_path : str or Path
        The image file.

    Returns
    -------
    Path or None
        The first existing file of ``<stem>.roi.json``, ``<stem>.mask.png``,
        ``<stem>.roi`` (in that priority), where ``stem`` is the file name
        without its last suffix (``a.tif`` -> ``a``).  For ``a.ome.tif`` the
        stem ``a.ome`` is tried first, then ``a``.  None when there is none.

    Examples
    --------
    >>> find_sidecar("/nonexistent/S01_f01.tif") is None
    True
    """
    path = Path(image_path)
    for stem in _stems(path):
        for suffix in SIDECAR_SUFFIXES:
            candidate = path.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def is_sidecar(path: str | os.PathLike) -> bool:
    """True when ``path`` is named like a region sidecar (never an image).

    Examples
    --------
    >>> is_sidecar("S01_f01.mask.png"), is_sidecar("S01_f01.png")
    (True, False)
    """
    name = Path(path).name.lower()
    return any(name.endswith(s) and len(name) > len(s) for s in SIDECAR_SUFFIXES)


# -- parsing --------------------------------------------------------------------

_INT_RE = re.compile(r"^[+-]?\d+$")


def parse_roi_string(text: str) -> tuple[int, int, int, int]:
    """Parse a rectangle ``"X,Y,W,H"`` (pixels, origin top-left) as given to ``--roi``.

    Parameters
    ----------
    text : str
        Four comma-separated integers: left column, top row, width, height.

    Returns
    -------
    tuple of int
        ``(x, y, w, h)``.

    Raises
    ------
    RoiError
        Not four integers, or a width/height below 1.

    Examples
    --------
    >>> parse_roi_string("10, 20, 300, 200")
    (10, 20, 300, 200)
    >>> parse_roi_string("10,20,300")
    Traceback (most recent call last):
    ...
    poromet.errors.RoiError: --roi '10,20,300': got 3 values; allowed: X,Y,W,H (4 integers, pixels, origin top-left), e.g. 10,20,300,200
    """
    allowed = "allowed: X,Y,W,H (4 integers, pixels, origin top-left), e.g. 10,20,300,200"
    if not isinstance(text, str):
        raise RoiError(f"--roi {text!r}: got {type(text).__name__}; {allowed}")
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise RoiError(f"--roi {text!r}: got {len(parts)} values; {allowed}")
    bad = [p for p in parts if not _INT_RE.match(p)]
    if bad:
        raise RoiError(f"--roi {text!r}: {bad[0]!r} is not an integer; {allowed}")
    x, y, w, h = (int(p) for p in parts)
    if w < 1 or h < 1:
        raise RoiError(f"--roi {text!r}: width {w} and height {h} must be >= 1; {allowed}")
    return x, y, w, h


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RoiError(f"{where}: {what} is {value!r}; allowed: a number (pixels)")
    value = float(value)
    if not math.isfinite(value):
        raise RoiError(f"{where}: {what} is {value!r}; allowed: a finite number (pixels)")
    return value


def _check_rect(rect: Any, where: str) -> tuple[float, float, float, float]:
    allowed = "allowed: [x, y, w, h] (pixels, origin top-left, w and h > 0)"
    if isinstance(rect, (str, bytes)) or not hasattr(rect, "__len__") or len(rect) != 4:
        raise RoiError(f"{where}: rect is {rect!r}; {allowed}")
    x, y, w, h = (_number(v, where, f"rect {n}") for v, n in zip(rect, "xywh"))
    if w <= 0 or h <= 0:
        raise RoiError(f"{where}: rect width {w:g} / height {h:g} must be > 0; {allowed}")
    return x, y, w, h


def _check_polygon(points: Any, where: str) -> np.ndarray:
    allowed = "allowed: [[x, y], [x, y], ...] with at least 3 vertices (pixels)"
    if isinstance(points, (str, bytes, dict)) or not hasattr(points, "__len__"):
        raise RoiError(f"{where}: polygon is {points!r}; {allowed}")
    if len(points) < 3:
        raise RoiError(f"{where}: polygon has {len(points)} vertices; {allowed}")
    out = np.empty((len(points), 2), float)
    for i, p in enumerate(points):
        if isinstance(p, (str, bytes, dict)) or not hasattr(p, "__len__") or len(p) != 2:
            raise RoiError(f"{where}: polygon vertex {i} is {p!r}; {allowed}")
        out[i] = [_number(v, where, f"polygon vertex {i} {n}") for v, n in zip(p, "xy")]
    return out


def _fmt(v: float) -> str:
    return f"{v:g}" if v != int(v) else str(int(v))


# -- rasterising ----------------------------------------------------------------

def _centre_span(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Pixel indices whose centre i + 0.5 lies in [lo, hi), clipped to [0, n)."""
    a = min(max(math.ceil(lo - 0.5), 0), n)
    b = min(max(math.ceil(hi - 0.5), 0), n)
    return a, max(a, b)


def polygon_mask(polygons, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise polygons with the pixel-centre rule (even-odd fill).

    Parameters
    ----------
    polygons : array_like (N, 2) or list of them
        Vertices ``(x, y)`` in pixels; each polygon is closed automatically.
        Several polygons are combined with the even-odd rule (a polygon
        inside another is a hole), as for ImageJ composite ROIs.
    shape : tuple of int
        ``(H, W)`` of the mask.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True where the pixel centre ``(c + 0.5, r + 0.5)`` is inside.

    Examples
    --------
    >>> polygon_mask([[1, 1], [4, 1], [4, 3], [1, 3]], (4, 5)).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    h, w = shape
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        polygons = [polygons]
    elif len(polygons) and np.ndim(polygons[0]) == 1:
        polygons = [polygons]
    starts = [np.asarray(p, float).reshape(-1, 2) for p in polygons]
    mask = np.zeros((h, w), bool)
    if not starts:
        return mask
    (x0, y0), (x1, y1) = (np.concatenate(starts).T,
                          np.concatenate([np.roll(p, -1, axis=0) for p in starts]).T)
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    # rows r whose centre y = r + 0.5 satisfies ylo <= y < yhi (half-open: a
    # vertex shared by two edges is crossed once, a local extremum 0 or 2 times)
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    r0 = np.clip(np.ceil(ylo - 0.5), 0, h).astype(np.int64)
    r1 = np.clip(np.ceil(yhi - 0.5), 0, h).astype(np.int64)
    counts = np.maximum(r1 - r0, 0)
    total = int(counts.sum())
    if total == 0:
        return mask
    edge = np.repeat(np.arange(len(x0)), counts)
    rows = r0[edge] + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    xs = x0[edge] + (rows + 0.5 - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # every row has an even number of crossings; pair them up (even-odd rule)
    ra, xa, xb = rows[0::2], xs[0::2], xs[1::2]
    c0 = np.clip(np.ceil(xa - 0.5), 0, w).astype(np.int64)
    c1 = np.clip(np.ceil(xb - 0.5), 0, w).astype(np.int64)
    ok = c1 > c0
    ra, c0, c1 = ra[ok], c0[ok], c1[ok]
    if ra.size:
        diff = np.zeros((h, w + 1), np.int8)
        np.add.at(diff, (ra, c0), 1)
        np.add.at(diff, (ra, c1), -1)
        mask = np.cumsum(diff[:, :w], axis=1, dtype=np.int8) > 0
    return mask


def _box_mask(x: float, y: float, w: float, h: float, shape, oval: bool = False) -> np.ndarray:
    """Pixels whose centre lies in the box ``x, y, w, h`` (or its inscribed ellipse)."""
    mask = np.zeros(shape, bool)
    r0, r1 = _centre_span(y, y + h, shape[0])
    c0, c1 = _centre_span(x, x + w, shape[1])
    if oval and r1 > r0 and c1 > c0:
        yy = ((np.arange(r0, r1) + 0.5 - y - h / 2) / (h / 2))[:, None]
        xx = ((np.arange(c0, c1) + 0.5 - x - w / 2) / (w / 2))[None, :]
        mask[r0:r1, c0:c1] = xx * xx + yy * yy < 1.0
    else:
        mask[r0:r1, c0:c1] = True
    return mask


# -- shapes -> (mask, description, clip note) ---------------------------------

def _outside(xmin, ymin, xmax, ymax, shape) -> bool:
    return xmin < 0 or ymin < 0 or xmax > shape[1] or ymax > shape[0]


def _clip_note(desc: str, shape, extra: str = "") -> str:
    return f"{desc} extends beyond the {shape[1]}x{shape[0]} image{extra}"


def _shape_rect(rect, shape, label: str, origin: str):
    x, y, w, h = rect
    desc = f"{label} {_fmt(x)},{_fmt(y)},{_fmt(w)},{_fmt(h)}{origin}"
    note = None
    if _outside(x, y, x + w, y + h, shape):
        cx0, cy0 = max(x, 0), max(y, 0)
        cx1, cy1 = min(x + w, shape[1]), min(y + h, shape[0])
        kept = (f"clipped to {_fmt(cx0)},{_fmt(cy0)},{_fmt(cx1 - cx0)},{_fmt(cy1 - cy0)}"
                if cx1 > cx0 and cy1 > cy0 else "nothing of it is inside")
        note = _clip_note(desc, shape, f"; {kept}")
    return _box_mask(x, y, w, h, shape, oval=label.endswith("oval")), desc, note


def _shape_polygons(polys, shape, label: str, origin: str):
    allp = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in polys])
    (xmin, ymin), (xmax, ymax) = allp.min(axis=0), allp.max(axis=0)
    n = sum(len(p) for p in polys)
    parts = f"{len(polys)} parts, " if len(polys) > 1 else ""
    desc = (f"{label} ({parts}{n} vertices, bbox {_fmt(xmin)},{_fmt(ymin)},"
            f"{_fmt(xmax - xmin)},{_fmt(ymax - ymin)}){origin}")
    note = None
    if _outside(xmin, ymin, xmax, ymax, shape):
        note = _clip_note(desc, shape, f" (x {_fmt(xmin)}..{_fmt(xmax)}, y {_fmt(ymin)}..{_fmt(ymax)}); "
                          "clipped to the image")
    return polygon_mask(polys, shape), desc, note


def _from_dict(d: dict, shape, where: str, origin: str):
    keys = [k for k in d if k not in _JSON_IGNORED]
    allowed = ('allowed: {"rect": [x, y, w, h]} or {"polygon": [[x, y], ...]} '
               '(optional "comment", "image")')
    unknown = [k for k in keys if k not in _JSON_KEYS]
    if unknown:
        raise RoiError(f"{where}: unknown key {unknown[0]!r}; {allowed}")
    if len(keys) != 1:
        got = " and ".join(repr(k) for k in keys) or "neither"
        raise RoiError(f"{where}: needs exactly one of 'rect' or 'polygon', got {got}; {allowed}")
    if keys[0] == "rect":
        return _shape_rect(_check_rect(d["rect"], where), shape, "rect", origin)
    return _shape_polygons([_check_polygon(d["polygon"], where)], shape, "polygon", origin)


# -- the public entry point -------------------------------------------------------

def _check_shape(shape, image) -> tuple[int, int]:
    try:
        hw = tuple(int(v) for v in tuple(shape)[:2])
    except (TypeError, ValueError):
        raise RoiError(f"image shape {shape!r}: allowed: (height, width)") from None
    if len(hw) != 2 or hw[0] < 1 or hw[1] < 1:
        raise RoiError(f"image shape {shape!r}: allowed: (height, width), both >= 1")
    if image is not None and tuple(np.shape(image)[:2]) != hw:
        raise RoiError(f"image of shape {np.shape(image)} does not match shape {hw}")
    return hw


def _whole(shape, info_bar_px: int) -> Region:
    mask = np.zeros(shape, bool)
    mask[: shape[0] - info_bar_px] = True
    return Region(mask=mask, description=f"whole image above info bar ({info_bar_px} px)",
                  source="whole")


def _checked_auto(region: Region, shape, info_bar_px: int) -> Region:
    """Hold automatic regions to the same invariants: image shape, no info bar, not empty."""
    mask = np.asarray(region.mask, bool)
    if mask.shape != shape:
        raise RoiError(f"automatic trimming returned a {mask.shape} mask for a {shape} image")
    if info_bar_px and mask[shape[0] - info_bar_px:].any():
        mask = mask.copy()
        mask[shape[0] - info_bar_px:] = False
        region = dataclasses.replace(region, mask=mask)
    if not mask.any():
        raise RoiError(f"automatic trimming ({region.description}) found no region above the "
                       f"info bar ({info_bar_px} px); give one with --roi or a sidecar")
    return region


def trim_region(shape, *, roi=None, info_bar_px: int = 0, image=None,
                pixel_size_um: float | None = None, trim=None) -> Region:
    """The region of an image to measure (the patent's trimming).

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the image (extra trailing dimensions are ignored).
    roi : None, tuple, dict, str or Path, optional
        ``(x, y, w, h)`` rectangle in pixels; ``{"rect": [x, y, w, h]}`` or
        ``{"polygon": [[x, y], ...]}``; a region file (``.roi.json``,
        ``.mask.png``, ImageJ ``.roi``/``.zip``); or a string ``"X,Y,W,H"``
        that is not an existing file.  Coordinates follow the pixel-centre
        convention of the module docstring.  None: see ``trim``.
    info_bar_px : int
        Height of the data bar at the bottom; those rows are always outside.
    image : ndarray, shape (H, W), optional
        The pixels (needed only for automatic trimming).
    pixel_size_um : float, optional
        Passed to automatic trimming.
    trim : poromet.pipeline.TrimSettings, optional
        With ``roi=None``: ``mode == "auto"`` runs
        :func:`poromet.autotrim.trim_auto`; otherwise the whole image above
        the info bar (``source='whole'``).  None: the defaults.

    Returns
    -------
    Region
        ``mask`` of shape ``(H, W)``; ``source`` is ``'sidecar'`` for a
        file, ``'user'`` for a tuple/dict/string, ``'auto'`` or ``'whole'``.

    Warns
    -----
    RoiWarning
        The region extends beyond the image (it is clipped) or into the info
        bar (those rows are removed); the message is also in
        ``Region.warnings``.

    Raises
    ------
    RoiError
        Malformed or unreadable region, mask of another size, or nothing
        left to measure after clipping and info-bar removal.

    Examples
    --------
    >>> r = trim_region((6, 8), roi=(2, 1, 4, 3), info_bar_px=2)
    >>> int(r.mask.sum()), r.description, r.source
    (12, 'rect 2,1,4,3 (user)', 'user')
    >>> trim_region((6, 8), info_bar_px=2).description
    'whole image above info bar (2 px)'
    """
    from .pipeline import TrimSettings

    trim = trim if trim is not None else TrimSettings()
    shape = _check_shape(shape, image)
    if isinstance(info_bar_px, bool) or not isinstance(info_bar_px, (int, np.integer)) \
            or info_bar_px < 0:
        raise RoiError(f"info_bar_px {info_bar_px!r}: allowed: an integer >= 0 (rows)")
    info_bar_px = int(info_bar_px)
    if info_bar_px >= shape[0]:
        raise RoiError(f"info bar of {info_bar_px} px covers the whole {shape[0]}-row image; "
                       "nothing left to measure (check image.info_bar)")

    if roi is None:
        if trim.mode == "auto":
            if image is None:
                raise PorometError("trim.mode 'auto': automatic trimming needs the image pixels "
                                   "(pass image=...)")
            try:
                from .autotrim import trim_auto
            except ImportError as exc:
                raise PorometError(f"trim.mode 'auto': automatic trimming is not available "
                                   f"({exc}); allowed: trim.mode 'sidecar' or 'none', "
                                   "or give a region (--roi / sidecar)") from None
            return _checked_auto(trim_auto(image, info_bar_px=info_bar_px,
                                           pixel_size_um=pixel_size_um, settings=trim),
                                 shape, info_bar_px)
        return _whole(shape, info_bar_px)

    if isinstance(roi, str) and not Path(roi).is_file() and "," in roi \
            and not roi.lower().endswith(SIDECAR_SUFFIXES + (".json", ".png", ".zip")):
        roi = parse_roi_string(roi)
    if isinstance(roi, (str, os.PathLike)):
        from .roi_files import _from_path

        path = Path(roi)
        mask, desc, note = _from_path(path, shape)
        source, where = "sidecar", str(path)
    elif isinstance(roi, dict):
        mask, desc, note = _from_dict(roi, shape, "roi", " (user)")
        source, where = "user", "roi"
    elif isinstance(roi, (tuple, list, np.ndarray)):
        rect = _check_rect(roi, f"roi {roi!r}")
        mask, desc, note = _shape_rect(rect, shape, "rect", " (user)")
        source, where = "user", "roi"
    else:
        raise RoiError(f"roi {roi!r} ({type(roi).__name__}): allowed: None, (x, y, w, h), "
                       '{"rect": ...}, {"polygon": ...}, "X,Y,W,H" or a region file path')

    notes = []
    if note:
        notes.append(note)
    if info_bar_px:
        bar = mask[shape[0] - info_bar_px:]
        rows = int(bar.any(axis=1).sum())
        if rows:
            notes.append(f"{desc} reaches into the info bar (bottom {info_bar_px} px); "
                         f"{int(bar.sum())} px in {rows} rows left out")
            mask[shape[0] - info_bar_px:] = False
    if not mask.any():
        why = f" ({'; '.join(notes)})" if notes else ""
        raise RoiError(f"{where}: region {desc} contains no pixel of the {shape[1]}x{shape[0]} "
                       f"image above the info bar ({info_bar_px} px); nothing to measure{why}")
    for n in notes:
        warnings.warn(n, RoiWarning, stacklevel=2)
    return Region(mask=mask, description=desc, source=source, confidence=1.0,
                  warnings=tuple(notes))
