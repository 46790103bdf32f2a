"""Samples sheets and materials files: read, check, compute filling rates.

Samples sheet
-------------
A CSV file (or TOML, below) with a header row and one row per sample and
process step.  Columns (names are case-insensitive, order free):

``sample`` (required)
    Sample name; it is matched to the image samples by name.
``step``
    Process step (e.g. ``first joining``, ``second joining``,
    ``densifying``).  A sample's steps are taken in the order its rows
    appear in the sheet; each step's rate of decrease in porosity is
    computed from the step before it.  Empty: the sample has one row.
``layer``
    Layer of the sample (e.g. ``cathode``, ``electrolyte``); a sample's
    layers are separate series of steps.
Apparent density, one of these sets of columns (the others left empty):
    ``mass_mg`` + ``area_cm2`` + ``thickness_um``;
    ``coating_weight_mg_cm2`` + ``thickness_um``;
    ``mass_mg`` + ``diameter_mm`` + ``thickness_um`` (a pellet);
    ``mass_mg`` + ``volume_cm3``;
    ``apparent_density_g_cm3`` (measured elsewhere, e.g. Archimedes).
    When a row fills two sets they must agree within 0.5 %.
True density, one of:
    ``true_density_g_cm3``; or ``composition`` as the patents write
    mixtures, in parts by mass (``NCM622:80;SE:17;CB:2;SBR:1``, normalised;
    a lone name is the pure material), with names looked up in the
    materials file.  ``composition_basis`` = ``volume`` reads the parts as
    parts by volume.  When both are given, ``true_density_g_cm3`` is used
    and the composition's value is given as a note.
``notes``
    Free text, carried to the output.

Other columns are ignored and listed in the report's warnings.  Files are
read as UTF-8 (an Excel BOM is accepted).  The delimiter is taken from the
header line: ``,``, ``;`` or tab.  **Decimal commas** (``27,5``) are
accepted only in ``;``- or tab-separated files (as European Excel writes
them); in ``,``-separated files numbers use a decimal point.  Thousands
separators are never accepted.  Blank lines and lines starting with ``#``
are skipped.  Rows are numbered 1, 2, ... from the first data row; messages
also give the line number in the file.

A TOML sheet holds the same keys in ``[[sample]]`` tables; ``composition``
may also be an inline table (``composition = {NCM622 = 80, SE = 20}``), and
an optional ``[materials]`` table (the materials-file form) adds to or
overrides the materials file::

    [[sample]]
    sample = "EX1"
    step = "densifying"
    coating_weight_mg_cm2 = 27.0
    thickness_um = 80.0
    true_density_g_cm3 = 4.70

Limits (from the pipeline)
--------------------------
``density.rate_of_decrease_min`` / ``_max`` (fractions, e.g. 0.77 for the
patent's cathode layer, 0.85 for its electrolyte layer) judge the rate of
decrease into ``density.rate_step`` (default: the joined step, i.e.
``density.step`` or each sample's last step; ``"*"``: every transition),
for the layer ``density.layer`` (default: every layer).
``spec.relative_density_min`` is judged on the joined step's filling rate.

Errors
------
A sheet that cannot be used at all (unreadable, no ``sample`` column, no
column giving a density) raises :class:`~poromet.errors.DensityError`.  Bad
rows do not stop the others: each gives a :class:`RowError` naming the
file, the row (number and sample) and the column, and the report keeps it.

The materials file and composition parsing live in :mod:`poromet.materials`,
the result records, writers and the join with image results in
:mod:`poromet.density_join`; their names are importable from here too.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import density as dn
from .density_join import (  # re-exported: their home is density_join
    DENSITY_COLUMNS,
    JOIN_KEYS,
    DensityReport,
    RowError,
    StepResult,
    _judge,
    _plain,
    density_columns,
    join_density,
    write_density,
)
from .errors import DensityError, PorometError
from .materials import (  # re-exported: their home is materials
    Material,
    _materials_from_table,
    _parse_part,
    default_materials_path,
    parse_composition,
    read_materials,
)
from .pipeline import Pipeline, load_pipeline

__all__ = [
    "Material",
    "SheetRow",
    "StepResult",
    "RowError",
    "DensityReport",
    "read_materials",
    "parse_composition",
    "read_sheet",
    "compute_sheet",
    "default_materials_path",
    "join_density",
    "write_density",
    "density_columns",
    "DENSITY_COLUMNS",
    "JOIN_KEYS",
    "TEXT_COLUMNS",
    "NUMBER_COLUMNS",
]

TEXT_COLUMNS = ("sample", "step", "layer", "composition", "composition_basis", "notes")
NUMBER_COLUMNS = (
    "mass_mg", "area_cm2", "thickness_um", "diameter_mm", "volume_cm3",
    "coating_weight_mg_cm2", "apparent_density_g_cm3", "true_density_g_cm3",
)
#: Column sets giving the apparent density, in order of preference.
GEOMETRIES = (
    ("mass_mg", "area_cm2", "thickness_um"),
    ("coating_weight_mg_cm2", "thickness_um"),
    ("mass_mg", "diameter_mm", "thickness_um"),
    ("mass_mg", "volume_cm3"),
    ("apparent_density_g_cm3",),
)
_GEOMETRY_FN = {
    GEOMETRIES[0]: dn.density_from_area,
    GEOMETRIES[1]: dn.density_from_coating_weight,
    GEOMETRIES[2]: dn.density_from_pellet,
    GEOMETRIES[3]: dn.density_from_volume,
    GEOMETRIES[4]: lambda x: dn._number("apparent_density_g_cm3", x),
}
_AGREE_REL = 0.005


# -- reading sheets ----------------------------------------------------------------


@dataclass(frozen=True)
class SheetRow:
    """One data row: 1-based ``row`` number, ``line`` in the file, raw cells."""

    row: int
    line: int
    cells: dict[str, Any]


@dataclass(frozen=True)
class _Sheet:
    path: str
    rows: tuple[SheetRow, ...]
    columns: tuple[str, ...]
    decimal_comma: bool
    materials: dict[str, Material] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _sniff_delimiter(header: str) -> str:
    outside = re.sub(r'"[^"]*"', "", header)
    counts = {d: outside.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, text: str) -> _Sheet:
    lines = text.splitlines()
    header_idx = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), None)
    if header_idx is None:
        raise DensityError(f"{path}: empty sheet; allowed: a header row with at least 'sample'")
    delim = _sniff_delimiter(lines[header_idx])
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    header: list[str] | None = None
    rows: list[SheetRow] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in cells]
            named = [h for h in header if h]
            dup = {h for h in named if named.count(h) > 1}
            if dup:
                raise DensityError(f"{path}: column {sorted(dup)[0]!r} appears twice in the header")
            continue
        row = len(rows) + 1
        extra = [c for c in cells[len(header):] if c.strip()]
        record: dict[str, Any] = {h: c for h, c in zip(header, cells) if h}
        if extra:
            record["__extra__"] = f"{len(cells)} cells but the header has {len(header)}"
        rows.append(SheetRow(row, line, record))
    cols = tuple(h for h in (header or []) if h)
    return _Sheet(str(path), tuple(rows), cols, decimal_comma=delim != ",")


def _read_toml(path: Path, text: str) -> _Sheet:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DensityError(f"{path}: not valid TOML: {exc}") from None
    extra = set(data) - {"sample", "materials"}
    if extra:
        raise DensityError(f"{path}: {sorted(extra)[0]}: unknown key; allowed: [[sample]] tables, [materials]")
    samples = data.get("sample", [])
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise DensityError(f"{path}: sample: allowed: [[sample]] tables")
    rows, cols = [], []
    for i, s in enumerate(samples, start=1):
        rows.append(SheetRow(i, 0, {str(k).lower(): v for k, v in s.items()}))
        cols.extend(k for k in rows[-1].cells if k not in cols)
    mats = _materials_from_table(data["materials"], str(path)) if "materials" in data else {}
    return _Sheet(str(path), tuple(rows), tuple(cols), decimal_comma=False, materials=mats)


def read_sheet(path: str | Path) -> _Sheet:
    """Read a CSV or TOML samples sheet (no checks beyond the file's form)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DensityError(f"{p}: samples sheet not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DensityError(f"{p}: cannot read samples sheet ({exc}); allowed: UTF-8 CSV or TOML") from None
    sheet = _read_toml(p, text) if p.suffix.lower() == ".toml" else _read_csv(p, text)
    _check_columns(sheet)
    known = set(TEXT_COLUMNS) | set(NUMBER_COLUMNS)
    unused = [c for c in sheet.columns if c not in known]
    if unused:
        sheet = _Sheet(sheet.path, sheet.rows, sheet.columns, sheet.decimal_comma, sheet.materials,
                       (f"{p}: column(s) not used: {', '.join(unused)}",))
    return sheet


def _check_columns(sheet: _Sheet) -> None:
    cols = set(sheet.columns)
    if "sample" not in cols:
        raise DensityError(f"{sheet.path}: missing column 'sample'; columns found: {', '.join(sheet.columns) or '(none)'}")
    if not any(set(g) <= cols for g in GEOMETRIES):
        partial = max(GEOMETRIES, key=lambda g: (len(set(g) & cols), -len(g)))
        missing = [c for c in partial if c not in cols]
        raise DensityError(
            f"{sheet.path}: missing column {missing[0]!r} (apparent density needs one of: "
            + "; ".join(" + ".join(g) for g in GEOMETRIES) + ")"
        )
    if not cols & {"true_density_g_cm3", "composition"}:
        raise DensityError(f"{sheet.path}: missing column 'true_density_g_cm3' (or 'composition')")

# -- computing ---------------------------------------------------------------------


class _CellError(Exception):
    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column


def _cell_text(cells: dict, col: str) -> str:
    v = cells.get(col)
    return "" if v is None else str(v).strip()


def _cell_number(cells: dict, col: str, decimal_comma: bool) -> float | None:
    v = cells.get(col)
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool):
        raise _CellError(col, f"got {v!r}; allowed: a number")
    if isinstance(v, (int, float)):
        x = float(v)
    else:
        try:
            x = _parse_part(str(v), decimal_comma=decimal_comma)
        except ValueError:
            hint = "" if decimal_comma else " (decimal point; decimal commas only in ';'-separated files)"
            raise _CellError(col, f"got {v!r}; allowed: a number{hint}") from None
    if not math.isfinite(x) or x <= 0:
        raise _CellError(col, f"got {v!r}; allowed: a number > 0")
    return x


