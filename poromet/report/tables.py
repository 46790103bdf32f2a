"""Tidy output tables: ``fields.csv``, ``samples.csv`` and ``results.json``.

CSV files are UTF-8 with a byte-order mark (Excel then shows µ and accents
correctly; read them back with ``encoding="utf-8-sig"``), comma-separated,
``\\r\\n`` line ends, one header row with stable column names.  Porosities
are fractions; floats are written with all their digits (``repr``); NaN and
unknown values are empty cells; booleans are ``true``/``false``.  A text
cell that Excel would run as a formula (starting with ``=``, ``+``, ``@`` or
a non-numeric ``-``) gets a leading ``'``.

``results.json`` is strict JSON (NaN written as ``null``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import __version__
from ..errors import PorometError
from ..records import FIELD_COLUMNS, FieldResult
from ..stats import SampleResult, group_samples, merge_density_verdict, sample_stats
from . import atomic_write_text

__all__ = [
    "SAMPLE_COLUMNS",
    "DENSITY_COLUMNS",
    "write_fields_csv",
    "write_samples_csv",
    "write_results_json",
    "write_outputs",
    "compute_samples",
    "jsonable",
]

#: Columns of ``samples.csv`` in order (stable: scripts rely on them).
SAMPLE_COLUMNS = (
    "sample",
    "n_fields",
    "n_excluded",
    "complete",
    "porosity_mean",
    "porosity_sd",
    "ci95_half",
    "ci95_low",
    "ci95_high",
    "rel_accuracy_pct",
    "porosity_pooled",
    "porosity_min",
    "porosity_max",
    "relative_density",
    "band_low_mean",
    "band_high_mean",
    "fields_expected",
    "fields_needed",
    "fields_more",
    "verdict",
    "verdict_reason",
    "warnings",
)
#: Extra ``samples.csv`` columns, present when a density sheet was joined:
#: (column, key in ``SampleResult.density``).
DENSITY_COLUMNS = (
    ("filling_rate_pct", "filling_rate_pct"),
    ("porosity_density_pct", "porosity_density_pct"),
    ("difference_pp", "difference_pp"),
    ("density_flag", "difference_flag"),
    ("relative_density_verdict", "relative_density_verdict"),
)

_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """One CSV cell as text (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) or hasattr(value, "dtype"):
        try:
            v = float(value)
        except (TypeError, ValueError):
            return _text_cell(str(value))
        return repr(v) if math.isfinite(v) else ""
    if isinstance(value, (list, tuple)):
        return _text_cell("; ".join(str(v) for v in value))
    return _text_cell(str(value))


