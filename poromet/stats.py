"""Sample statistics over fields, and spec verdicts.

A *sample* is measured on several fields (the patents: 10).  Per field i the
porosity is ``X_i = void px / region px``; over the sample (ASTM E1245 /
E562 practice):

* mean ``X̄`` and standard deviation ``s`` (``n - 1`` in the denominator);
* 95 % confidence interval half-width ``CI = t(0.975, n - 1) · s / √n``
  (Student's t: 2.262 for 10 fields);
* % relative accuracy ``%RA = 100 · CI / X̄``;
* pooled porosity ``Σ void / Σ region`` (weights big regions more);
* image relative density ``1 − X̄`` (NOT the patents' relative density,
  which is a filling-rate measurement: see :mod:`poromet.density`);
* the threshold-sensitivity spread: the means of the fields' porosities at
  threshold ∓ band.

Which fields count: status ``'ok'`` and ``'flagged'`` (flagged ones are left
out when ``pipeline.trim.exclude_flagged``); ``'error'`` rows and rows
without a finite porosity never count.

Spec verdicts compare the confidence interval with the pipeline's limits
(fractions): ``'pass'`` when the whole interval is inside, ``'fail'`` when
the whole interval is outside, ``'marginal'`` when it straddles a limit,
``'n/a'`` without limits or without measured fields.  Limits are inclusive
(``porosity_max = 0.4`` accepts 0.4).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

import numpy as np

from .records import FieldResult

__all__ = [
    "SampleResult",
    "sample_stats",
    "spec_verdict",
    "t_critical",
    "fields_for_accuracy",
    "group_samples",
    "merge_density_verdict",
    "VERDICTS",
]

NAN = float("nan")
_RD_NOT_JUDGED = ("; spec.relative_density_min not judged: it applies to the filling rate "
                  "(join a density sheet), not to 1 - image porosity")
VERDICTS = ("pass", "fail", "marginal", "n/a")
#: Largest number of fields ``fields_needed`` reports (beyond: capped).
MAX_FIELDS_NEEDED = 100_000


@dataclass(frozen=True)
class SampleResult:
    """Statistics of one sample over its fields.

    Porosities are fractions (0-1); ``rel_accuracy_pct`` is in percent.

    Attributes
    ----------
    sample : str
        Sample name.
    n_fields : int
        Fields used in the statistics.
    n_excluded : int
        Fields of the sample NOT used: errors, flagged fields when
        ``trim.exclude_flagged``, fields without a finite porosity.
    porosity_mean, porosity_sd : float
        Mean and SD (n - 1) of the field porosities (SD NaN for n < 2).
    ci95_half, ci95_low, ci95_high : float
        Student-t 95 % confidence interval of the mean (NaN for n < 2).
    rel_accuracy_pct : float
        ``100 · ci95_half / porosity_mean``.
    porosity_pooled : float
        ``Σ void px / Σ region px`` over the used fields.
    porosity_min, porosity_max : float
        Smallest and largest field porosity.
    relative_density : float
        Image relative density ``1 − porosity_mean``.
    band_low_mean, band_high_mean : float
        Mean porosity at threshold ∓ band (threshold sensitivity).
    verdict : {'pass', 'fail', 'marginal', 'n/a'}
        Spec verdict (see :func:`spec_verdict`); provisional when
        ``complete`` is False.
    verdict_reason : str
        Why, in words.
    fields_needed : int or None
        Total number of fields that would bring %RA to the pipeline's
        ``sample.target_rel_accuracy_pct`` with the present mean and SD
        (never less than ``n_fields``); None when it cannot be estimated.
    complete : bool
        False while the sample still waits for fields (watch service).
    warnings : tuple of str
        Odd things about the sample (field count, excluded fields, ...).
    density : dict or None
        The density-sheet join (see :func:`poromet.sheet.join_density`).
    fields_expected : int
        ``pipeline.sample.fields``.
    n_errors, n_flagged : int
        Fields of the sample with status 'error' / 'flagged'.
    t_value : float
        The Student-t quantile used.
    target_rel_accuracy_pct : float
        The pipeline's %RA target.
    """

    sample: str
    n_fields: int = 0
    n_excluded: int = 0
    porosity_mean: float = NAN
    porosity_sd: float = NAN
    ci95_half: float = NAN
    ci95_low: float = NAN
    ci95_high: float = NAN
    rel_accuracy_pct: float = NAN
    porosity_pooled: float = NAN
    porosity_min: float = NAN
    porosity_max: float = NAN
    relative_density: float = NAN
    band_low_mean: float = NAN
    band_high_mean: float = NAN
    verdict: str = "n/a"
    verdict_reason: str = ""
    fields_needed: int | None = None
    complete: bool = True
    warnings: tuple[str, ...] = ()
    density: dict | None = None
    fields_expected: int = 10
    n_errors: int = 0
    n_flagged: int = 0
    t_value: float = NAN
    target_rel_accuracy_pct: float = 10.0

    @property
    def fields_more(self) -> int | None:
        """Additional fields needed to reach the %RA target (0 when reached)."""
        if self.fields_needed is None:
            return None
        return max(0, self.fields_needed - self.n_fields)

    def replace(self, **changes: Any) -> "SampleResult":
        """Return a copy with some attributes changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """All attributes (and ``fields_more``) as plain Python values.

        NaN stays NaN here; the JSON writer turns it into ``null``.
        """
        d = dataclasses.asdict(self)
        d["warnings"] = list(self.warnings)
        d["fields_more"] = self.fields_more
        d["density"] = dict(self.density) if self.density is not None else None
        return d


