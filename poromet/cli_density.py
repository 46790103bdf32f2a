"""Click commands for the density side: ``poromet density`` and
``poromet filling-rate``.

Exit codes: 0 all rows computed, 1 the sheet or some rows are bad (every
bad row is reported on stderr, the good ones are still computed, shown and
written), 2 usage error (bad option, unknown pipeline, bad value given to
``filling-rate``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from .errors import DensityError, PorometError

__all__ = ["density", "filling_rate"]


def _fmt(v, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}" if math.isfinite(v) else "-"
    return str(v)


def _load_pipeline(value):
    from .pipeline import load_pipeline

    try:
        return load_pipeline(value)
    except PorometError as exc:
        raise click.BadParameter(str(exc), param_hint="--pipeline") from None


def _print_table(report) -> None:
    head = ("sample", "layer", "step", "rho_a g/cm3", "rho_t g/cm3", "filling %", "porosity %",
            "decrease %", "verdicts")
    rows = []
    for s in report.steps:
        verdicts = ", ".join(v for v in (
            f"rate {s.rate_verdict}" if s.rate_verdict else "",
            f"rel. density {s.relative_density_verdict}" if s.relative_density_verdict else "") if v)
        rows.append((s.sample, s.layer or "-", s.step or "-", _fmt(s.apparent_density_g_cm3, 3),
                     _fmt(s.true_density_g_cm3, 3), _fmt(s.filling_rate_pct), _fmt(s.porosity_pct),
                     _fmt(s.rate_of_decrease_pct, 1), verdicts or "-"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for s in report.steps:
        for n in s.notes:
            click.echo(f"note: {s.sample} {s.step}: {n}")


@click.command("density")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--materials", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Materials file (TOML) with true densities; default: the "
              "shipped example (not reference data).")
@click.option("--pipeline", "pipeline_name", default=None, metavar="FILE|NAME",
              help="Pipeline giving density limits and spec.relative_density_min.")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write density.csv and density.json here.")
@click.option("--json", "as_json", is_flag=True, help="Print every value as one JSON document.")
def density(sheet, materials, pipeline_name, out_dir, as_json):
    """Filling rate, porosity and rates of decrease from a samples SHEET (CSV or TOML)."""
    from .sheet import compute_sheet, write_density, _plain

    pipe = _load_pipeline(pipeline_name)
    try:
        report = compute_sheet(sheet, materials=materials, pipeline=pipe)
    except DensityError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    if out_dir is not None:
        paths = write_density(report, out_dir)
        if not as_json:
            click.echo(f"wrote {paths[0]} and {paths[1]}")
    if as_json:
        click.echo(json.dumps(_plain(report.to_dict()), indent=2, ensure_ascii=False))
    else:
        _print_table(report)
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    for e in report.errors:
        click.echo(f"error: {e.message}", err=True)
    if report.errors:
        click.echo(f"{len(report.errors)} bad row(s) in {sheet}; {len(report.steps)} computed", err=True)
        raise SystemExit(1)


@click.command("filling-rate")
@click.option("--mass-mg", type=float, default=None, help="Mass, mg.")
@click.option("--area-cm2", type=float, default=None, help="Area, cm².")
@click.option("--thickness-um", type=float, default=None, help="Thickness, µm.")
@click.option("--diameter-mm", type=float, default=None, help="Pellet diameter, mm.")
@click.option("--volume-cm3", type=float, default=None, help="Volume, cm³.")
@click.option("--coating-weight-mg-cm2", type=float, default=None, help="Coating weight, mg/cm².")
@click.option("--true-density", "true_density", type=float, default=None,
              help="True density, g/cm³.")
@click.option("--composition", default=None,
              help="Parts by mass, e.g. 'NCM622:80;SE:17;CB:2;SBR:1' (instead of --true-density).")
@click.option("--materials", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Materials file for --composition.")
@click.option("--json", "as_json", is_flag=True, help="Print the values as JSON.")
def filling_rate(mass_mg, area_cm2, thickness_um, diameter_mm, volume_cm3, coating_weight_mg_cm2,
                 true_density, composition, materials, as_json):
    """Filling rate and porosity of one piece from its mass and geometry."""
    from . import density as dn
    from .sheet import GEOMETRIES, _GEOMETRY_FN, parse_composition, read_materials

    given = {"mass_mg": mass_mg, "area_cm2": area_cm2, "thickness_um": thickness_um,
             "diameter_mm": diameter_mm, "volume_cm3": volume_cm3,
             "coating_weight_mg_cm2": coating_weight_mg_cm2, "apparent_density_g_cm3": None}
    complete = [g for g in GEOMETRIES if all(given[c] is not None for c in g)]
    if len(complete) != 1:
        sets = "; ".join(" + ".join("--" + c.replace("_", "-") for c in g) for g in GEOMETRIES[:-1])
        what = "none" if not complete else "more than one"
        raise click.UsageError(f"geometry: {what} of the option sets given; allowed exactly one of: {sets}")
    if (true_density is None) == (composition is None):
        raise click.UsageError("give --true-density or --composition (one of them)")
    try:
        g = complete[0]
        app = _GEOMETRY_FN[g](*(given[c] for c in g))
        if composition is not None:
            mats = read_materials(materials)
            parts = parse_composition(composition)
            unknown = [n for n in parts if n.strip().casefold() not in mats]
            if unknown:
                raise DensityError(f"--composition: unknown material {unknown[0]!r}; known: "
                                   + ", ".join(sorted({m.name for m in mats.values()})))
            true = dn.true_density_from_mass_fractions(
                parts, {n: mats[n.strip().casefold()].true_density_g_cm3 for n in parts})
        else:
            true = dn._number("--true-density", true_density)
        fr = dn.filling_rate_pct(app, true)
    except DensityError as exc:
        msg = str(exc)
        for key in given:
            if msg.startswith(f"{key}:"):
                msg = "--" + key.replace("_", "-") + msg[len(key):]
        raise click.UsageError(msg) from None
    out = {"apparent_density_g_cm3": app, "true_density_g_cm3": true, "filling_rate_pct": fr,
           "porosity_pct": dn.porosity_from_filling_rate_pct(fr),
           "relative_density": dn.relative_density(app, true)}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"apparent density  {app:.4f} g/cm³")
    click.echo(f"true density      {true:.4f} g/cm³")
    click.echo(f"filling rate      {fr:.2f} %")
    click.echo(f"porosity          {out['porosity_pct']:.2f} %")
    if fr > 100:
        click.echo("warning: filling rate above 100 %: check mass, geometry and true density", err=True)
