"""Density results: records, writers, and the join with image results.

:class:`DensityReport` (with :class:`StepResult` and :class:`RowError`) is
what :func:`poromet.sheet.compute_sheet` returns; :func:`write_density`
writes it, and :func:`join_density` attaches a sheet's values to image
sample records.  These names are also importable from :mod:`poromet.sheet`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .pipeline import Pipeline, load_pipeline

if TYPE_CHECKING:
    from .materials import Material

__all__ = [
    "StepResult",
    "RowError",
    "DensityReport",
    "join_density",
    "write_density",
    "density_columns",
    "DENSITY_COLUMNS",
    "JOIN_KEYS",
]


# -- results ---------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """A sheet row that could not be used, with the column at fault."""

    row: int
    line: int
    sample: str
    step: str
    layer: str
    column: str
    message: str

    def to_dict(self) -> dict:
        return {"row": self.row, "line": self.line or None, "sample": self.sample,
                "step": self.step, "layer": self.layer, "column": self.column,
                "message": self.message}


@dataclass(frozen=True)
class StepResult:
    """Density values of one sample (and layer) at one process step.

    ``selected`` marks the step joined to the images and judged against
    ``spec.relative_density_min`` (the pipeline's ``density.step``, else
    the last).  Values that could not be computed are None and ``notes``
    says why.
    """

    sample: str
    layer: str
    step: str
    row: int
    line: int
    geometry: str
    apparent_density_g_cm3: float
    true_density_g_cm3: float
    true_density_source: str
    filling_rate_pct: float
    porosity_pct: float
    relative_density: float
    previous_step: str | None = None
    rate_of_decrease_pct: float | None = None
    cumulative_rate_of_decrease_pct: float | None = None
    rate_verdict: str | None = None
    selected: bool = False
    relative_density_verdict: str | None = None
    notes: tuple[str, ...] = ()
    sheet_notes: str = ""

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["notes"] = list(self.notes)
        d["line"] = self.line or None
        return d


#: Columns of ``density.csv`` (stable: scripts rely on them).
DENSITY_COLUMNS = (
    "sample", "layer", "step", "row", "status", "geometry", "apparent_density_g_cm3",
    "true_density_g_cm3", "true_density_source", "filling_rate_pct", "porosity_pct",
    "relative_density", "previous_step", "rate_of_decrease_pct",
    "cumulative_rate_of_decrease_pct", "rate_verdict", "selected",
    "relative_density_verdict", "message",
)


@dataclass(frozen=True)
class DensityReport:
    """Everything computed from one samples sheet."""

    sheet: str
    materials: str
    pipeline_name: str
    pipeline_hash: str
    steps: tuple[StepResult, ...]
    errors: tuple[RowError, ...]
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def table(self) -> list[dict]:
        """Rows of ``density.csv`` in sheet order, bad rows included."""
        rows = [(s.row, {**{k: getattr(s, k, None) for k in DENSITY_COLUMNS}, "status": "ok",
                         "message": "; ".join(s.notes)}) for s in self.steps]
        rows += [(e.row, {**dict.fromkeys(DENSITY_COLUMNS), "sample": e.sample, "layer": e.layer,
                          "step": e.step, "row": e.row, "status": "error", "message": e.message})
                 for e in self.errors]
        return [r for _, r in sorted(rows, key=lambda t: t[0])]

    def to_dict(self) -> dict:
        """One JSON-able document: per sample (and layer), its steps in order."""
        groups: dict[tuple[str, str], dict] = {}
        items = [(s.row, s, None) for s in self.steps] + [(e.row, None, e) for e in self.errors]
        for _, s, e in sorted(items, key=lambda t: t[0]):
            r = s or e
            g = groups.setdefault((r.sample, r.layer), {"sample": r.sample, "layer": r.layer, "steps": []})
            g["steps"].append({**s.to_dict(), "status": "ok"} if s else {
                "step": e.step, "row": e.row, "line": e.line or None, "status": "error",
                "column": e.column, "message": e.message})
        return {
            "sheet": self.sheet,
            "materials": self.materials,
            "pipeline": {"name": self.pipeline_name, "hash": self.pipeline_hash},
            "samples": list(groups.values()),
            "errors": [e.to_dict() for e in self.errors],
            "warnings": list(self.warnings),
        }


def _judge(value: float | None, lo: float | None, hi: float | None) -> str | None:
    if value is None or (lo is None and hi is None):
        return None
    ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    return "pass" if ok else "fail"



# -- output and the join with image results ----------------------------------------------


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def write_density(report: DensityReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``density.csv`` (one row per sheet row, bad rows included, in
    sheet order; columns :data:`DENSITY_COLUMNS`) and ``density.json``
    (:meth:`DensityReport.to_dict`) into ``out_dir``; return both paths."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "density.csv", out / "density.json"
    with csv_path.open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=DENSITY_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in report.table():
            w.writerow({k: ("" if v is None else round(v, 6) if isinstance(v, float) else v)
                        for k, v in row.items()})
    json_path.write_text(json.dumps(_plain(report.to_dict()), indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    return csv_path, json_path


#: Keys of the ``density`` dict :func:`join_density` puts on each sample.
JOIN_KEYS = (
    "step", "layer", "apparent_density_g_cm3", "true_density_g_cm3", "filling_rate_pct",
    "porosity_density_pct", "porosity_image_pct", "difference_pp", "difference_flag",
    "relative_density", "relative_density_verdict", "rate_of_decrease_pct", "rate_verdict",
    "message",
)


def density_columns(density: dict | None) -> dict:
    """The join as flat ``density_*`` columns for ``samples.csv`` (all keys
    present, None when there is no join)."""
    d = density or {}
    return {f"density_{k}": d.get(k) for k in JOIN_KEYS}


def _blank_join(message: str, step: str | None = None, layer: str = "") -> dict:
    d: dict[str, Any] = dict.fromkeys(JOIN_KEYS)
    d.update(step=step, layer=layer, difference_flag=False, message=message)
    return d


def join_density(
    samples: list,
    sheet_path: str | Path,
    pipeline: str | Path | Pipeline | None,
    *,
    materials: str | Path | dict[str, Material] | None = None,
    warnings: list[str] | None = None,
) -> list:
    """Attach the density sheet's values to image sample records.

    Sheet rows match samples by name (exact, else ignoring case and
    surrounding spaces); the step used is the pipeline's ``density.step``,
    else each sample's last step, and the layer ``density.layer`` when set.

    Parameters
    ----------
    samples : list of SampleResult (or dicts)
        Records with ``sample`` (name), ``porosity_mean`` (a fraction) and
        a ``density`` field, returned with ``density`` filled (keys
        :data:`JOIN_KEYS`) via :func:`dataclasses.replace`.  Samples missing
        from the sheet get ``density`` with values None and a ``message``.
    sheet_path : str or Path
        CSV or TOML samples sheet.
    pipeline : str, Path, Pipeline or None
        ``spec.density_tolerance_pp`` flags ``|difference_pp|`` above it;
        ``spec.relative_density_min`` is judged on the filling rate.
    materials : str, Path, dict or None
        Materials file (None: the shipped example).
    warnings : list or None
        When given, messages about sheet samples without images, bad sheet
        rows and ambiguous matches are appended to it.

    Returns
    -------
    list
        The records, in the given order.

    Raises
    ------
    DensityError
        The sheet or materials file cannot be used at all.
    """
    import dataclasses

    from .sheet import compute_sheet

    pipe = load_pipeline(pipeline)
    report = compute_sheet(sheet_path, materials=materials, pipeline=pipe)
    msgs = list(report.warnings) + [e.message for e in report.errors]
    tol = pipe.spec.density_tolerance_pp
    layer_wanted = pipe.density.layer
    groups: dict[str, list] = {}
    for item in (*report.steps, *report.errors):
        if layer_wanted is None or item.layer == layer_wanted:
            groups.setdefault(item.sample, []).append(item)
    folded: dict[str, list[str]] = {}
    for name in groups:
        folded.setdefault(name.strip().casefold(), []).append(name)
    used: set[str] = set()
    out = []
    for rec in samples:
        name = rec["sample"] if isinstance(rec, dict) else rec.sample
        key = name if name in groups else None
        if key is None and len(folded.get(name.strip().casefold(), [])) == 1:
            key = folded[name.strip().casefold()][0]
        d = _join_one(rec, name, groups.get(key) if key else None, report, pipe, tol)
        if key:
            used.add(key)
        out.append({**rec, "density": d} if isinstance(rec, dict) else dataclasses.replace(rec, density=d))
    for name in groups:
        if name not in used:
            msgs.append(f"{report.sheet}: sample {name!r} has no images")
    if warnings is not None:
        warnings.extend(msgs)
    return out


def _join_one(rec: Any, name: str, items: list | None, report: DensityReport,
              pipe: Pipeline, tol: float) -> dict:
    if not items:
        return _blank_join(f"no row for sample {name!r} in {report.sheet}")
    layers = sorted({i.layer for i in items})
    if len(layers) > 1:
        return _blank_join(f"sample {name!r} has layers {', '.join(map(repr, layers))} in "
                           f"{report.sheet}; set density.layer in the pipeline to choose one")
    wanted = pipe.density.step
    if wanted is None:
        chosen = max(items, key=lambda i: i.row)
    else:
        match = [i for i in items if i.step == wanted]
        if not match:
            return _blank_join(f"sample {name!r} has no step {wanted!r} (density.step) in {report.sheet}",
                               step=wanted, layer=layers[0])
        chosen = match[0]
    if isinstance(chosen, RowError):
        return _blank_join(chosen.message, step=chosen.step, layer=chosen.layer)
    s: StepResult = chosen
    pm = rec.get("porosity_mean") if isinstance(rec, dict) else getattr(rec, "porosity_mean", None)
    img = 100.0 * pm if isinstance(pm, (int, float)) and math.isfinite(pm) else None
    diff = img - s.porosity_pct if img is not None else None
    notes = list(s.notes)
    if img is None:
        notes.append("no image porosity to compare")
    return {
        "step": s.step, "layer": s.layer,
        "apparent_density_g_cm3": s.apparent_density_g_cm3,
        "true_density_g_cm3": s.true_density_g_cm3,
        "filling_rate_pct": s.filling_rate_pct,
        "porosity_density_pct": s.porosity_pct,
        "porosity_image_pct": img,
        "difference_pp": diff,
        "difference_flag": bool(diff is not None and abs(diff) > tol),
        "relative_density": s.relative_density,
        "relative_density_verdict": _judge(s.relative_density, pipe.spec.relative_density_min, None),
        "rate_of_decrease_pct": s.rate_of_decrease_pct,
        "rate_verdict": s.rate_verdict,
        "message": "; ".join(notes),
    }
