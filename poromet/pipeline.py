"""Pipelines: the measurement settings, as a validated, hashable record.

A pipeline is a TOML file with one table per step::

    name = "exterior-unit"

    [threshold]
    method = "otsu"
    band = 5

Unknown sections or keys, and values of the wrong type or outside the
allowed set, raise :class:`~poromet.errors.PipelineError` naming
``section.key``, what was given and what is allowed.  Command-line flags
override the file (:func:`override`), which overrides the defaults.

The shipped pipelines live in the repository's ``pipelines/`` folder and are
installed as ``poromet/pipelines``; :func:`load_pipeline` takes a name
(``'exterior-unit'``) or a path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from .errors import PipelineError

__all__ = [
    "Pipeline",
    "load_pipeline",
    "pipeline_from_dict",
    "override",
    "shipped_pipelines",
    "DEFAULT_PIPELINE",
]

DEFAULT_PIPELINE = "exterior-unit"

# -- sections ---------------------------------------------------------------
# Each section is a frozen dataclass.  ``_CHOICES`` lists allowed string
# values, ``_RANGES`` allowed numeric intervals (inclusive), keyed by
# "section.key".


@dataclass(frozen=True)
class ImageSettings:
    #: "auto" (metadata, else detect from pixels), "none", or a height in px.
    info_bar: Union[str, int] = "auto"
    #: Pixel size in µm overriding the metadata (None: use metadata).
    pixel_size_um: float | None = None
    #: Largest image accepted, in pixels (guards against decompression bombs).
    max_pixels: int = 250_000_000


@dataclass(frozen=True)
class TrimSettings:
    #: "sidecar": a sidecar or --roi if present, else the whole image above
    #: the info bar; "auto": sidecar if present, else automatic exterior-unit
    #: detection; "none": whole image above the info bar, sidecars ignored.
    mode: str = "sidecar"
    #: Safety margin kept from the laminated stack, in µm (auto trimming).
    margin_um: float = 2.0
    #: Margin in pixels used when the pixel size is unknown.
    margin_px: int = 20
    #: Fields whose region covers less than this fraction are flagged.
    min_region_fraction: float = 0.10
    #: Auto-trim detections with a lower confidence are flagged.
    min_confidence: float = 0.5
    #: Leave flagged fields out of the sample statistics.
    exclude_flagged: bool = False


@dataclass(frozen=True)
class PreprocessSettings:
    #: Denoising before thresholding.  "adaptive" (default): Gaussian
    #: smoothing just strong enough for the field's measured shot noise,
    #: after shading flattening on the solid phase (poromet.adaptive).
    denoise: str = "adaptive"
    #: Filter size in pixels (median: kernel width; gaussian: sigma).
    denoise_px: float = 3
    #: Background (shading) flattening.
    background: str = "divide"
    #: Scale of the background estimate in pixels (large against pores).
    background_px: float = 101
    #: Divide out row-to-row brightness jumps (charging scan lines).
    scan_lines: bool = False


@dataclass(frozen=True)
class ThresholdSettings:
    #: Threshold method, or "manual" with ``value``.  Default "local": the
    #: local midpoint at pore edges and the global void/solid midpoint
    #: elsewhere (poromet.adaptive), the only method that stays within
    #: about half a percentage point on the synthetic benchmark; the global
    #: methods (ImageJ's "Default" = ij_default, otsu, ...) remain available.
    method: str = "local"
    #: Manual threshold on the 8-bit scale (0-255) of the preprocessed image.
    value: float | None = None
    #: Sensitivity band: P is also reported at threshold +- band gray levels
    #: (8-bit scale).
    band: float = 5


@dataclass(frozen=True)
class CleanupSettings:
    #: Pores smaller than this many pixels are removed (0: keep all).
    min_pore_area_px: int = 4
    #: Same in µm² (used instead of px when the pixel size is known).
    min_pore_area_um2: float | None = None
    #: Fill holes enclosed in pores (bright specks inside voids).
    fill_holes: bool = False
    #: Fill dark non-void patches enclosed by voids (the mid-gray visible
    #: bottoms of large open pores); used with threshold.method = "local".
    fill_floors: bool = True


@dataclass(frozen=True)
class SampleSettings:
    #: Fields per sample expected by the method (the patents: 10).
    fields: int = 10
    #: Target % relative accuracy (ASTM E1245).
    target_rel_accuracy_pct: float = 10.0
    #: Watch service: a sample quiet this long is complete.
    quiet_minutes: float = 10.0


@dataclass(frozen=True)
class SpecSettings:
    #: Porosity limits as fractions (None: no limit).
    porosity_max: float | None = None
    porosity_min: float | None = None
    #: Relative density limit (fraction), judged on the filling rate.
    relative_density_min: float | None = None
    #: Largest accepted difference between image and filling-rate porosity,
    #: in percentage points.
    density_tolerance_pp: float = 5.0


@dataclass(frozen=True)
class DensitySettings:
    #: Process step of the density sheet joined to the images (None: last).
    step: str | None = None
    #: Minimum rate of decrease in porosity between consecutive steps
    #: (fraction, e.g. 0.77), None: not judged.
    rate_of_decrease_min: float | None = None
    #: Maximum rate of decrease (fraction, e.g. 0.30 for an intermediate
    #: layer that must stay porous), None: not judged.
    rate_of_decrease_max: float | None = None
    #: The rate judged against the limits is the one into this step (from
    #: the step before it); None: into the joined step (``step``, else the
    #: last); "*": every consecutive transition.
    rate_step: str | None = None
    #: Layer of the density sheet (its ``layer`` column) that the limits
    #: and the join apply to (None: every layer).
    layer: str | None = None


_CHOICES: dict[str, tuple[str, ...]] = {
    "trim.mode": ("sidecar", "auto", "none"),
    "preprocess.denoise": ("adaptive", "none", "median", "gaussian", "bilateral", "nlmeans"),
    "preprocess.background": ("none", "divide", "subtract", "rolling_ball"),
    "threshold.method": (
        "local", "otsu", "isodata", "ij_default", "li", "triangle", "yen", "minimum",
        "valley", "manual",
    ),
}
_RANGES: dict[str, tuple[float, float]] = {
    "image.max_pixels": (1, math.inf),
    "image.pixel_size_um": (1e-6, 1e4),
    "trim.margin_um": (0, 1e4),
    "trim.margin_px": (0, 1e5),
    "trim.min_region_fraction": (0, 1),
    "trim.min_confidence": (0, 1),
    "preprocess.denoise_px": (0, 50),
    "preprocess.background_px": (3, 1e5),
    "threshold.value": (0, 255),
    "threshold.band": (0, 127),
    "cleanup.min_pore_area_px": (0, 1e9),
    "cleanup.min_pore_area_um2": (0, 1e9),
    "sample.fields": (1, 10_000),
    "sample.target_rel_accuracy_pct": (0.1, 1000),
    "sample.quiet_minutes": (0, 1e6),
    "spec.porosity_max": (0, 1),
    "spec.porosity_min": (0, 1),
    "spec.relative_density_min": (0, 1),
    "spec.density_tolerance_pp": (0, 100),
    "density.rate_of_decrease_min": (0, 1),
    "density.rate_of_decrease_max": (0, 1),
}


@dataclass(frozen=True)
class Pipeline:
    """Measurement settings, one attribute per TOML section.

    Build one with :func:`load_pipeline` (file or shipped name) or
    :func:`pipeline_from_dict`; change one with :func:`override`.
    """

    name: str = "default"
    description: str = ""
    image: ImageSettings = ImageSettings()
    trim: TrimSettings = TrimSettings()
    preprocess: PreprocessSettings = PreprocessSettings()
    threshold: ThresholdSettings = ThresholdSettings()
    cleanup: CleanupSettings = CleanupSettings()
    sample: SampleSettings = SampleSettings()
    spec: SpecSettings = SpecSettings()
    density: DensitySettings = DensitySettings()
    #: Where the pipeline was loaded from (not part of the hash).
    source: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        """The effective settings as plain values (``source`` left out)."""
        d = dataclasses.asdict(self)
        d.pop("source", None)
        return d

    @property
    def hash(self) -> str:
        """Short SHA-256 of the effective settings (stable across runs)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_toml(self) -> str:
        """The effective pipeline as TOML text (None values commented out)."""
        lines = [f"name = {_toml_value(self.name)}"]
        if self.description:
            lines.append(f"description = {_toml_value(self.description)}")
        for sec in _SECTIONS:
            lines.append("")
            lines.append(f"[{sec}]")
            for k, v in dataclasses.asdict(getattr(self, sec)).items():
                if v is None:
                    lines.append(f"# {k} = (not set)")
                else:
                    lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"


