"""The measurement chain for one field, and pixel counting.

:func:`measure_field` is the only place where the steps are chained; the
CLI, the batch runner, the watch service and the Dask executor all call it.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .errors import PorometError
from .pipeline import Pipeline, load_pipeline
from .records import FieldResult, Image, PixelCounts, Region

__all__ = ["count_pixels", "crop_box", "measure_field", "FieldArrays", "error_result"]


def count_pixels(pores: np.ndarray, region: np.ndarray) -> PixelCounts:
    """Count void and region pixels; pixels outside the region never count.

    Parameters
    ----------
    pores : ndarray of bool, shape (H, W)
        True where a void (pore) is.
    region : ndarray of bool, shape (H, W)
        True inside the trimmed region.

    Returns
    -------
    PixelCounts
        ``void = (pores & region).sum()``, ``region = region.sum()``.

    Examples
    --------
    >>> pores = np.zeros((4, 4), bool); pores[0, :] = True
    >>> region = np.zeros((4, 4), bool); region[1:, :] = True
    >>> count_pixels(pores, region)       # the pore row lies outside
    PixelCounts(void=0, region=12)
    """
    pores = np.asarray(pores, dtype=bool)
    region = np.asarray(region, dtype=bool)
    if pores.shape != region.shape:
        raise ValueError(f"pores {pores.shape} and region {region.shape} differ in shape")
    return PixelCounts(void=int(np.count_nonzero(pores & region)),
                       region=int(np.count_nonzero(region)))


@dataclass(frozen=True, eq=False)
class FieldArrays:
    """The images behind a :class:`FieldResult`, for overlays and masks."""

    gray8: np.ndarray      # (H, W) uint8 display image (the original, scaled)
    region: np.ndarray     # (H, W) bool
    pores: np.ndarray      # (H, W) bool, voids True


def error_result(path, message: str, pipeline: Pipeline | None = None, **extra) -> FieldResult:
    """A :class:`FieldResult` row for a field that could not be measured."""
    pipeline = pipeline or Pipeline()
    return FieldResult(
        path=str(path), status="error", message=message,
        pipeline_name=pipeline.name, pipeline_hash=pipeline.hash, version=__version__,
        **extra,
    )


def _to_gray8(data: np.ndarray) -> np.ndarray:
    """Scale an image to uint8 for display (full range of its own values)."""
    if data.dtype == np.uint8:
        return data
    d = data.astype(np.float32)
    lo, hi = float(np.nanmin(d)), float(np.nanmax(d))
    if hi <= lo:
        return np.zeros(d.shape, np.uint8)
    return np.clip((d - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


#: Pixels of image kept around the region's bounding box for the filters
#: (the widest is the adaptive smoothing, sigma <= 3 px, on the 1.5-px
#: pre-blur; the shading estimate is taken from region pixels only).
CROP_MARGIN_PX = 24


def crop_box(region: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of ``region``'s True pixels grown by ``margin``
    (clipped to the image), as a pair of slices; the whole image when the
    region is empty.

    Examples
    --------
    >>> r = np.zeros((10, 10), bool); r[4:6, 3:5] = True
    >>> crop_box(r, 2)
    (slice(2, 8, None), slice(1, 7, None))
    """
    rows = np.flatnonzero(region.any(axis=1))
    if rows.size == 0:
        return slice(0, region.shape[0]), slice(0, region.shape[1])
    cols = np.flatnonzero(region.any(axis=0))
    H, W = region.shape
    return (slice(max(0, int(rows[0]) - margin), min(H, int(rows[-1]) + 1 + margin)),
            slice(max(0, int(cols[0]) - margin), min(W, int(cols[-1]) + 1 + margin)))


