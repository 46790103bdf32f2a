"""The working image's filters of poromet.autotrim against SciPy's."""

import warnings

import numpy as np
import pytest
from scipy import ndimage as ndi

from poromet.autotrim.profiles import _vertical_median


@pytest.mark.parametrize("shape", [(1, 5), (4, 7), (9, 4), (64, 33), (300, 200), (50, 4100)])
@pytest.mark.parametrize("size", [1, 3, 9, 11])
def test_vertical_median_equals_scipy_median_filter(shape, size):
    rng = np.random.default_rng(size * 100 + shape[0])
    for a in (rng.random(shape).astype(np.float32),
              rng.integers(0, 4, shape).astype(np.float32)):        # with ties
        want = ndi.median_filter(a, size=(size, 1), mode="reflect")
        assert np.array_equal(_vertical_median(a, size), want)


def test_vertical_median_removes_a_streak():
    a = np.zeros((40, 10), np.float32)
    a[20:23] = 1.0                                  # a 3-row bright scan line
    assert not _vertical_median(a, 9).any()


def test_strip_medians_equal_numpy():
    from poromet.autotrim.profiles import _strip_medians

    rng = np.random.default_rng(1)
    for _ in range(60):
        T, S, n = int(rng.integers(8, 300)), int(rng.integers(1, 100)), int(rng.integers(1, 12))
        a = (rng.normal(size=(T, S)) * 50).astype(np.float32)
        if rng.random() < 0.5:
            a = np.round(a)                                          # ties
        edges = np.linspace(0, T, n + 1).round().astype(int)
        want = np.stack([np.median(a[edges[j]:edges[j + 1]], axis=0) for j in range(n)])
        got = _strip_medians(a, edges)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_nanmedian_rows_equals_numpy():
    from poromet.autotrim.profiles import _nanmedian_rows

    rng = np.random.default_rng(2)
    for _ in range(100):
        a = rng.normal(size=(int(rng.integers(1, 9)), int(rng.integers(1, 700))))
        a[rng.random(a.shape) < rng.uniform(0, 0.6)] = np.nan
        a[0, : rng.integers(0, a.shape[1] + 1)] = np.nan             # down to an all-NaN row
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                          # all-NaN row
            want = np.nanmedian(a, axis=1)
        assert np.array_equal(_nanmedian_rows(a), want, equal_nan=True)


def test_best_paths_equal_the_loop_over_moves():
    """The windowed dynamic programme against the plain loop over moves."""
    from poromet.autotrim.straighten import _best_paths

    def loop(score, jump):
        n, m = score.shape
        acc, back, pos = score[0].copy(), np.zeros((n, m), np.int64), np.arange(m)
        for j in range(1, n):
            best, arg = np.full(m, -np.inf), np.zeros(m, np.int64)
            for dj in range(-jump, jump + 1):
                src = pos + dj
                ok = (src >= 0) & (src < m)
                cand = np.where(ok, acc[np.clip(src, 0, m - 1)], -np.inf)
                better = cand > best
                best = np.where(better, cand, best)
                arg = np.where(better, np.clip(src, 0, m - 1), arg)
            acc, back[j] = best + score[j], arg
        return back, acc

    rng = np.random.default_rng(3)
    for _ in range(200):
        score = rng.normal(size=(int(rng.integers(1, 30)), int(rng.integers(1, 25))))
        if rng.random() < 0.5:
            score = np.round(score)                                  # ties
        jump = int(rng.integers(0, 4))
        (b0, a0), (b1, a1) = loop(score, jump), _best_paths(score, jump)
        assert np.array_equal(b0, b1) and np.array_equal(a0, a1)