_SECTIONS = {
    f.name: f.type for f in dataclasses.fields(Pipeline)
    if f.name not in ("name", "description", "source")
}
_SECTION_CLASSES = {
    "image": ImageSettings,
    "trim": TrimSettings,
    "preprocess": PreprocessSettings,
    "threshold": ThresholdSettings,
    "cleanup": CleanupSettings,
    "sample": SampleSettings,
    "spec": SpecSettings,
    "density": DensitySettings,
}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        inner = ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items())
        return "{ " + inner + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"Union": Union})  # noqa: S307
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        out: list[type] = []
        for a in typing.get_args(annotation):
            out.extend(_allowed_types(a))
        return tuple(out)
    if annotation is None or annotation is type(None):
        return (type(None),)
    if origin is not None:
        return (origin,)
    return (annotation,)


def _type_name(types_: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
             type(None): "unset", dict: "a table", list: "a list", tuple: "a list"}
    return " or ".join(names.get(t, t.__name__) for t in types_)


def _check_value(section: str, key: str, value: Any, annotation: Any) -> Any:
    where = f"{section}.{key}"
    allowed = _allowed_types(annotation)
    ok = False
    if isinstance(value, bool):
        ok = bool in allowed
    elif isinstance(value, int):
        ok = int in allowed or float in allowed
        if ok and int not in allowed:
            value = float(value)
    elif isinstance(value, float):
        ok = float in allowed
    else:
        ok = any(isinstance(value, t) for t in allowed if t is not type(None))
    if value is None and type(None) in allowed:
        return None
    if not ok:
        raise PipelineError(
            f"{where}: got {value!r} ({type(value).__name__}); allowed: {_type_name(allowed)}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise PipelineError(f"{where}: got {value!r}; allowed: a finite number")
    choices = _CHOICES.get(where)
    if choices is not None and isinstance(value, str) and value not in choices:
        raise PipelineError(
            f"{where}: got {value!r}; allowed: {', '.join(repr(c) for c in choices)}"
        )
    if where == "image.info_bar" and isinstance(value, str) and value not in ("auto", "none"):
        raise PipelineError(f"{where}: got {value!r}; allowed: 'auto', 'none' or a height in px")
    if where == "image.info_bar" and isinstance(value, int) and value < 0:
        raise PipelineError(f"{where}: got {value!r}; allowed: a height >= 0 px")
    rng = _RANGES.get(where)
    if rng is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = rng
        if not lo <= value <= hi:
            raise PipelineError(f"{where}: got {value!r}; allowed: {lo:g} to {hi:g}")
    return value


def _build_section(section: str, values: Any, base: Any) -> Any:
    cls = _SECTION_CLASSES[section]
    if not isinstance(values, dict):
        raise PipelineError(f"{section}: got {values!r}; allowed: a table [{section}]")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    checked = {}
    for key, value in values.items():
        if key not in fields:
            raise PipelineError(
                f"{section}.{key}: unknown key; allowed keys in [{section}]: "
                f"{', '.join(sorted(fields))}"
            )
        checked[key] = _check_value(section, key, value, fields[key].type)
    return dataclasses.replace(base, **checked)


def _check_consistency(p: Pipeline) -> None:
    s = p.spec
    if s.porosity_min is not None and s.porosity_max is not None and s.porosity_min > s.porosity_max:
        raise PipelineError(
            f"spec.porosity_min: got {s.porosity_min} > spec.porosity_max {s.porosity_max}; "
            "allowed: porosity_min <= porosity_max"
        )
    if p.threshold.method == "manual" and p.threshold.value is None:
        raise PipelineError(
            "threshold.value: not set but threshold.method is 'manual'; "
            "allowed: a gray level 0-255 (8-bit scale)"
        )


def pipeline_from_dict(data: dict, *, base: Pipeline | None = None, source: str = "") -> Pipeline:
    """Build a validated :class:`Pipeline` from a nested dict (parsed TOML).

    Values missing from ``data`` come from ``base`` (the defaults when None).

    Examples
    --------
    >>> p = pipeline_from_dict({"threshold": {"method": "li"}})
    >>> p.threshold.method
    'li'
    >>> pipeline_from_dict({"threshold": {"metod": "li"}})
    Traceback (most recent call last):
    ...
    poromet.errors.PipelineError: threshold.metod: unknown key; allowed keys in [threshold]: band, method, value
    """
    base = base or Pipeline()
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("name", "description"):
            if not isinstance(value, str):
                raise PipelineError(f"{key}: got {value!r}; allowed: a string")
            changes[key] = value
        elif key in _SECTION_CLASSES:
            changes[key] = _build_section(key, value, getattr(base, key))
        else:
            raise PipelineError(
                f"{key}: unknown section or key; allowed: name, description, "
                + ", ".join(f"[{s}]" for s in _SECTION_CLASSES)
            )
    p = dataclasses.replace(base, **changes, source=source or base.source)
    _check_consistency(p)
    return p


def shipped_dir() -> Path:
    """Folder of the shipped pipelines (installed copy, else the repository's)."""
    installed = Path(__file__).parent / "pipelines"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "pipelines"


def shipped_pipelines() -> list[str]:
    """Names of the shipped pipelines."""
    d = shipped_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def load_pipeline(name_or_path: str | Path | Pipeline | None = None) -> Pipeline:
    """Load a pipeline by shipped name or from a TOML file.

    Parameters
    ----------
    name_or_path : str, Path, Pipeline or None
        A shipped name (``'exterior-unit'``), a path to a ``.toml`` file, a
        ready :class:`Pipeline` (returned as is), or None for the default
        ``'exterior-unit'`` pipeline.

    Raises
    ------
    PipelineError
        Unknown name, unreadable file, TOML syntax error or invalid setting.
    """
    if isinstance(name_or_path, Pipeline):
        return name_or_path
    if name_or_path is None:
        name_or_path = DEFAULT_PIPELINE
    text_name = str(name_or_path)
    path = Path(text_name)
    if not (path.suffix == ".toml" or path.exists() or "/" in text_name or "\\" in text_name):
        path = shipped_dir() / f"{text_name}.toml"
        if not path.is_file():
            raise PipelineError(
                f"pipeline {text_name!r}: no such shipped pipeline; allowed: "
                f"{', '.join(shipped_pipelines()) or '(none found)'} or a path to a .toml file"
            )
    if not path.is_file():
        raise PipelineError(f"{path}: pipeline file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not valid TOML: {exc}") from None
    try:
        return pipeline_from_dict(data, source=str(path))
    except PipelineError as exc:
        raise PipelineError(f"{path}: {exc}") from None


def override(pipeline: Pipeline, **settings: Any) -> Pipeline:
    """Return ``pipeline`` with ``section__key=value`` settings applied.

    None values are ignored, so unset command-line flags change nothing.

    Examples
    --------
    >>> p = override(Pipeline(), threshold__method="li", trim__mode=None)
    >>> p.threshold.method, p.trim.mode
    ('li', 'sidecar')
    """
    nested: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        if value is None:
            continue
        section, _, name = key.partition("__")
        nested.setdefault(section, {})[name] = value
    if not nested:
        return pipeline
    return pipeline_from_dict(nested, base=pipeline, source=pipeline.source)