def _apparent(cells: dict, dc: bool) -> tuple[float, str, list[str]]:
    given = {c: _cell_number(cells, c, dc) for c in NUMBER_COLUMNS if c != "true_density_g_cm3"}
    complete = [g for g in GEOMETRIES if all(given[c] is not None for c in g)]
    if not complete:
        partial = max(GEOMETRIES, key=lambda g: (sum(given[c] is not None for c in g), -len(g)))
        missing = [c for c in partial if given[c] is None]
        raise _CellError(missing[0], "empty; the apparent density needs one of: "
                         + "; ".join(" + ".join(g) for g in GEOMETRIES))
    values = [(g, _GEOMETRY_FN[g](*(given[c] for c in g))) for g in complete]
    g0, rho0 = values[0]
    notes = []
    for g, rho in values[1:]:
        if abs(rho - rho0) > _AGREE_REL * rho0:
            raise _CellError(g[-1], f"{' + '.join(g)} give {rho:.4g} g/cm³ but {' + '.join(g0)} give "
                             f"{rho0:.4g} g/cm³; allowed: agreeing values (0.5 %) or one set left empty")
        notes.append(f"{' + '.join(g)} agree ({rho:.4g} g/cm³)")
    return rho0, "+".join(g0), notes


def _true(cells: dict, dc: bool, materials: dict[str, Material]) -> tuple[float, str, list[str]]:
    rho = _cell_number(cells, "true_density_g_cm3", dc)
    comp_text = cells.get("composition")
    has_comp = isinstance(comp_text, dict) or bool(_cell_text(cells, "composition"))
    if rho is None and not has_comp:
        raise _CellError("true_density_g_cm3", "empty; give true_density_g_cm3 or composition")
    comp_rho = comp_src = None
    if has_comp:
        basis = _cell_text(cells, "composition_basis").lower() or "mass"
        if basis not in ("mass", "volume"):
            raise _CellError("composition_basis", f"got {basis!r}; allowed: 'mass', 'volume'")
        try:
            parts = ({str(k): v for k, v in comp_text.items()} if isinstance(comp_text, dict)
                     else parse_composition(str(comp_text), decimal_comma=dc))
        except DensityError as exc:
            raise _CellError("composition", str(exc).removeprefix("composition: ")) from None
        dens = {}
        for name in parts:
            mat = materials.get(name.strip().casefold())
            if mat is None:
                known = sorted({m.name for m in materials.values()})
                raise _CellError("composition", f"unknown material {name!r}; known: {', '.join(known) or '(none)'}"
                                 " (add it to the materials file, --materials)")
            dens[name] = mat.true_density_g_cm3
        fn = dn.true_density_from_mass_fractions if basis == "mass" else dn.true_density_from_volume_fractions
        try:
            comp_rho = fn(parts, dens)
        except DensityError as exc:
            raise _CellError("composition", str(exc)) from None
        w = dn.normalise_parts(parts)
        comp_src = f"composition by {basis}: " + ", ".join(
            f"{materials[k.strip().casefold()].name} {100 * w[k]:.4g} % ({dens[k]:g} g/cm³)" for k in parts)
    if rho is not None:
        notes = [f"composition gives {comp_rho:.4g} g/cm³ (not used)"] if comp_rho is not None else []
        return rho, "sheet", notes
    return comp_rho, comp_src, []