def _text_cell(text: str) -> str:
    if text.startswith(_FORMULA_START) or (text.startswith("-") and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(list(header))
    for row in rows:
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def _write_csv(path: str | Path, header, rows) -> Path:
    # utf-8-sig writes the BOM Excel needs to detect UTF-8.
    return atomic_write_text(path, _csv_text(header, rows), encoding="utf-8-sig")


def write_fields_csv(path: str | Path, fields: Iterable[FieldResult]) -> Path:
    """Write one row per field with the columns ``FIELD_COLUMNS``.

    Parameters
    ----------
    path : str or Path
        Usually ``OUT_DIR/fields.csv``; replaced atomically.
    fields : iterable of FieldResult
        Written in the given order (all statuses, errors included).

    Returns
    -------
    Path
    """
    rows = ([getattr(f, c) for c in FIELD_COLUMNS] for f in fields)
    return _write_csv(path, FIELD_COLUMNS, rows)


def write_samples_csv(path: str | Path, samples: Iterable[SampleResult]) -> Path:
    """Write one row per sample with the columns ``SAMPLE_COLUMNS``.

    When any sample carries a joined density sheet, the ``DENSITY_COLUMNS``
    follow (empty for samples without a sheet row).
    """
    samples = list(samples)
    with_density = any(s.density for s in samples)
    header = list(SAMPLE_COLUMNS)
    if with_density:
        header += [c for c, _ in DENSITY_COLUMNS]
    rows = []
    for s in samples:
        d = s.to_dict()
        row = [d[c] for c in SAMPLE_COLUMNS]
        if with_density:
            dens = s.density or {}
            vals = [dens.get(k) for _, k in DENSITY_COLUMNS]
            if dens.get("difference_pp") is None:      # no sheet row: no flag either
                vals[[k for _, k in DENSITY_COLUMNS].index("difference_flag")] = None
            row += vals
        rows.append(row)
    return _write_csv(path, header, rows)


def jsonable(value: Any) -> Any:
    """Plain JSON value: NaN/inf -> None, tuples -> lists, numpy -> Python, Path -> str."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):          # numpy scalars and arrays
        return jsonable(value.tolist())
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)


def _provenance(fields: list[FieldResult]) -> dict:
    inputs = []
    sizes: dict[tuple, int] = {}
    for f in fields:
        inputs.append({
            "path": f.path, "sample": f.sample, "field": f.field, "sha256": f.sha256,
            "status": f.status, "width": f.width, "height": f.height, "bit_depth": f.bit_depth,
            "pixel_size_um": f.pixel_size_um, "pixel_size_source": f.pixel_size_source,
            "info_bar_px": f.info_bar_px, "info_bar_source": f.info_bar_source,
            "region": f.region, "region_source": f.region_source,
        })
        if f.status != "error":
            key = (f.pixel_size_um, f.pixel_size_source)
            sizes[key] = sizes.get(key, 0) + 1
    return {
        "inputs": inputs,
        "pixel_sizes": [{"pixel_size_um": k[0], "source": k[1], "n_fields": n}
                        for k, n in sorted(sizes.items(), key=lambda kv: -kv[1])],
        "versions": sorted({f.version for f in fields if f.version}),
        "pipeline_hashes": sorted({f.pipeline_hash for f in fields if f.pipeline_hash}),
    }


def default_run_info(run_info: dict | None = None) -> dict:
    """``run_info`` completed with version, host, Python and the time written."""
    info = dict(run_info or {})
    info.setdefault("version", __version__)
    info.setdefault("host", socket.gethostname())
    info.setdefault("python", sys.version.split()[0])
    info["written"] = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    return info


def write_results_json(path: str | Path, fields: Iterable[FieldResult],
                       samples: Iterable[SampleResult], pipeline, run_info: dict | None) -> Path:
    """Write everything as one JSON document.

    Keys: ``format``, ``format_version``, ``run`` (``run_info``: version,
    timestamps, command line, input folder, host, ...), ``pipeline`` (name,
    hash, source, effective ``settings`` and ``toml``), ``provenance``
    (per input: path, sha256, pixel size and its source, info bar, region;
    and a summary of pixel sizes), ``summary`` (counts), ``samples``
    (``SampleResult.to_dict()``), ``fields`` (``FieldResult.to_dict()``,
    histograms included) and ``errors`` (path + message).
    """
    fields = list(fields)
    samples = list(samples)
    doc = {
        "format": "poromet-results",
        "format_version": 1,
        "run": default_run_info(run_info),
        "pipeline": {
            "name": pipeline.name, "hash": pipeline.hash, "source": pipeline.source,
            "settings": pipeline.to_dict(), "toml": pipeline.to_toml(),
        },
        "provenance": _provenance(fields),
        "summary": _summary(fields, samples),
        "samples": [s.to_dict() for s in samples],
        "fields": [_field_dict(f) for f in fields],
        "errors": [{"path": f.path, "sample": f.sample, "field": f.field, "message": f.message}
                   for f in fields if f.status == "error"],
    }
    text = _dump_json(jsonable(doc))
    return atomic_write_text(path, text + "\n")


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(FieldResult))


def _field_dict(f: FieldResult) -> dict:
    """``FieldResult.to_dict()`` without ``dataclasses.asdict``'s deep copies (fast)."""
    d = {name: getattr(f, name) for name in _FIELD_NAMES}
    d["warnings"] = list(f.warnings)
    d["histogram"] = [int(v) for v in f.histogram]
    return d


def _dump_json(value: Any, indent: str = "") -> str:
    """Readable strict JSON: dicts one key per line, lists of records one per line.

    Leaves are written by the C encoder (fast for 10,000 fields).
    """
    def leaf(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))

    inner = indent + " "
    if isinstance(value, dict) and value:
        items = [f"{inner}{leaf(str(k))}: {_dump_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and all(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + leaf(v) for v in value) + "\n" + indent + "]"
    return leaf(value)


