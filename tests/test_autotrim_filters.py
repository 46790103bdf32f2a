"""The working image's filters of poromet.autotrim against SciPy's."""

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