def compute_sheet(
    path: str | Path,
    *,
    materials: str | Path | dict[str, Material] | None = None,
    pipeline: str | Path | Pipeline | None = None,
) -> DensityReport:
    """Compute every sample's and step's density values from a samples sheet.

    Parameters
    ----------
    path : str or Path
        CSV or TOML samples sheet (see the module docstring).
    materials : str, Path, dict or None
        Materials file (or the dict :func:`read_materials` returns); None:
        the shipped example file, noted in the report's warnings when a
        composition used it.
    pipeline : str, Path, Pipeline or None
        Pipeline giving ``density.*`` limits and ``spec.relative_density_min``.

    Returns
    -------
    DensityReport
        Good rows as :class:`StepResult`, bad rows as :class:`RowError`.

    Raises
    ------
    DensityError
        The sheet or materials file cannot be used at all.
    """
    pipe = load_pipeline(pipeline)
    ds, spec = pipe.density, pipe.spec
    if ds.rate_of_decrease_min is not None and ds.rate_of_decrease_max is not None \
            and ds.rate_of_decrease_min > ds.rate_of_decrease_max:
        raise DensityError(f"{pipe.source or pipe.name}: density.rate_of_decrease_min "
                           f"{ds.rate_of_decrease_min} > density.rate_of_decrease_max {ds.rate_of_decrease_max}")
    if isinstance(materials, dict):
        mats, mats_name = dict(materials), "(given)"
    else:
        mats = read_materials(materials)
        mats_name = str(materials) if materials is not None else str(default_materials_path())
    sheet = read_sheet(path)
    mats.update(sheet.materials)
    warnings = list(sheet.warnings)
    if not sheet.rows:
        warnings.append(f"{sheet.path}: no data rows")
    dc = sheet.decimal_comma

    # pass 1: each row on its own
    parsed: dict[int, dict] = {}
    errors: list[RowError] = []
    seen: dict[tuple[str, str, str], int] = {}
    order: dict[tuple[str, str], list[int]] = {}
    used_example = False
    for r in sheet.rows:
        c = r.cells
        sample, step, layer = _cell_text(c, "sample"), _cell_text(c, "step"), _cell_text(c, "layer")
        where = f"{sheet.path}, row {r.row} (" + (f"line {r.line}, " if r.line else "") + f"sample {sample!r})"
        bad: list[_CellError] = []
        try:
            if "__extra__" in c:
                raise _CellError("(row)", c["__extra__"])
            if not sample:
                raise _CellError("sample", "empty; allowed: a sample name")
            key = (sample, layer, step)
            if key in seen:
                raise _CellError("step", f"sample {sample!r}" + (f" layer {layer!r}" if layer else "")
                                 + f" step {step!r} already on row {seen[key]}; allowed: one row per step"
                                 + ("" if step else " (add a 'step' column)"))
            seen[key] = r.row
            order.setdefault((sample, layer), []).append(r.row)
        except _CellError as exc:
            bad.append(exc)
        try:
            app, geometry, notes = _apparent(c, dc)
        except _CellError as exc:
            bad.append(exc)
        try:
            true, source, tnotes = _true(c, dc, mats)
        except _CellError as exc:
            bad.append(exc)
        if bad:
            errors.append(RowError(r.row, r.line, sample, step, layer, ", ".join(e.column for e in bad),
                                   f"{where}, " + "; ".join(f"column {e.column}: {e}" for e in bad)))
            continue
        used_example |= materials is None and source.startswith("composition")
        fr = dn.filling_rate_pct(app, true)
        notes = notes + tnotes
        if fr > 100:
            notes.append(f"filling rate {fr:.2f} % is above 100 %: check mass, geometry and true density")
        parsed[r.row] = dict(sample=sample, layer=layer, step=step, row=r.row, line=r.line,
                             geometry=geometry, apparent_density_g_cm3=app, true_density_g_cm3=true,
                             true_density_source=source, filling_rate_pct=fr,
                             porosity_pct=dn.porosity_from_filling_rate_pct(fr),
                             relative_density=dn.relative_density(app, true),
                             notes=notes, sheet_notes=_cell_text(c, "notes"))
    if used_example:
        warnings.append(f"true densities from the example materials file {default_materials_path()}; "
                        "use --materials with measured (pycnometer) values")

    # pass 2: steps in sheet order per sample and layer
    steps: list[StepResult] = []
    by_row = {r.row: r for r in sheet.rows}
    for (sample, layer), rows in order.items():
        wanted = ds.step if ds.step is not None else _cell_text(by_row[rows[-1]].cells, "step")
        if ds.step is not None and all(_cell_text(by_row[i].cells, "step") != ds.step for i in rows):
            warnings.append(f"sample {sample!r}{f' layer {layer!r}' if layer else ''}: no step "
                            f"{ds.step!r} (density.step); steps: "
                            + ", ".join(repr(_cell_text(by_row[i].cells, 'step')) for i in rows))
        judged_layer = ds.layer is None or ds.layer == layer
        for k, i in enumerate(rows):
            if i not in parsed:
                continue
            p = parsed[i]
            notes = list(p.pop("notes"))
            prev = rate = cum = None
            if k > 0:
                prev = _cell_text(by_row[rows[k - 1]].cells, "step")
                rate = _rate(parsed.get(rows[k - 1]), p, prev, by_row[rows[k - 1]].row, notes)
                cum = _rate(parsed.get(rows[0]), p, None, rows[0], None)
            judged_step = wanted if ds.rate_step is None else ds.rate_step
            judged = judged_layer and k > 0 and judged_step in ("*", p["step"])
            verdict = _judge(None if rate is None else rate / 100, ds.rate_of_decrease_min,
                             ds.rate_of_decrease_max) if judged else None
            selected = p["step"] == wanted
            rd_verdict = _judge(p["relative_density"], spec.relative_density_min, None) if selected else None
            steps.append(StepResult(**p, previous_step=prev, rate_of_decrease_pct=rate,
                                    cumulative_rate_of_decrease_pct=cum, rate_verdict=verdict,
                                    selected=selected, relative_density_verdict=rd_verdict,
                                    notes=tuple(notes)))
    steps.sort(key=lambda s: s.row)
    return DensityReport(sheet.path, mats_name, pipe.name, pipe.hash, tuple(steps), tuple(errors),
                         tuple(warnings))


def _rate(before: dict | None, after: dict, prev_step: str | None, prev_row: int,
          notes: list[str] | None) -> float | None:
    def note(msg: str) -> None:
        if notes is not None:
            notes.append(msg)
    if before is None:
        note(f"no rate of decrease: previous step {prev_step!r} (row {prev_row}) has an error")
        return None
    pb, pa = before["porosity_pct"], after["porosity_pct"]
    if pb <= 0:
        note(f"no rate of decrease: porosity before ({pb:.3g} %) is not > 0")
        return None
    if pa < 0:
        note(f"no rate of decrease: porosity after ({pa:.3g} %) is negative")
        return None
    return dn.rate_of_decrease_pct(pb, pa)
