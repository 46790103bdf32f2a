"""poromet: porosity of materials from cross-section SEM images.

The method follows the all-solid-state-battery patents: the region to
measure (the exterior unit) is extracted by trimming, converted to
monochrome, binarized with voids black and the rest white, and the porosity
is ``P = void pixels / (void + other pixels)`` inside the region.

The library API is small::

    >>> import poromet
    >>> result = poromet.measure_field("field.tif")      # doctest: +SKIP
    >>> result.porosity                                   # doctest: +SKIP
    0.1234

Heavy and optional dependencies are imported lazily, so ``import poromet``
stays cheap.
"""

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "measure_field",
    "load_pipeline",
    "Pipeline",
    "FieldResult",
    "PorometError",
]

from .errors import PorometError
from .records import FieldResult
from .pipeline import Pipeline, load_pipeline


def measure_field(image_or_path, *, roi=None, pipeline=None, **kwargs):
    """Measure the porosity of one SEM field.

    See :func:`poromet.measure.measure_field` for the parameters.
    """
    from .measure import measure_field as _measure_field

    return _measure_field(image_or_path, roi=roi, pipeline=pipeline, **kwargs)
