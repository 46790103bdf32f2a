"""poromet.labels: the same components and areas as OpenCV's default labelling."""

import doctest

import cv2
import numpy as np
import pytest

import poromet.labels
from poromet.labels import count_kept, label_areas, remove_small


def _reference(mask, connectivity):
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8),
                                                        connectivity=connectivity)
    return n, lab, stats


def _same_partition(a, b):
    """Two labellings group the pixels identically."""
    pairs = np.unique(np.stack([a.ravel().astype(np.int64), b.ravel().astype(np.int64)]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@pytest.mark.parametrize("connectivity", [4, 8])
def test_label_areas_matches_opencv(connectivity):
    rng = np.random.default_rng(connectivity)
    for _ in range(30):
        m = cv2.GaussianBlur(rng.random((70, 90)).astype(np.float32), (0, 0), 2) > 0.5
        n, lab, areas = label_areas(m, connectivity=connectivity)
        n0, lab0, stats0 = _reference(m, connectivity)
        assert n == n0 and _same_partition(lab, lab0)
        assert sorted(areas[1:].tolist()) == sorted(stats0[1:, 4].tolist())
        assert areas[0] == np.count_nonzero(~m)


def test_label_areas_more_than_65535_labels():
    m = np.zeros((600, 600), bool)
    m[::2, ::2] = True                        # 90000 single pixels
    n, lab, areas = label_areas(m, connectivity=4)
    assert n == 90001 and lab.dtype == np.int32 and areas[1:].max() == 1


@pytest.mark.parametrize("connectivity", [4, 8])
def test_remove_small_clears_exactly_the_small_components(connectivity):
    rng = np.random.default_rng(3)
    m = rng.random((80, 80)) < 0.3
    n0, lab0, stats0 = _reference(m, connectivity)
    for limit in (1, 2, 4, 50):
        ids = np.flatnonzero(stats0[1:, 4] < limit) + 1
        want = m & ~np.isin(lab0, ids)
        got = remove_small(m.copy(), limit, connectivity=connectivity)
        assert np.array_equal(got, want)
        assert limit == 1 or np.count_nonzero(got) < np.count_nonzero(m)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_count_kept_is_the_cleaned_masks_count(connectivity):
    """The band's counts, from areas alone, equal counting the cleaned mask
    (with extra pixels inside, outside and across the kept components)."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        m = rng.random((90, 70)) < rng.uniform(0.1, 0.5)
        plus = rng.random(m.shape) < 0.05
        for limit in (2, 3, 9):
            cleaned = remove_small(m.copy(), limit, connectivity=connectivity)
            assert count_kept(m, limit, connectivity=connectivity) == np.count_nonzero(cleaned)
            assert (count_kept(m, limit, plus=plus, connectivity=connectivity)
                    == np.count_nonzero(cleaned | plus))
    assert count_kept(np.zeros((5, 5), bool), 3, plus=np.zeros((5, 5), bool)) == 0


def test_doctests():
    assert doctest.testmod(poromet.labels).failed == 0
