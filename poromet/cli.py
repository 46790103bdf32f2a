"""The ``poromet`` command line: parse, build a pipeline, call the library, exit.

Exit codes: 0 everything measured, 1 some fields (or rows) failed, 2 usage
error (bad option, missing folder, invalid pipeline).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from . import __version__
from .errors import PorometError
from .pipeline import load_pipeline, override

__all__ = ["main"]


class UsageFailure(click.ClickException):
    """A user mistake on the command line: message, exit code 2."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message


def _pipeline_from_options(pipeline, *, pixel_size=None, threshold=None, trim=None,
                           info_bar=None, min_pore_area_px=None):
    """Pipeline file (or shipped name) with command-line flags on top."""
    try:
        p = load_pipeline(pipeline)
        settings = {
            "image__pixel_size_um": pixel_size,
            "trim__mode": trim,
            "cleanup__min_pore_area_px": min_pore_area_px,
        }
        if info_bar is not None:
            settings["image__info_bar"] = int(info_bar) if info_bar.isdigit() else info_bar
        if threshold is not None:
            try:
                settings["threshold__value"] = float(threshold)
                settings["threshold__method"] = "manual"
            except ValueError:
                settings["threshold__method"] = threshold
        return override(p, **settings)
    except PorometError as exc:
        raise UsageFailure(f"{exc}") from None


def _parse_roi(text):
    if text is None:
        return None
    from .roi import parse_roi_string

    try:
        return parse_roi_string(text)
    except PorometError as exc:
        raise UsageFailure(str(exc)) from None


_common_options = [
    click.option("--pipeline", "-p", "pipeline", metavar="FILE|NAME", default=None,
                 help="Pipeline TOML file or shipped name (default: exterior-unit)."),
    click.option("--pixel-size", type=float, default=None, metavar="UM",
                 help="Pixel size in µm, overriding the image metadata."),
    click.option("--threshold", default=None, metavar="METHOD|VALUE",
                 help="Threshold method (local = the default, otsu, isodata, ij_default, li, "
                      "triangle, yen, minimum, valley) "
                      "or a manual gray level 0-255."),
    click.option("--trim", type=click.Choice(["sidecar", "auto", "none"]), default=None,
                 help="Region: sidecar/--roi, automatic exterior-unit detection, or whole image."),
    click.option("--info-bar", default=None, metavar="auto|none|PX",
                 help="SEM info bar: detect (auto), none, or a height in pixels."),
]


def common_options(f):
    for opt in reversed(_common_options):
        f = opt(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="poromet")
def main():
    """Porosity of materials from cross-section SEM images.

    Trim the region to measure (sidecar, --roi or automatic), binarize voids
    black and the rest white, count pixels: P = void / (void + other).
    """


# -- measure -------------------------------------------------------------------

def _fmt_pct(x) -> str:
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:6.2f}"


def _json_row(result) -> str:
    d = result.to_dict()
    d.pop("histogram", None)
    for k, v in d.items():
        if isinstance(v, float) and math.isnan(v):
            d[k] = None
    return json.dumps(d, ensure_ascii=False)


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--roi", default=None, metavar="X,Y,W,H",
              help="Rectangle to measure, in pixels of the original image.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per image (JSON Lines).")
@common_options
def measure(images, roi, as_json, pipeline, pixel_size, threshold, trim, info_bar):
    """Measure the porosity of each IMAGE (one field each)."""
    from .batch import FieldTask, process_field

    p = _pipeline_from_options(pipeline, pixel_size=pixel_size, threshold=threshold,
                               trim=trim, info_bar=info_bar)
    roi_value = _parse_roi(roi)
    failed = 0
    for path in images:
        task = FieldTask(str(path.resolve()) if path.exists() else str(path), "", 0)
        r = process_field(task, p, None, roi=roi_value, render=False, sidecar_wins=False)
        r = r.replace(sample="", field=None)
        if r.status == "error":
            failed += 1
            click.echo(f"error: {r.message}", err=True)
        if as_json:
            click.echo(_json_row(r))
        elif r.status != "error":
            px = (f"{r.pixel_size_um:.5g} µm ({r.pixel_size_source})"
                  if r.pixel_size_um else "pixel size unknown")
            click.echo(
                f"{path}: P = {_fmt_pct(r.porosity).strip()} % "
                f"[{_fmt_pct(r.porosity_low).strip()}–{_fmt_pct(r.porosity_high).strip()} %], "
                f"threshold {r.threshold:.1f} ({r.threshold_method}), "
                f"region {r.region_pixels} px ({r.region}), {px}, info bar {r.info_bar_px} px"
                + (f"  [{r.status}: {r.message}]" if r.status == "flagged" else "")
            )
    sys.exit(1 if failed else 0)


