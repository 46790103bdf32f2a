"""Immutable records passed between the steps of the measurement chain.

Records hold results and provenance, never behaviour or I/O.  Pixel counts
are integers; physical units enter only through ``pixel_size_um``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Calibration",
    "Image",
    "Region",
    "PixelCounts",
    "FieldResult",
    "FIELD_COLUMNS",
]

#: Where a pixel size came from.
PIXEL_SIZE_SOURCES = ("fei", "zeiss", "tiff-resolution", "user", "none")


@dataclass(frozen=True)
class Calibration:
    """Pixel size and info-bar height of one image.

    Attributes
    ----------
    pixel_size_um : float or None
        Edge length of one pixel in micrometres; None when unknown.
    pixel_size_source : {'fei', 'zeiss', 'tiff-resolution', 'user', 'none'}
        Where ``pixel_size_um`` came from.
    info_bar_px : int
        Height in pixels of the SEM data bar at the bottom of the image
        (0 when there is none).
    info_bar_source : {'metadata', 'detected', 'pipeline', 'none'}
        How ``info_bar_px`` was found.
    notes : tuple of str
        Human-readable remarks (e.g. a Zeiss pixel size rescaled to the
        stored width).
    """

    pixel_size_um: float | None = None
    pixel_size_source: str = "none"
    info_bar_px: int = 0
    info_bar_source: str = "none"
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Image:
    """A monochrome image as read from disk, with its metadata.

    Attributes
    ----------
    data : ndarray, shape (H, W)
        Monochrome pixel values in the file's own dtype (uint8, uint16 or
        float32); colour images are converted to luminance on reading.
    path : str or None
        Absolute path of the file, None for in-memory arrays.
    bit_depth : int
        8, 16 or 32.
    calibration : Calibration
        Pixel size and info-bar height read from metadata (info bar may be
        refined later from the pixels).
    metadata : dict
        Vendor metadata (e.g. ``{'fei': {...}}`` or ``{'zeiss': {...}}``)
        and the TIFF resolution tags, for the record.
    sha256 : str
        SHA-256 of the file's bytes ('' for in-memory arrays).
    warnings : tuple of str
        Odd but usable things met while reading.
    """

    data: np.ndarray
    path: str | None = None
    bit_depth: int = 8
    calibration: Calibration = Calibration()
    metadata: dict = field(default_factory=dict)
    sha256: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Region:
    """The trimmed region to measure.

    Attributes
    ----------
    mask : ndarray of bool, shape (H, W)
        True inside the region; the info bar is always False.
    description : str
        How the region was made, e.g. ``'rect 10,20,300,200 (sidecar a.roi.json)'``.
    source : {'sidecar', 'user', 'auto', 'whole'}
        What defined the region.
    confidence : float
        1.0 for given regions; the detector's confidence for 'auto'.
    warnings : tuple of str
        e.g. the region was clipped to the image.
    """

    mask: np.ndarray
    description: str = "whole image"
    source: str = "whole"
    confidence: float = 1.0
    warnings: tuple[str, ...] = ()

    @property
    def fraction(self) -> float:
        """Fraction of the image area inside the region."""
        # the count over the size: the same float as mask.mean(), 3x faster
        return np.count_nonzero(self.mask) / self.mask.size if self.mask.size else 0.0


@dataclass(frozen=True)
class PixelCounts:
    """Integer pixel counts inside a region.

    ``porosity = void / region``; ``other = region - void``.
    """

    void: int
    region: int

    @property
    def other(self) -> int:
        return self.region - self.void

    @property
    def porosity(self) -> float:
        return self.void / self.region if self.region else float("nan")


@dataclass(frozen=True)
class FieldResult:
    """Everything measured on one field (image), with its provenance.

    ``status`` is ``'ok'``, ``'flagged'`` (measured, but a quality signal
    asks for a look; see ``message``) or ``'error'`` (not measured;
    ``message`` says why and the numbers are NaN / 0).
    """

    path: str
    porosity: float = float("nan")
    porosity_low: float = float("nan")
    porosity_high: float = float("nan")
    void_pixels: int = 0
    region_pixels: int = 0
    threshold: float = float("nan")
    threshold_method: str = ""
    pixel_size_um: float | None = None
    pixel_size_source: str = "none"
    info_bar_px: int = 0
    info_bar_source: str = "none"
    region: str = ""
    region_source: str = ""
    region_fraction: float = float("nan")
    trim_confidence: float = float("nan")
    width: int = 0
    height: int = 0
    bit_depth: int = 0
    sample: str = ""
    field: int | None = None
    status: str = "ok"
    message: str = ""
    warnings: tuple[str, ...] = ()
    histogram: tuple[int, ...] = ()
    pipeline_name: str = ""
    pipeline_hash: str = ""
    version: str = ""
    sha256: str = ""
    elapsed_s: float = float("nan")
    overlay: str = ""
    thumbnail: str = ""

    def replace(self, **changes: Any) -> "FieldResult":
        """Return a copy with some attributes changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """All attributes as plain JSON-able Python values."""
        d = dataclasses.asdict(self)
        d["warnings"] = list(self.warnings)
        d["histogram"] = list(self.histogram)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FieldResult":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("warnings", "histogram"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


#: Columns of ``fields.csv``, in order (stable: scripts rely on them).
FIELD_COLUMNS = (
    "sample",
    "field",
    "path",
    "porosity",
    "porosity_low",
    "porosity_high",
    "void_pixels",
    "region_pixels",
    "threshold",
    "threshold_method",
    "pixel_size_um",
    "pixel_size_source",
    "info_bar_px",
    "region",
    "region_fraction",
    "trim_confidence",
    "status",
    "message",
    "width",
    "height",
    "bit_depth",
    "sha256",
    "pipeline_name",
    "pipeline_hash",
    "version",
    "elapsed_s",
)