@lru_cache(maxsize=4096)
def t_critical(n: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t quantile for a mean of ``n`` values.

    Parameters
    ----------
    n : int
        Number of fields (degrees of freedom ``n - 1``).
    confidence : float
        Two-sided confidence level.

    Returns
    -------
    float
        ``t((1 + confidence) / 2, n - 1)``; NaN for ``n < 2``.

    Examples
    --------
    >>> round(t_critical(10), 3)
    2.262
    >>> t_critical(1)
    nan
    """
    n = int(n)
    if n < 2:
        return NAN
    if confidence == 0.95:
        from .t975 import t975

        t = t975(n - 1)                 # SciPy's values, without importing SciPy
        if t is not None:
            return t
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.5 + confidence / 2.0, n - 1))


def fields_for_accuracy(mean: float, sd: float, target_pct: float, *,
                        cap: int = MAX_FIELDS_NEEDED) -> int | None:
    """Smallest number of fields whose 95 % CI gives ``%RA <= target_pct``.

    Solves ``100 · t(0.975, n - 1) · sd / (√n · mean) <= target_pct`` for n
    (the SD is assumed to stay as measured).

    Returns
    -------
    int or None
        At least 2; ``cap`` when even ``cap`` fields would not do; None when
        ``mean <= 0`` or ``sd`` is not finite.

    Examples
    --------
    >>> fields_for_accuracy(0.08, 0.015, 10.0)      # FIELD-NOTES example
    16
    """
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean <= 0 or target_pct <= 0:
        return None
    if sd == 0:
        return 2
    ratio = 100.0 * sd / (mean * target_pct)
    n = max(2, math.ceil((1.959963984540054 * ratio) ** 2))  # t > z, so n >= this
    while n < cap and _too_few(n, ratio):
        n += 1 if n < 200 else max(1, n // 100)
    return min(n, cap)


def _too_few(n: int, ratio: float) -> bool:
    """``t_critical(n) * ratio > sqrt(n)``, deciding from a series for
    t(0.975) beyond the table unless the two sides are too close to call."""
    from .t975 import t975, t975_series

    if t975(n - 1) is None:
        lhs, rhs = t975_series(n - 1) * ratio, math.sqrt(n)
        if abs(lhs - rhs) > 1e-9 * rhs:         # the series is within 2e-12
            return lhs > rhs
    return t_critical(n) * ratio > math.sqrt(n)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def spec_verdict(mean: float, *, ci95_low: float | None = None, ci95_high: float | None = None,
                 porosity_min: float | None = None,
                 porosity_max: float | None = None) -> tuple[str, str]:
    """Judge a sample's porosity against spec limits (fractions).

    Parameters
    ----------
    mean : float
        Mean porosity (fraction).
    ci95_low, ci95_high : float or None
        The confidence interval; None/NaN judges the mean alone (one field).
    porosity_min, porosity_max : float or None
        Inclusive limits; None: no limit.

    Returns
    -------
    verdict : {'pass', 'fail', 'marginal', 'n/a'}
        'marginal' when the interval straddles a limit.
    reason : str

    Examples
    --------
    >>> spec_verdict(0.30, ci95_low=0.28, ci95_high=0.32, porosity_max=0.4)
    ('pass', 'porosity 30.00 % (95 % CI 28.00 % to 32.00 %) within porosity_max 40.00 %')
    >>> spec_verdict(0.39, ci95_low=0.37, ci95_high=0.41, porosity_max=0.4)[0]
    'marginal'
    """
    if porosity_min is None and porosity_max is None:
        return "n/a", "no porosity limits in the pipeline's [spec]"
    if mean is None or not math.isfinite(mean):
        return "n/a", "no measured fields"
    single = ci95_low is None or ci95_high is None or not (
        math.isfinite(ci95_low) and math.isfinite(ci95_high))
    lo, hi = (mean, mean) if single else (ci95_low, ci95_high)
    what = (f"porosity {_pct(mean)} (single value, no confidence interval)" if single
            else f"porosity {_pct(mean)} (95 % CI {_pct(lo)} to {_pct(hi)})")
    fails, marginals, passes = [], [], []
    if porosity_max is not None:
        name = f"porosity_max {_pct(porosity_max)}"
        if hi <= porosity_max:
            passes.append(name)
        elif lo > porosity_max:
            fails.append(f"above {name}")
        else:
            marginals.append(f"straddles {name}")
    if porosity_min is not None:
        name = f"porosity_min {_pct(porosity_min)}"
        if lo >= porosity_min:
            passes.append(name)
        elif hi < porosity_min:
            fails.append(f"below {name}")
        else:
            marginals.append(f"straddles {name}")
    if fails:
        return "fail", f"{what} {' and '.join(fails)}"
    if marginals:
        return "marginal", f"{what} {' and '.join(marginals)}"
    return "pass", f"{what} within {' and '.join(passes)}"


def _natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


def group_samples(fields: Iterable[FieldResult]) -> dict[str, list[FieldResult]]:
    """Group field results by ``FieldResult.sample``.

    Samples come in natural name order (``S2`` before ``S10``); fields within
    a sample by field number (None last), ties kept in input order.

    Examples
    --------
    >>> fs = [FieldResult("b", sample="S10", field=1), FieldResult("a", sample="S2", field=2),
    ...       FieldResult("c", sample="S2", field=1)]
    >>> {k: [f.path for f in v] for k, v in group_samples(fs).items()}
    {'S2': ['c', 'a'], 'S10': ['b']}
    """
    groups: dict[str, list[FieldResult]] = {}
    for f in fields:
        groups.setdefault(f.sample, []).append(f)
    out = {}
    for name in sorted(groups, key=_natural_key):
        out[name] = sorted(groups[name],
                           key=lambda f: (f.field is None, f.field if f.field is not None else 0))
    return out


def _finite(x: float) -> bool:
    return x is not None and math.isfinite(x)


def sample_stats(fields: list[FieldResult], pipeline=None, *, complete: bool = True,
                 sample: str | None = None) -> SampleResult:
    """Statistics of one sample over its fields.

    Parameters
    ----------
    fields : list of FieldResult
        The sample's fields (any status; see the module docstring for which
        count).
    pipeline : Pipeline or None
        Supplies ``sample.fields``, ``sample.target_rel_accuracy_pct``,
        ``trim.exclude_flagged`` and the ``spec`` limits (defaults if None).
    complete : bool
        False while more fields are expected (the verdict is provisional).
    sample : str, optional
        Sample name (default: the first field's ``sample``).

    Returns
    -------
    SampleResult

    Examples
    --------
    >>> fs = [FieldResult(f"f{i}", porosity=p, void_pixels=int(p * 100), region_pixels=100)
    ...       for i, p in enumerate([0.10, 0.12, 0.11, 0.09, 0.13, 0.10, 0.12, 0.11, 0.10, 0.12])]
    >>> r = sample_stats(fs)
    >>> round(r.porosity_mean, 4), round(r.ci95_half, 4), r.n_fields
    (0.11, 0.0089, 10)
    """
    from .pipeline import Pipeline

    pipeline = pipeline or Pipeline()
    fields = list(fields)
    name = sample if sample is not None else (fields[0].sample if fields else "")
    expected = int(pipeline.sample.fields)
    target = float(pipeline.sample.target_rel_accuracy_pct)
    spec = pipeline.spec
    warns: list[str] = []

    n_errors = sum(f.status == "error" for f in fields)
    n_flagged = sum(f.status == "flagged" for f in fields)
    used: list[FieldResult] = []
    n_nan = n_excl_flag = 0
    for f in fields:
        if f.status not in ("ok", "flagged"):
            continue
        if f.status == "flagged" and pipeline.trim.exclude_flagged:
            n_excl_flag += 1
            continue
        if not _finite(f.porosity):
            n_nan += 1
            continue
        used.append(f)
    n = len(used)
    if n_errors:
        warns.append(f"{n_errors} field(s) could not be measured (status error) and are not counted")
    if n_excl_flag:
        warns.append(f"{n_excl_flag} flagged field(s) left out (trim.exclude_flagged = true)")
    elif n_flagged:
        warns.append(f"{n_flagged} flagged field(s) counted; check them in the report")
    if n_nan:
        warns.append(f"{n_nan} field(s) without a finite porosity (empty region?) not counted")
    if n != expected:
        more = "fewer" if n < expected else "more"
        warns.append(f"{n} field(s) counted, {more} than the {expected} the pipeline expects "
                     "(sample.fields)")
    if not complete:
        warns.append("sample incomplete: more fields expected; statistics and verdict are provisional")

    base = dict(sample=name, n_fields=n, n_excluded=len(fields) - n, complete=bool(complete),
                fields_expected=expected, n_errors=n_errors, n_flagged=n_flagged,
                target_rel_accuracy_pct=target)
    if n == 0:
        warns.append("no measured fields: no statistics")
        verdict, reason = spec_verdict(NAN, porosity_min=spec.porosity_min,
                                       porosity_max=spec.porosity_max)
        return SampleResult(**base, verdict=verdict, verdict_reason=reason,
                            warnings=tuple(warns))

    p = np.array([f.porosity for f in used], dtype=float)
    mean = float(p.mean())
    sd = float(p.std(ddof=1)) if n > 1 else NAN
    t = t_critical(n)
    half = t * sd / math.sqrt(n) if n > 1 else NAN
    lo, hi = (mean - half, mean + half) if n > 1 else (NAN, NAN)
    ra = 100.0 * half / mean if n > 1 and mean > 0 else NAN
    void = sum(int(f.void_pixels) for f in used)
    reg = sum(int(f.region_pixels) for f in used)
    pooled = void / reg if reg > 0 else NAN
    lows = [f.porosity_low for f in used if _finite(f.porosity_low)]
    highs = [f.porosity_high for f in used if _finite(f.porosity_high)]
    band_lo = float(np.mean(lows)) if len(lows) == n else NAN
    band_hi = float(np.mean(highs)) if len(highs) == n else NAN

    needed = fields_for_accuracy(mean, sd, target) if n > 1 else None
    if needed is not None:
        needed = max(needed, n)
        if needed > n:
            cap = " (or more)" if needed >= MAX_FIELDS_NEEDED else ""
            warns.append(f"%RA {ra:.1f} % above the target {target:g} %: about {needed - n}{cap} "
                         f"more field(s) ({needed} in all) would reach it")
    if n == 1:
        warns.append("only 1 field: no SD or confidence interval; verdict on the single value")

    verdict, reason = spec_verdict(mean, ci95_low=lo, ci95_high=hi,
                                   porosity_min=spec.porosity_min,
                                   porosity_max=spec.porosity_max)
    if spec.relative_density_min is not None:
        reason += _RD_NOT_JUDGED
    if not complete:
        reason = f"provisional ({n} of {expected} fields): {reason}"
    return SampleResult(
        **base,
        porosity_mean=mean, porosity_sd=sd, ci95_half=half, ci95_low=lo, ci95_high=hi,
        rel_accuracy_pct=ra, porosity_pooled=pooled,
        porosity_min=float(p.min()), porosity_max=float(p.max()),
        relative_density=1.0 - mean, band_low_mean=band_lo, band_high_mean=band_hi,
        verdict=verdict, verdict_reason=reason, fields_needed=needed,
        warnings=tuple(warns), t_value=t,
    )


def merge_density_verdict(result: SampleResult) -> SampleResult:
    """Fold a joined density sheet into the sample's verdict and warnings.

    A ``relative_density_verdict`` of 'fail' (filling rate below
    ``spec.relative_density_min``) makes the sample fail; 'pass' turns an
    'n/a' verdict into 'pass'.  A flagged image/density difference becomes
    a warning.  Without ``density`` the result is returned unchanged.
    """
    d = result.density
    if not d:
        return result
    verdict, reason = result.verdict, result.verdict_reason
    warns = list(result.warnings)
    rd = d.get("relative_density_verdict")
    if rd in ("pass", "fail"):
        reason = reason.replace(_RD_NOT_JUDGED, "")
    fr = d.get("filling_rate_pct")
    fr_txt = f"filling rate {fr:.2f} %" if isinstance(fr, (int, float)) else "filling rate"
    if rd == "fail":
        verdict = "fail"
        reason = f"{reason}; {fr_txt} below spec.relative_density_min"
    elif rd == "pass":
        if verdict == "n/a":
            verdict = "pass"
            reason = f"{fr_txt} meets spec.relative_density_min ({reason})"
        else:
            reason = f"{reason}; {fr_txt} meets spec.relative_density_min"
    if d.get("difference_flag"):
        diff = d.get("difference_pp")
        diff_txt = f"{diff:+.2f} pp" if isinstance(diff, (int, float)) else "large"
        warns.append(f"image porosity and filling-rate porosity differ by {diff_txt} "
                     "(above spec.density_tolerance_pp)")
    if d.get("message"):
        warns.append(f"density: {d['message']}")
    return result.replace(verdict=verdict, verdict_reason=reason, warnings=tuple(warns))