# -- batch ---------------------------------------------------------------------

#: The distributions that can provide ``cv2``, in the order we look for them.
_OPENCV_DISTS = ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless",
                 "opencv-contrib-python")


def _package_versions() -> dict:
    """Versions of the packages behind a result, from their metadata.

    Nothing is imported for it: in a ``-jN`` batch the main process never
    loads OpenCV or scikit-image (their imports were 0.1-0.2 s of its
    start-up, while the workers wait for tasks).  OpenCV's is given as
    ``cv2.__version__`` spells it (its wheels add a build number).
    """
    import numpy
    from importlib.metadata import PackageNotFoundError, version

    def meta(*names):
        for name in names:
            try:
                return version(name)
            except PackageNotFoundError:
                pass
        return None

    opencv = meta(*_OPENCV_DISTS)
    if opencv is None:                     # a build from source: ask the module
        import cv2
        opencv = cv2.__version__
    return {"numpy": numpy.__version__, "scikit-image": meta("scikit-image"),
            "opencv": ".".join(opencv.split(".")[:3]), "tifffile": meta("tifffile")}


def run_info(command: str, **extra) -> dict:
    from .kernels import describe

    return {
        "poromet_version": __version__,
        "command": command,
        "argv": sys.argv,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": _package_versions(),
        "segmentation_kernels": describe(),
        **extra,
    }


@main.command()
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for fields.csv, samples.csv, results.json, report.html.")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
              help="Parallel worker processes (default: the machine's cores).")
@click.option("--no-report", is_flag=True, help="Skip report.html and the overlay pictures.")
@click.option("--save-masks", is_flag=True, help="Write each field's binary image to OUT_DIR/masks/.")
@click.option("--roi", default=None, metavar="X,Y,W,H",
              help="Rectangle to measure in every image (a sidecar still wins).")
@click.option("--density", "density_sheet", default=None, type=click.Path(path_type=Path),
              metavar="SHEET", help="Samples sheet (CSV/TOML) to join filling-rate porosity.")
@click.option("--materials", default=None, type=click.Path(path_type=Path),
              help="Materials file (true densities) for the density sheet.")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run fields on an existing Dask cluster (needs poromet[dask]).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@common_options
