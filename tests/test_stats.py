"""Tests of poromet.stats: sample statistics, spec verdicts, grouping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poromet.pipeline import pipeline_from_dict
from poromet.records import FieldResult
from poromet.stats import (
    SampleResult,
    fields_for_accuracy,
    group_samples,
    merge_density_verdict,
    sample_stats,
    spec_verdict,
    t_critical,
)


def make_fields(porosities, *, sample="S01", region=10_000, status="ok", start=1):
    out = []
    for i, p in enumerate(porosities):
        void = int(round(p * region))
        out.append(FieldResult(
            path=f"/d/{sample}_f{i + start:02d}.tif", sample=sample, field=i + start,
            porosity=void / region, porosity_low=void / region * 0.9,
            porosity_high=void / region * 1.1, void_pixels=void, region_pixels=region,
            status=status))
    return out


@pytest.mark.parametrize("n, expected", [(5, 2.776), (10, 2.262), (15, 2.145), (20, 2.093),
                                         (30, 2.045)])
def test_t_critical_matches_tables(n, expected):
    assert t_critical(n) == pytest.approx(expected, abs=5e-4)


def test_t_critical_small_and_large():
    assert math.isnan(t_critical(1)) and math.isnan(t_critical(0))
    assert t_critical(100_000) == pytest.approx(1.96, abs=1e-3)


def test_sample_stats_matches_hand_computation():
    rng = np.random.default_rng(11)
    p = rng.normal(0.25, 0.02, 10)
    fs = make_fields(p)
    r = sample_stats(fs)
    x = np.array([f.porosity for f in fs])
    mean, sd = x.mean(), x.std(ddof=1)
    half = 2.2621571627 * sd / math.sqrt(10)
    assert r.n_fields == 10 and r.n_excluded == 0
    assert r.porosity_mean == pytest.approx(mean)
    assert r.porosity_sd == pytest.approx(sd)
    assert r.ci95_half == pytest.approx(half, rel=1e-6)
    assert (r.ci95_low, r.ci95_high) == pytest.approx((mean - half, mean + half))
    assert r.rel_accuracy_pct == pytest.approx(100 * half / mean)
    assert r.relative_density == pytest.approx(1 - mean)
    assert (r.porosity_min, r.porosity_max) == (x.min(), x.max())
    assert r.band_low_mean == pytest.approx(0.9 * mean)
    assert r.band_high_mean == pytest.approx(1.1 * mean)
    assert r.verdict == "n/a" and r.complete
    assert not any("fields the pipeline expects" in w for w in r.warnings)


def test_pooled_weights_regions():
    a = make_fields([0.10], region=1_000)
    b = make_fields([0.30], region=9_000, start=2)
    r = sample_stats(a + b)
    assert r.porosity_mean == pytest.approx(0.20)
    assert r.porosity_pooled == pytest.approx((100 + 2700) / 10_000)


def test_errors_never_count_and_flagged_follow_pipeline():
    ok = make_fields([0.1, 0.2, 0.3])
    flagged = make_fields([0.9], status="flagged", start=4)
    err = [FieldResult("/d/bad.tif", sample="S01", field=5, status="error", message="bad")]
    r = sample_stats(ok + flagged + err)
    assert r.n_fields == 4 and r.n_excluded == 1 and r.n_errors == 1 and r.n_flagged == 1
    assert r.porosity_mean == pytest.approx(np.mean([0.1, 0.2, 0.3, 0.9]))
    excl = pipeline_from_dict({"trim": {"exclude_flagged": True}})
    r2 = sample_stats(ok + flagged + err, excl)
    assert r2.n_fields == 3 and r2.n_excluded == 2
    assert r2.porosity_mean == pytest.approx(0.2)
    assert any("flagged" in w and "left out" in w for w in r2.warnings)


def test_nan_porosity_is_not_counted():
    fs = make_fields([0.1, 0.2]) + [FieldResult("/d/x.tif", sample="S01", field=3)]
    r = sample_stats(fs)
    assert r.n_fields == 2 and r.n_excluded == 1
    assert any("finite" in w for w in r.warnings)


def test_single_field_has_no_interval_but_a_verdict():
    pipe = pipeline_from_dict({"spec": {"porosity_max": 0.4}, "sample": {"fields": 1}})
    r = sample_stats(make_fields([0.45]), pipe)
    assert r.n_fields == 1
    assert math.isnan(r.porosity_sd) and math.isnan(r.ci95_half) and math.isnan(r.ci95_low)
    assert r.fields_needed is None
    assert r.verdict == "fail" and "single value" in r.verdict_reason
    assert any("only 1 field" in w for w in r.warnings)


def test_no_measured_fields():
    err = [FieldResult("/d/a.tif", sample="S9", field=1, status="error", message="x")]
    r = sample_stats(err, pipeline_from_dict({"spec": {"porosity_max": 0.4}}))
    assert r.sample == "S9" and r.n_fields == 0 and r.n_excluded == 1
    assert math.isnan(r.porosity_mean) and r.verdict == "n/a"


@pytest.mark.parametrize("n, word", [(7, "fewer"), (12, "more")])
def test_field_count_warning(n, word):
    rng = np.random.default_rng(n)
    r = sample_stats(make_fields(rng.uniform(0.1, 0.2, n)))
    assert any(f"{word} than the 10 the pipeline expects" in w for w in r.warnings)


def test_incomplete_sample_is_provisional():
    pipe = pipeline_from_dict({"spec": {"porosity_max": 0.5}})
    r = sample_stats(make_fields([0.1, 0.12, 0.11]), pipe, complete=False)
    assert not r.complete and r.verdict == "pass"
    assert r.verdict_reason.startswith("provisional (3 of 10 fields)")


def test_fields_for_accuracy_field_notes_example():
    # FIELD-NOTES: X = 8.0 %, s = 1.5 % -> about 16 fields reach %RA <= 10 %.
    assert fields_for_accuracy(0.08, 0.015, 10.0) == 16


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fields_needed_is_the_smallest_sufficient_n(seed):
    rng = np.random.default_rng(seed)
    mean, sd, target = rng.uniform(0.05, 0.3), rng.uniform(0.005, 0.05), rng.uniform(3, 15)
    n = fields_for_accuracy(mean, sd, target)

    def ra(k):
        return 100 * t_critical(k) * sd / math.sqrt(k) / mean

    assert ra(n) <= target
    if n > 2:
        assert ra(n - 1) > target


def test_fields_needed_in_sample_result():
    rng = np.random.default_rng(5)
    r = sample_stats(make_fields(rng.normal(0.08, 0.02, 10)))
    assert r.fields_needed >= r.n_fields
    if r.rel_accuracy_pct > 10:
        assert r.fields_more == r.fields_needed - 10 > 0
        assert any("more field(s)" in w for w in r.warnings)
    tight = sample_stats(make_fields(np.full(10, 0.2) + rng.normal(0, 1e-4, 10)))
    assert tight.fields_needed == 10 and tight.fields_more == 0


def test_fields_for_accuracy_undefined():
    assert fields_for_accuracy(0.0, 0.01, 10) is None
    assert fields_for_accuracy(0.1, float("nan"), 10) is None
    assert fields_for_accuracy(0.1, 0.0, 10) == 2


@pytest.mark.parametrize("lo, hi, kw, verdict", [
    (0.30, 0.35, {"porosity_max": 0.4}, "pass"),
    (0.30, 0.40, {"porosity_max": 0.4}, "pass"),          # inclusive limit
    (0.38, 0.42, {"porosity_max": 0.4}, "marginal"),
    (0.41, 0.45, {"porosity_max": 0.4}, "fail"),
    (0.45, 0.50, {"porosity_min": 0.40, "porosity_max": 0.70}, "pass"),
    (0.38, 0.43, {"porosity_min": 0.40, "porosity_max": 0.70}, "marginal"),
    (0.30, 0.35, {"porosity_min": 0.40, "porosity_max": 0.70}, "fail"),
    (0.72, 0.80, {"porosity_min": 0.40, "porosity_max": 0.70}, "fail"),
    (0.30, 0.35, {}, "n/a"),
])
def test_spec_verdict(lo, hi, kw, verdict):
    v, reason = spec_verdict((lo + hi) / 2, ci95_low=lo, ci95_high=hi, **kw)
    assert v == verdict
    assert reason


def test_spec_verdict_reason_names_the_limit():
    v, reason = spec_verdict(0.39, ci95_low=0.37, ci95_high=0.41, porosity_max=0.4)
    assert v == "marginal" and "straddles porosity_max 40.00 %" in reason
    v, reason = spec_verdict(0.2, ci95_low=0.1, ci95_high=0.3, porosity_min=0.35)
    assert v == "fail" and "below porosity_min" in reason


def test_verdict_in_sample_stats_uses_interval():
    pipe = pipeline_from_dict({"spec": {"porosity_max": 0.21}})
    rng = np.random.default_rng(3)
    r = sample_stats(make_fields(0.20 + rng.normal(0, 0.02, 10)), pipe)
    expected = "pass" if r.ci95_high <= 0.21 else ("fail" if r.ci95_low > 0.21 else "marginal")
    assert r.verdict == expected


def test_relative_density_limit_is_not_judged_on_image():
    pipe = pipeline_from_dict({"spec": {"relative_density_min": 0.8}})
    r = sample_stats(make_fields([0.5, 0.52, 0.49]), pipe)
    assert r.verdict == "n/a"
    assert "relative_density_min not judged" in r.verdict_reason


def test_ci_coverage_is_about_95_percent():
    rng = np.random.default_rng(2024)
    trials, hits = 400, 0
    for _ in range(trials):
        r = sample_stats(make_fields(rng.normal(0.2, 0.03, 10), region=1_000_000))
        hits += r.ci95_low <= 0.2 <= r.ci95_high
    # binomial SD at 95 % of 400 is ~1.1 %: allow about 3 SD.
    assert 0.91 <= hits / trials <= 0.985


def test_group_samples_natural_order_and_field_order():
    fs = [FieldResult("c", sample="S10", field=2), FieldResult("a", sample="S2", field=3),
          FieldResult("b", sample="S2", field=None), FieldResult("d", sample="S2", field=1),
          FieldResult("e", sample="S10", field=2), FieldResult("f", sample="S10", field=1)]
    g = group_samples(fs)
    assert list(g) == ["S2", "S10"]
    assert [f.path for f in g["S2"]] == ["d", "a", "b"]
    assert [f.path for f in g["S10"]] == ["f", "c", "e"]     # stable for equal numbers


def test_to_dict_is_complete():
    r = sample_stats(make_fields([0.1, 0.2, 0.15]))
    d = r.to_dict()
    for key in ("sample", "n_fields", "n_excluded", "porosity_mean", "porosity_sd", "ci95_half",
                "ci95_low", "ci95_high", "rel_accuracy_pct", "porosity_pooled", "porosity_min",
                "porosity_max", "relative_density", "band_low_mean", "band_high_mean",
                "verdict", "verdict_reason", "fields_needed", "fields_more", "complete",
                "warnings", "density"):
        assert key in d
    assert isinstance(d["warnings"], list)


def _density(**kw):
    d = dict(step="final", apparent_density_g_cm3=3.0, true_density_g_cm3=4.0,
             filling_rate_pct=75.0, porosity_density_pct=25.0, porosity_image_pct=20.0,
             difference_pp=-5.0, difference_flag=False, relative_density_verdict=None,
             message="")
    d.update(kw)
    return d


def test_merge_density_verdict():
    pipe = pipeline_from_dict({"spec": {"porosity_max": 0.4, "relative_density_min": 0.8}})
    r = sample_stats(make_fields([0.20, 0.21, 0.19]), pipe)
    assert r.verdict == "pass"
    failed = merge_density_verdict(r.replace(density=_density(relative_density_verdict="fail")))
    assert failed.verdict == "fail" and "filling rate 75.00 %" in failed.verdict_reason
    assert "not judged" not in failed.verdict_reason
    flagged = merge_density_verdict(r.replace(density=_density(difference_flag=True,
                                                               difference_pp=-7.5)))
    assert flagged.verdict == "pass" and any("-7.50 pp" in w for w in flagged.warnings)
    r_na = sample_stats(make_fields([0.2, 0.21]),
                        pipeline_from_dict({"spec": {"relative_density_min": 0.7}}))
    assert merge_density_verdict(
        r_na.replace(density=_density(relative_density_verdict="pass"))).verdict == "pass"
    assert merge_density_verdict(r) is r


def test_sample_result_is_frozen():
    r = SampleResult("S1")
    with pytest.raises(Exception):
        r.verdict = "pass"


def test_t975_table_is_scipys():
    from scipy.stats import t

    from poromet.t975 import T975

    assert list(T975) == [float(t.ppf(0.5 + 0.95 / 2.0, df)) for df in range(1, len(T975) + 1)]
    assert t_critical(201) == float(t.ppf(0.975, 200))      # beyond the table: SciPy


def test_t975_series_close_to_scipy_and_fields_for_accuracy_unchanged():
    from scipy.stats import t

    from poromet.t975 import t975_series

    for df in (200, 201, 450, 1000, 10_000, 99_999):
        assert abs(t975_series(df) / t.ppf(0.975, df) - 1) < 2e-12

    def reference(mean, sd, target, cap=100_000):       # the loop on SciPy's t
        ratio = 100.0 * sd / (mean * target)
        n = max(2, math.ceil((1.959963984540054 * ratio) ** 2))
        while n < cap and t.ppf(0.975, n - 1) * ratio > math.sqrt(n):
            n += 1 if n < 200 else max(1, n // 100)
        return min(n, cap)

    for mean, sd, target in [(0.08, 0.015, 10.0), (0.2, 0.19, 5.0), (0.05, 0.04, 1.0),
                             (0.3, 0.3, 0.5), (0.1, 0.09, 2.0)]:
        assert fields_for_accuracy(mean, sd, target) == reference(mean, sd, target)


def test_t975_doctests():
    import doctest

    import poromet.t975

    assert doctest.testmod(poromet.t975).failed == 0
