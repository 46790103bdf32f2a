"""Exceptions raised by poromet.

Every error caused by the user's input is a :class:`PorometError`, a
``ValueError`` subclass whose message names the file (or setting) and the
problem, so the CLI can print it without a traceback.
"""

__all__ = [
    "PorometError",
    "ImageReadError",
    "CalibrationError",
    "PipelineError",
    "RoiError",
    "DensityError",
]


class PorometError(ValueError):
    """Base class of every error caused by bad input."""


class ImageReadError(PorometError):
    """An image file cannot be read or holds no usable picture."""


class CalibrationError(PorometError):
    """Pixel size or info-bar settings are invalid."""


class PipelineError(PorometError):
    """A pipeline file or setting is invalid (names ``section.key``)."""


class RoiError(PorometError):
    """A region of interest (trimming) is invalid or empty."""


class DensityError(PorometError):
    """A density input is invalid (names the row and the column)."""
