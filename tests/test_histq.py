"""poromet.histq: percentiles and medians from histograms equal NumPy's, bit for bit."""

import doctest

import numpy as np
import pytest

import poromet.histq
from poromet.histq import median_f32, percentile_int, quantiles_from_counts


@pytest.mark.parametrize("dtype, hi", [(np.uint8, 256), (np.uint8, 3), (np.uint16, 65536),
                                       (np.uint16, 900)])
def test_percentile_int_equals_numpy(dtype, hi):
    rng = np.random.default_rng(hi)
    qs = [0, 0.01, 0.5, 37.3, 50, 99.5, 99.99, 100]
    for _ in range(200):
        shape = tuple(rng.integers(1, 50, 2))
        d = rng.integers(0, hi, shape).astype(dtype)
        r = rng.random(shape) < rng.uniform(0.05, 1)
        if not r.any():
            continue
        assert percentile_int(d, r, qs) == list(np.percentile(d[r], qs))
    assert percentile_int(d, None, qs) == list(np.percentile(d, qs))


def test_percentile_int_not_applicable():
    assert percentile_int(np.zeros((4, 4), np.float32), None, [50]) is None
    assert percentile_int(np.zeros((4, 4), np.uint8), np.zeros((4, 4), bool), [50]) is None


def test_quantiles_from_counts_one_value():
    assert quantiles_from_counts(np.array([0, 0, 5]), [0, 0.5, 1]) == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("scale", [0.01, 1.0, 10.0])
def test_median_f32_equals_numpy(scale):
    rng = np.random.default_rng(int(scale * 100))
    for i in range(200):
        shape = tuple(rng.integers(1, 40, 2))
        v = np.minimum(rng.gamma(2, 3, shape) * scale, 255.4).astype(np.float32)
        if i % 3 == 0:
            v = np.round(v)                      # many ties
        m = rng.random(shape) < 0.7
        if not m.any():
            continue
        got, want = median_f32(v, m), np.median(v[m])
        assert got == want and type(got) is type(want)


def test_median_f32_not_applicable():
    v = np.full((4, 4), 300, np.float32)
    assert median_f32(v, np.ones(v.shape, bool)) is None        # out of [0, 256)
    v[0, 0] = np.nan
    assert median_f32(v, np.ones(v.shape, bool)) is None
    assert median_f32(v.astype(np.float64), np.ones(v.shape, bool)) is None


def test_doctests():
    assert doctest.testmod(poromet.histq).failed == 0


@pytest.mark.parametrize("dtype, lo, hi, bins", [(np.uint8, 0, 256, 256), (np.uint16, 0, 65536, 65536),
                                                (np.float32, -0.5, 255.5, 256),
                                                (np.float32, 0, 3000, 3000)])
def test_masked_hist_equals_opencv_mask(dtype, lo, hi, bins):
    import cv2

    from poromet.histq import masked_hist

    rng = np.random.default_rng(bins)
    d = rng.uniform(lo - 5, hi + 5, (60, 70)).astype(dtype)
    r = rng.random(d.shape) < 0.6
    want = cv2.calcHist([d], [0], r.view(np.uint8), [bins], [lo, hi]).ravel()
    before = d.copy()
    assert np.array_equal(masked_hist(d, r, bins, lo, hi), want)
    assert np.array_equal(d, before)                  # not overwritten by default