def measure_field(image_or_path, *, roi=None, pipeline=None, sidecar=True,
                  return_arrays: bool = False):
    """Measure the porosity of one SEM field.

    Parameters
    ----------
    image_or_path : str, Path, ndarray or Image
        An image file, a 2-D array (uint8/uint16/float), or an
        :class:`~poromet.records.Image`.
    roi : None, tuple (x, y, w, h), dict or str/Path, optional
        The region to measure (the patent's trimming).  A tuple is a
        rectangle in pixels; a dict is ``{"rect": [...]}`` or
        ``{"polygon": [[x, y], ...]}``; a path is a sidecar file
        (``.roi.json``, ``.mask.png`` or ImageJ ``.roi``).  None: the
        image's sidecar if one exists (when ``sidecar`` is true), else what
        the pipeline's ``trim.mode`` says.
    pipeline : Pipeline, str, Path or None
        Measurement settings; a shipped name, a TOML path, or None for
        ``exterior-unit``.
    sidecar : bool
        Look for ``<stem>.roi.json`` / ``<stem>.mask.png`` / ``<stem>.roi``
        next to the image.
    return_arrays : bool
        Also return the :class:`FieldArrays` (display image, region, pores).

    Returns
    -------
    FieldResult, or (FieldResult, FieldArrays) when ``return_arrays``.

    Raises
    ------
    PorometError
        Unreadable image, invalid region, invalid pipeline.  (Batch callers
        turn these into ``status='error'`` rows.)
    """
    from .binarize import segment
    from .calibrate import calibrate
    from .io import as_image, read_image
    from .preprocess import preprocess
    from .roi import find_sidecar, trim_region

    t0 = time.perf_counter()
    pipeline = load_pipeline(pipeline)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if isinstance(image_or_path, (str, os.PathLike)):
            image = read_image(image_or_path, max_pixels=pipeline.image.max_pixels)
        elif isinstance(image_or_path, Image):
            image = image_or_path
        else:
            image = as_image(image_or_path)
        cal = calibrate(image, pipeline.image)
        data = image.data
        if roi is None and sidecar and image.path and pipeline.trim.mode != "none":
            roi = find_sidecar(image.path)
        region = trim_region(
            data.shape, roi=roi, info_bar_px=cal.info_bar_px,
            image=data, pixel_size_um=cal.pixel_size_um, trim=pipeline.trim,
        )
        # the chain works on the region's bounding box (and a margin that
        # gives the filters their context): nothing outside the region
        # enters a statistic, and a trimmed field is often half the image
        box = crop_box(region.mask, CROP_MARGIN_PX)
        sub_mask = region.mask[box]
        clean, smooth_sigma = preprocess(data[box], sub_mask, pipeline.preprocess,
                                         pixel_size_um=cal.pixel_size_um, return_sigma=True,
                                         field_shape=data.shape[:2])
        seg = segment(clean, sub_mask, threshold=pipeline.threshold,
                      cleanup=pipeline.cleanup, pixel_size_um=cal.pixel_size_um,
                      smooth_sigma=smooth_sigma)
        del clean
        pores = np.zeros(region.mask.shape, bool)
        pores[box] = seg.pores
        counts = count_pixels(pores, region.mask)
    messages = list(image.warnings) + list(cal.notes) + list(region.warnings)
    messages += [str(w.message) for w in caught if str(w.message) not in messages]
    status, flag_msgs = "ok", []
    if region.fraction < pipeline.trim.min_region_fraction:
        flag_msgs.append(
            f"region covers {region.fraction:.1%} of the image "
            f"(< trim.min_region_fraction {pipeline.trim.min_region_fraction:.0%})")
    if region.source == "auto" and region.confidence < pipeline.trim.min_confidence:
        flag_msgs.append(
            f"automatic trimming unsure (confidence {region.confidence:.2f} "
            f"< trim.min_confidence {pipeline.trim.min_confidence:.2f})")
    if flag_msgs:
        status = "flagged"
    result = FieldResult(
        path=str(image.path) if image.path else "<array>",
        porosity=counts.porosity,
        porosity_low=seg.porosity_low,
        porosity_high=seg.porosity_high,
        void_pixels=counts.void,
        region_pixels=counts.region,
        threshold=float(seg.threshold),
        threshold_method=pipeline.threshold.method,
        pixel_size_um=cal.pixel_size_um,
        pixel_size_source=cal.pixel_size_source,
        info_bar_px=int(cal.info_bar_px),
        info_bar_source=cal.info_bar_source,
        region=region.description,
        region_source=region.source,
        region_fraction=round(region.fraction, 6),
        trim_confidence=round(float(region.confidence), 4),
        width=int(data.shape[1]),
        height=int(data.shape[0]),
        bit_depth=int(image.bit_depth),
        status=status,
        message="; ".join(flag_msgs),
        warnings=tuple(messages),
        histogram=tuple(int(v) for v in seg.histogram),
        pipeline_name=pipeline.name,
        pipeline_hash=pipeline.hash,
        version=__version__,
        sha256=image.sha256,
        elapsed_s=round(time.perf_counter() - t0, 4),
    )
    if return_arrays:
        return result, FieldArrays(gray8=_to_gray8(data), region=region.mask, pores=pores)
    return result
