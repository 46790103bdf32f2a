"""The self-contained HTML report.

One file, nothing fetched: CSS inline, charts as inline SVG, thumbnails
embedded as base64 PNG (read from ``OUT_DIR/thumbs/``), full-size overlays
linked relatively (``overlays/<sample>/<stem>.png``).  Every text from the
data (file names, messages, sample names) is escaped by Jinja2's
autoescaping; link targets are also URL-quoted.  No JavaScript.

For large runs the report stays usable: at most ``max_inline_thumbs``
thumbnails are embedded (the first ones in sample order); the other fields
keep their table row and a link to their overlay.
"""

from __future__ import annotations

import base64
import math
import struct
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from ..records import FieldResult
from ..stats import SampleResult, group_samples
from . import atomic_write_text

__all__ = ["write_report", "render_report", "MAX_INLINE_THUMBS"]

#: Default number of thumbnails embedded in one report.
MAX_INLINE_THUMBS = 400
_TEMPLATE = "report.html.j2"
# run_info keys shown in the provenance list, in this order (others follow).
_RUN_KEYS = ("operator", "started", "finished", "command", "argv", "input_dir", "out_dir",
             "host", "user", "workers", "python", "platform", "packages")


def _run_value(key: str, value) -> str:
    """A run_info value as one line of text ('' when empty)."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return (" " if key == "argv" else "; ").join(str(v) for v in value)
    return str(value)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _pct(x, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f} %" if _finite(x) else "–"


def _pctn(x, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}" if _finite(x) else "–"


def _num(x, digits: int = 2, suffix: str = "", signed: bool = False) -> str:
    if not _finite(x):
        return "–"
    return f"{x:+.{digits}f}{suffix}" if signed else f"{x:.{digits}f}{suffix}"


def _vclass(verdict: str) -> str:
    return {"pass": "v-pass", "fail": "v-fail", "marginal": "v-marginal"}.get(verdict, "v-na")


def _urlpath(rel: str) -> str:
    return quote(str(rel).replace("\\", "/"), safe="/")


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True,
    )
    env.filters.update(pct=_pct, pctn=_pctn, num=_num, vclass=_vclass, urlpath=_urlpath, finite=_finite)
    return env


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of PNG bytes, None when not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _field_view(f: FieldResult, base: Path, inline: bool) -> dict:
    name = Path(f.path).name if f.path else ""
    view = {"f": f, "name": name, "href": _urlpath(f.overlay) if f.overlay else "",
            "thumb": None, "tw": 0, "th": 0}
    if inline and f.thumbnail:
        try:
            data = (base / f.thumbnail).read_bytes()
        except OSError:
            data = b""
        size = _png_size(data)
        if size:
            view["thumb"] = base64.b64encode(data).decode("ascii")
            view["tw"], view["th"] = size
    return view


def render_report(fields: Iterable[FieldResult], samples: Iterable[SampleResult], pipeline,
                  run_info: dict | None = None, *, base_dir: str | Path = ".",
                  max_inline_thumbs: int = MAX_INLINE_THUMBS, thumb_px: int = 240) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    from markupsafe import Markup

    from .charts import field_chart, histogram_chart
    from .tables import _provenance, _summary, default_run_info

    fields = list(fields)
    samples = list(samples)
    base = Path(base_dir)
    run = default_run_info(run_info)
    groups = group_samples(fields)
    budget = max(0, int(max_inline_thumbs))
    items = []
    for i, s in enumerate(samples):
        fs = groups.get(s.sample, [])
        views = []
        for f in fs:
            inline = budget > 0 and bool(f.thumbnail)
            v = _field_view(f, base, inline)
            if v["thumb"]:
                budget -= 1
            views.append(v)
        n_not = sum(1 for v in views if not v["thumb"] and v["f"].thumbnail)
        items.append({
            "s": s, "anchor": f"sample-{i + 1}", "fields": views, "n_not_inlined": n_not,
            "chart_field": Markup(field_chart(s, fs, spec=pipeline.spec,
                                              exclude_flagged=pipeline.trim.exclude_flagged)),
            "chart_hist": Markup(histogram_chart(fs, band=float(pipeline.threshold.band))),
        })
    prov = _provenance(fields)
    region_counts: dict[str, int] = {}
    for f in fields:
        if f.status != "error":
            key = f.region_source or "?"
            region_counts[key] = region_counts.get(key, 0) + 1
    run_errors = [str(e) for e in run.get("errors", []) or []]
    run_warnings = [str(w) for key in ("warnings", "grouping_notes")
                    for w in (run.get(key) or [])]
    shown = {k: _run_value(k, v) for k, v in run.items()
             if k not in ("version", "written", "errors", "warnings", "grouping_notes")}
    run_rows = [(k, shown.pop(k)) for k in _RUN_KEYS if shown.get(k)]
    run_rows += [(k, v) for k, v in sorted(shown.items()) if v]
    ctx = {
        "run": run, "run_rows": run_rows, "run_errors": run_errors,
        "run_warnings": run_warnings,
        "pipeline": pipeline, "pipeline_toml": pipeline.to_toml(),
        "summary": _summary(fields, samples), "samples": items,
        "errors": [f for f in fields if f.status == "error"],
        "flagged": [f for f in fields if f.status == "flagged"],
        "exclude_flagged": pipeline.trim.exclude_flagged,
        "incomplete": [s.sample for s in samples if not s.complete],
        "with_density": any(s.density for s in samples),
        "pixel_sizes": prov["pixel_sizes"], "versions": prov["versions"],
        "region_sources": sorted(region_counts.items(), key=lambda kv: -kv[1]),
        "max_inline_thumbs": max_inline_thumbs, "thumb_px": thumb_px,
    }
    return _env().get_template(_TEMPLATE).render(**ctx)


def write_report(path: str | Path, fields: Iterable[FieldResult],
                 samples: Iterable[SampleResult], pipeline, run_info: dict | None = None, *,
                 max_inline_thumbs: int = MAX_INLINE_THUMBS) -> Path:
    """Write the self-contained HTML report.

    Parameters
    ----------
    path : str or Path
        Usually ``OUT_DIR/report.html``; thumbnails and overlays are
        resolved relative to its folder.  Replaced atomically.
    fields : iterable of FieldResult
        All fields (any status); ``thumbnail``/``overlay`` relative to the
        report's folder.
    samples : iterable of SampleResult
        From :func:`poromet.stats.sample_stats` (with ``density`` if joined).
    pipeline : Pipeline
        The effective pipeline (provenance, spec limits, threshold band).
    run_info : dict, optional
        Version, timestamps, command line, input folder, host; ``errors``
        and ``warnings`` lists are shown at the top.
    max_inline_thumbs : int
        At most this many thumbnails are embedded; the rest are linked.

    Returns
    -------
    Path
    """
    path = Path(path)
    html = render_report(fields, samples, pipeline, run_info, base_dir=path.parent,
                         max_inline_thumbs=max_inline_thumbs)
    return atomic_write_text(path, html)