def _summary(fields: list[FieldResult], samples: list[SampleResult]) -> dict:
    verdicts: dict[str, int] = {}
    for s in samples:
        verdicts[s.verdict] = verdicts.get(s.verdict, 0) + 1
    return {
        "n_fields": len(fields),
        "n_ok": sum(f.status == "ok" for f in fields),
        "n_flagged": sum(f.status == "flagged" for f in fields),
        "n_errors": sum(f.status == "error" for f in fields),
        "n_samples": len(samples),
        "n_incomplete": sum(not s.complete for s in samples),
        "verdicts": verdicts,
    }


def compute_samples(fields: Iterable[FieldResult], pipeline, *,
                    density: Callable | None = None,
                    complete: Callable[[str], bool] | None = None
                    ) -> tuple[list[FieldResult], list[SampleResult]]:
    """Group fields into samples and compute their statistics.

    Returns the fields in report order (by sample, then field number) and
    the samples; ``density`` (``samples -> samples``) is applied and folded
    into the verdicts (:func:`poromet.stats.merge_density_verdict`).
    """
    groups = group_samples(fields)
    ordered = [f for fs in groups.values() for f in fs]
    samples = [sample_stats(fs, pipeline, sample=name,
                            complete=bool(complete(name)) if complete else True)
               for name, fs in groups.items()]
    if density is not None:
        samples = [merge_density_verdict(s) for s in density(samples)]
    return ordered, samples


def write_outputs(out_dir: str | Path, fields: Iterable[FieldResult], pipeline, *,
                  report: bool = True, run_info: dict | None = None,
                  density: Callable | None = None,
                  complete: Callable[[str], bool] | None = None) -> dict[str, Path]:
    """Compute the samples and write every output file atomically.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created); overlays/thumbs are expected there already
        (:func:`poromet.report.overlay.render_field`).
    fields : iterable of FieldResult
        All fields of the run, any status.
    pipeline : Pipeline
        The effective pipeline.
    report : bool
        Also write ``report.html``.
    run_info : dict, optional
        Version, timestamps, command line, input folder, host, ...
    density : callable, optional
        ``samples -> samples`` filling ``SampleResult.density`` (the density
        sheet join).  If it raises a PorometError, the outputs are written
        without density and the message is kept in ``run_info['errors']``
        (shown in the report), then the error is re-raised.
    complete : callable, optional
        ``sample_name -> bool``; None: every sample complete.

    Returns
    -------
    dict
        ``{'fields': ..., 'samples': ..., 'results': ..., 'report': ...}``
        paths of the files written.
    """
    out = Path(out_dir)
    fields = list(fields)
    run_info = dict(run_info or {})
    density_error = None
    try:
        ordered, samples = compute_samples(fields, pipeline, density=density, complete=complete)
    except PorometError as exc:
        density_error = exc
        run_info["errors"] = list(run_info.get("errors") or []) + [
            f"density sheet not joined: {exc}"]
        ordered, samples = compute_samples(fields, pipeline, complete=complete)
    paths = {
        "fields": write_fields_csv(out / "fields.csv", ordered),
        "samples": write_samples_csv(out / "samples.csv", samples),
        "results": write_results_json(out / "results.json", ordered, samples, pipeline, run_info),
    }
    if report:
        from .html import write_report

        paths["report"] = write_report(out / "report.html", ordered, samples, pipeline, run_info)
    if density_error is not None:
        raise density_error
    return paths
