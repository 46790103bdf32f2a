"""Small inline SVG charts for the HTML report (no JavaScript, no matplotlib).

Every text that comes from data (file names, sample names) is escaped.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from ..records import FieldResult
from ..stats import SampleResult

__all__ = ["field_chart", "histogram_chart", "nice_ticks"]

_W, _H = 520, 230
_L, _R, _T, _B = 52, 14, 24, 36        # margins


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``.

    Examples
    --------
    >>> nice_ticks(0, 10)
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], start
    while v <= hi + 1e-9 * step:
        ticks.append(float(round(v, 10)))
        v += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def _svg_open(title: str, w: int = _W, h: int = _H) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
            f'height="{h}" role="img" aria-label="{escape(title)}" class="chart">',
            f'<title>{escape(title)}</title>',
            f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/>']


def field_chart(sample: SampleResult, fields: list[FieldResult], *, spec=None,
                exclude_flagged: bool = False) -> str:
    """Porosity per field with the mean, the 95 % CI and the spec limits.

    Counted fields are blue dots, flagged ones orange, fields left out
    hollow gray; a vertical bar shows each field's threshold band
    (porosity at threshold ∓ band).
    """
    pts = [(i, f) for i, f in enumerate(fields) if math.isfinite(f.porosity)]
    title = f"Porosity per field, sample {sample.sample}"
    out = _svg_open(title)
    if not pts:
        out.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no measured fields</text>')
        return "\n".join(out + ["</svg>"])
    vals = [f.porosity for _, f in pts]
    vals += [v for _, f in pts for v in (f.porosity_low, f.porosity_high) if math.isfinite(v)]
    vals += [v for v in (sample.ci95_low, sample.ci95_high) if math.isfinite(v)]
    limits = []
    if spec is not None:
        limits = [(n, v) for n, v in (("max", spec.porosity_max), ("min", spec.porosity_min))
                  if v is not None]
        vals += [v for _, v in limits]
    lo, hi = 100 * min(vals), 100 * max(vals)
    pad = max(0.5, 0.08 * (hi - lo))
    lo, hi = max(0.0, lo - pad), min(100.0, hi + pad)
    if hi <= lo:
        hi = lo + 1
    n = len(fields)
    pw, ph = _W - _L - _R, _H - _T - _B

    def x(i: int) -> float:
        return _L + pw * (i + 0.5) / n

    def y(p: float) -> float:
        return _T + ph * (1 - (100 * p - lo) / (hi - lo))

    for t in nice_ticks(lo, hi):
        yy = _T + ph * (1 - (t - lo) / (hi - lo))
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{_fmt(yy)}" y2="{_fmt(yy)}" '
                   'stroke="#e3e3e3"/>')
        out.append(f'<text x="{_L - 5}" y="{_fmt(yy + 4)}" text-anchor="end" '
                   f'class="tick">{t:g}</text>')
    out.append(f'<text x="14" y="{_T + ph / 2}" transform="rotate(-90 14 {_T + ph / 2})" '
               'text-anchor="middle" class="axis">porosity (%)</text>')
    if math.isfinite(sample.ci95_low) and math.isfinite(sample.ci95_high):
        y1, y2 = y(sample.ci95_high), y(sample.ci95_low)
        out.append(f'<rect x="{_L}" y="{_fmt(y1)}" width="{pw}" height="{_fmt(max(y2 - y1, 0.5))}" '
                   'fill="#2b6cb0" fill-opacity="0.15"><title>95 % confidence interval '
                   f'{100 * sample.ci95_low:.2f} to {100 * sample.ci95_high:.2f} %</title></rect>')
    if math.isfinite(sample.porosity_mean):
        ym = y(sample.porosity_mean)
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{_fmt(ym)}" y2="{_fmt(ym)}" '
                   f'stroke="#2b6cb0" stroke-width="1.5"><title>mean '
                   f'{100 * sample.porosity_mean:.2f} %</title></line>')
    for name, v in limits:
        yl = y(v)
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{_fmt(yl)}" y2="{_fmt(yl)}" '
                   'stroke="#c53030" stroke-width="1.5" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{_W - _R - 2}" y="{_fmt(yl - 4)}" text-anchor="end" '
                   f'class="limit">spec {name} {100 * v:g} %</text>')
    for i, f in pts:
        xi = x(i)
        if math.isfinite(f.porosity_low) and math.isfinite(f.porosity_high):
            a, b = sorted((f.porosity_low, f.porosity_high))
            out.append(f'<line x1="{_fmt(xi)}" x2="{_fmt(xi)}" y1="{_fmt(y(a))}" '
                       f'y2="{_fmt(y(b))}" stroke="#718096" stroke-width="2"/>')
        counted = f.status == "ok" or (f.status == "flagged" and not exclude_flagged)
        colour = "#2b6cb0" if f.status == "ok" else "#dd6b20"
        fill = colour if counted else "#fff"
        label = f"field {f.field}: {100 * f.porosity:.2f} % ({f.status}) {f.path}"
        out.append(f'<circle cx="{_fmt(xi)}" cy="{_fmt(y(f.porosity))}" r="4" fill="{fill}" '
                   f'stroke="{colour}" stroke-width="1.5"><title>{escape(label)}</title></circle>')
    step = max(1, math.ceil(n / 20))
    for i, f in enumerate(fields):
        if i % step == 0:
            lab = f.field if f.field is not None else i + 1
            out.append(f'<text x="{_fmt(x(i))}" y="{_T + ph + 14}" text-anchor="middle" '
                       f'class="tick">{escape(str(lab))}</text>')
    out.append(f'<text x="{_L + pw / 2}" y="{_H - 4}" text-anchor="middle" class="axis">'
               'field</text>')
    out.append(f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    out.append(f'<text x="{_L}" y="15" class="legend">● field  — mean  ▮ 95 % CI  '
               '| threshold band  - - spec limit</text>')
    out.append("</svg>")
    return "\n".join(out)


def histogram_chart(fields: list[FieldResult], *, band: float = 0.0) -> str:
    """Summed gray histogram of the fields with their thresholds and the band.

    The y axis is the square root of the pixel count (so the pore mode
    stays visible next to the solid mode); the x axis is the 8-bit gray
    scale of the preprocessed image.
    """
    hists = [np.asarray(f.histogram, float) for f in fields
             if f.status != "error" and len(f.histogram) > 1]
    title = "Gray histogram with threshold and band"
    out = _svg_open(title)
    pw, ph = _W - _L - _R, _H - _T - _B
    if not hists or len({len(h) for h in hists}) != 1:
        out.append(f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle">no histogram</text>')
        return "\n".join(out + ["</svg>"])
    h = np.sum(hists, axis=0)
    nb = len(h)
    scale = 256.0 / nb
    s = np.sqrt(h)
    top = float(s.max()) or 1.0

    def x(g: float) -> float:
        return _L + pw * g / 256.0

    thr = [f.threshold for f in fields if f.status != "error" and math.isfinite(f.threshold)]
    if thr:
        t_mean = float(np.mean(thr))
        if band > 0:
            a, b = max(0.0, t_mean - band), min(256.0, t_mean + band)
            out.append(f'<rect x="{_fmt(x(a))}" y="{_T}" width="{_fmt(x(b) - x(a))}" '
                       f'height="{ph}" fill="#dd6b20" fill-opacity="0.18"><title>band ±{band:g} '
                       'gray levels</title></rect>')
    pts = [f"{_fmt(x(0))},{_T + ph}"]
    for i, v in enumerate(s):
        yy = _T + ph * (1 - v / top)
        pts.append(f"{_fmt(x(i * scale))},{_fmt(yy)} {_fmt(x((i + 1) * scale))},{_fmt(yy)}")
    pts.append(f"{_fmt(x(256))},{_T + ph}")
    out.append(f'<polygon points="{" ".join(pts)}" fill="#4a5568" fill-opacity="0.75"/>')
    if thr:
        for t in sorted(set(round(v, 1) for v in thr)):
            out.append(f'<line x1="{_fmt(x(t))}" x2="{_fmt(x(t))}" y1="{_T}" y2="{_T + 8}" '
                       'stroke="#c53030" stroke-width="1"/>')
        out.append(f'<line x1="{_fmt(x(t_mean))}" x2="{_fmt(x(t_mean))}" y1="{_T}" '
                   f'y2="{_T + ph}" stroke="#c53030" stroke-width="2"><title>mean threshold '
                   f'{t_mean:.1f}</title></line>')
        out.append(f'<text x="{_fmt(x(t_mean) + 4)}" y="{_T + 20}" class="limit">threshold '
                   f'{t_mean:.1f}' + (f" (range {min(thr):.1f}–{max(thr):.1f})"
                                      if max(thr) - min(thr) >= 0.05 else "") + '</text>')
    for g in (0, 64, 128, 192, 255):
        out.append(f'<text x="{_fmt(x(g))}" y="{_T + ph + 14}" text-anchor="middle" '
                   f'class="tick">{g}</text>')
    out.append(f'<text x="{_L + pw / 2}" y="{_H - 4}" text-anchor="middle" class="axis">'
               'gray level (8-bit scale, preprocessed)</text>')
    out.append(f'<text x="14" y="{_T + ph / 2}" transform="rotate(-90 14 {_T + ph / 2})" '
               'text-anchor="middle" class="axis">√ pixel count</text>')
    out.append(f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    out.append(f'<text x="{_L}" y="15" class="legend">{len(hists)} field(s); red: threshold '
               '(ticks: per field); orange: band</text>')
    out.append("</svg>")
    return "\n".join(out)