def batch(input_dir, out_dir, workers, no_report, save_masks, roi, density_sheet, materials,
          scheduler, quiet, pipeline, pixel_size, threshold, trim, info_bar):
    """Measure every image in INPUT_DIR and write the results to OUT_DIR.

    A subfolder of INPUT_DIR is a sample and its images are its fields; in a
    flat folder S01_f03.tif is sample S01, field 3.
    """
    from .batch import discover, run_fields, start_worker_server

    if not scheduler and (workers or os.cpu_count() or 1) > 1:
        start_worker_server()          # the workers' imports overlap with ours
    from .report.tables import write_outputs

    p = _pipeline_from_options(pipeline, pixel_size=pixel_size, threshold=threshold,
                               trim=trim, info_bar=info_bar)
    roi_value = _parse_roi(roi)
    if not input_dir.is_dir():
        raise UsageFailure(f"{input_dir}: no such folder")
    if density_sheet is not None and not density_sheet.is_file():
        raise UsageFailure(f"--density {density_sheet}: no such file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageFailure(f"{out_dir}: cannot create the output folder ({exc})") from None
    tasks, notes = discover(input_dir, exclude=[out_dir])
    for n in notes:
        click.echo(f"warning: {n}", err=True)
    if not tasks:
        raise UsageFailure(f"{input_dir}: no images found "
                           "(.tif, .tiff, .png, .bmp, .jpg, .jpeg)")
    info = run_info("batch", input_dir=str(input_dir.resolve()), out_dir=str(out_dir.resolve()),
                    workers=workers or os.cpu_count(), scheduler=scheduler,
                    grouping_notes=notes)
    t0 = time.perf_counter()
    render = not no_report
    if scheduler:
        from .distributed import run_fields_dask

        results_iter = run_fields_dask(tasks, p, str(out_dir), scheduler=scheduler, roi=roi_value,
                                       render=render, save_masks=save_masks)
    else:
        results_iter = run_fields(tasks, p, str(out_dir), workers=workers, roi=roi_value,
                                  render=render, save_masks=save_masks)
    results = []
    with click.progressbar(length=len(tasks), label="measuring", file=sys.stderr,
                           show_pos=True, show_eta=True,
                           hidden=quiet or not sys.stderr.isatty()) as bar:
        for r in results_iter:
            results.append(r)
            bar.update(1)
    measure_s = time.perf_counter() - t0
    results.sort(key=lambda r: (r.sample, r.field if r.field is not None else 0, r.path))
    density_fn = None
    if density_sheet is not None:
        from .sheet import join_density

        density_notes: list[str] = info.setdefault("warnings", [])

        def density_fn(samples):
            return join_density(samples, density_sheet, p, materials=materials,
                                warnings=density_notes)
    info["measure_seconds"] = round(measure_s, 3)
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t1 = time.perf_counter()
    try:
        paths = write_outputs(out_dir, results, p, report=render, run_info=info,
                              density=density_fn)
    except PorometError as exc:
        raise UsageFailure(f"{exc}") from None
    info["write_seconds"] = round(time.perf_counter() - t1, 3)
    if density_sheet is not None:
        for n in density_notes:
            click.echo(f"warning: density sheet: {n}", err=True)
    n_err = sum(r.status == "error" for r in results)
    n_flag = sum(r.status == "flagged" for r in results)
    samples = sorted({r.sample for r in results})
    click.echo(f"{len(samples)} samples, {len(results)} fields: "
               f"{len(results) - n_err - n_flag} ok, {n_flag} flagged, {n_err} errors "
               f"in {measure_s:.1f} s")
    for r in results:
        if r.status == "error":
            click.echo(f"  error: {r.message}", err=True)
    for name, path in paths.items():
        click.echo(f"  {name}: {path}")
    sys.exit(1 if n_err else 0)


# -- pipelines -----------------------------------------------------------------

@main.group("pipeline")
def pipeline_group():
    """Check, show and list pipelines (measurement settings)."""


@pipeline_group.command("check")
@click.argument("pipeline", metavar="FILE|NAME")
def pipeline_check(pipeline):
    """Validate a pipeline file; an unknown key or bad value is named."""
    try:
        p = load_pipeline(pipeline)
    except PorometError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo(f"ok: {p.name} ({p.source}), hash {p.hash}")


@pipeline_group.command("show")
@click.argument("pipeline", metavar="[FILE|NAME]", required=False)
def pipeline_show(pipeline):
    """Print the effective pipeline, defaults included, as TOML."""
    try:
        p = load_pipeline(pipeline)
    except PorometError as exc:
        raise UsageFailure(f"{exc}") from None
    click.echo(f"# source: {p.source}\n# hash: {p.hash}")
    click.echo(p.to_toml(), nl=False)


@pipeline_group.command("list")
def pipeline_list():
    """List the shipped pipelines."""
    from .pipeline import shipped_pipelines

    for name in shipped_pipelines():
        p = load_pipeline(name)
        click.echo(f"{name:24s} {p.description.splitlines()[0] if p.description else ''}")


def _register_optional_commands() -> None:
    """Commands that live in their own modules."""
    import importlib

    for module, names in (("cli_density", ("density", "filling_rate")),
                          ("watch.cli", ("watch", "watch_status"))):
        try:
            mod = importlib.import_module(f".{module}", __package__)
        except ImportError:
            continue
        for name in names:
            cmd = getattr(mod, name, None)
            if cmd is not None:
                main.add_command(cmd)


_register_optional_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
