"""Tests of poromet.binarize: thresholds on region pixels, ImageJ parity, clean-up."""

from __future__ import annotations

import numpy as np
import pytest

from poromet import binarize as B
from poromet.errors import PipelineError, PorometError
from poromet.pipeline import CleanupSettings, ThresholdSettings

ALL = sorted(B.THRESHOLD_METHODS)


def two_phase(rng, n=4000, frac=0.3, dark=50.0, bright=180.0, sd=8.0):
    k = int(n * frac)
    return np.r_[rng.normal(dark, sd, k), rng.normal(bright, sd, n - k)].clip(0, 255)


def ij_default_reference(hist):
    """Literal transcription of ImageJ 1.52 AutoThresholder.defaultIsoData + IJIsoData."""
    data = [int(v) for v in hist]
    mode, max_count = 0, 0
    for i, c in enumerate(data):
        if c > max_count:
            max_count, mode = c, i
    max_count2 = 0
    for i, c in enumerate(data):
        if c > max_count2 and i != mode:
            max_count2 = c
    if max_count > max_count2 * 2 and max_count2 != 0:
        data[mode] = int(max_count2 * 1.5)
    max_value = len(data) - 1
    data[0] = 0
    data[max_value] = 0
    lo = 0
    while data[lo] == 0 and lo < max_value:
        lo += 1
    hi = max_value
    while data[hi] == 0 and hi > 0:
        hi -= 1
    if lo >= hi:
        return len(data) // 2
    moving = lo
    while True:
        s1 = s2 = s3 = s4 = 0.0
        for i in range(lo, moving + 1):
            s1 += i * data[i]
            s2 += data[i]
        for i in range(moving + 1, hi + 1):
            s3 += i * data[i]
            s4 += data[i]
        result = (s1 / s2 + s3 / s4) / 2.0
        moving += 1
        if not ((moving + 1) <= result and moving < hi - 1):
            break
    return int(np.floor(result + 0.5))


@pytest.mark.parametrize("seed", range(12))
def test_ij_default_matches_reference_transcription(seed):
    rng = np.random.default_rng(seed)
    frac = rng.uniform(0.02, 0.6)
    v = two_phase(rng, n=3000, frac=frac, dark=rng.uniform(5, 90),
                  bright=rng.uniform(120, 250), sd=rng.uniform(3, 30))
    hist = B.region_histogram(v)
    assert B.threshold_ij_default(hist=hist) == ij_default_reference(hist)


def test_ij_default_edge_cases():
    h = np.zeros(256, np.int64)
    with pytest.raises(PorometError, match="no pixels"):
        B.threshold_ij_default(hist=h)
    h[100] = 50
    assert B.threshold_ij_default(hist=h) == 128          # single level: ImageJ returns 128
    h[0] = h[255] = 1000                                  # end bins are ignored
    h[200] = 50
    assert B.threshold_ij_default(hist=h) == ij_default_reference(h)


@pytest.mark.parametrize("method", ALL)
def test_thresholds_split_two_phases(method):
    rng = np.random.default_rng(7)
    v = two_phase(rng, frac=0.35)
    t = B.THRESHOLD_METHODS[method](v)
    assert 60 < t < 170, (method, t)
    # values and histogram give the same answer
    assert t == B.THRESHOLD_METHODS[method](hist=B.region_histogram(v))


@pytest.mark.parametrize("method", ["otsu", "isodata", "ij_default", "li", "yen"])
def test_thresholds_agree_with_scikit_image_roughly(method):
    import skimage.filters as skf

    rng = np.random.default_rng(3)
    v = np.round(two_phase(rng, frac=0.4, sd=25))   # overlapping: no flat plateau
    ours = B.THRESHOLD_METHODS[method](v)
    ref_name = {"ij_default": "isodata"}.get(method, method)
    ref = getattr(skf, f"threshold_{ref_name}")(v)
    assert abs(ours - ref) <= 3, (ours, ref)


def test_histogram_is_region_only():
    img = np.full((20, 20), 200.0)
    img[:5] = 0.0                        # info bar / padding outside the region
    img[10:13, 10:13] = 40.0             # pores inside
    region = np.zeros(img.shape, bool)
    region[5:, :] = True
    h = B.region_histogram(img, region)
    assert h.sum() == region.sum() and h[0] == 0 and h[40] == 9


def test_masked_threshold_ignores_outside():
    rng = np.random.default_rng(11)
    img = rng.normal(180, 6, (100, 100))
    yy, xx = np.mgrid[:100, :100]
    img[(yy - 50) ** 2 + (xx - 50) ** 2 < 15 ** 2] = 60
    img[:30] = 255                        # white info bar outside the region
    region = np.zeros(img.shape, bool)
    region[30:] = True
    t_region = B.threshold_otsu(img[region])
    t_whole = B.threshold_otsu(img)
    assert 80 < t_region < 160
    assert t_whole > 185                  # the bar drags a whole-image threshold up


def test_binarize_boundary_and_region():
    clean = np.array([[99.4, 99.6, 100.0], [100.4, 100.6, 50.0]], np.float32)
    region = np.ones(clean.shape, bool)
    region[1, 2] = False
    p = B.binarize(clean, region, 100)
    assert p.tolist() == [[True, True, True], [True, False, False]]
    u8 = np.array([[100, 101]], np.uint8)
    assert B.binarize(u8, np.ones_like(u8, bool), 100).tolist() == [[True, False]]


def test_cleanup_min_area_and_fill_holes():
    p = np.zeros((20, 20), bool)
    p[1, 1] = True                         # speck
    p[5:15, 5:15] = True
    p[8:11, 8:11] = False                  # a bright speck inside a pore
    region = np.ones(p.shape, bool)
    out = B.cleanup_pores(p, region, min_area_px=4)
    assert not out[1, 1] and out[5, 5] and not out[9, 9]
    out = B.cleanup_pores(p, region, min_area_px=4, fill_holes=True)
    assert out[9, 9] and out.sum() == 100
    # a solid area that touches the region border is not a hole
    region2 = np.ones(p.shape, bool)
    region2[9, :9] = False
    out2 = B.cleanup_pores(p, region2, fill_holes=True)
    assert not out2[9, 9]


def test_segment_region_band_and_histogram():
    rng = np.random.default_rng(5)
    img = rng.normal(180, 5, (120, 160)).astype(np.float32)
    yy, xx = np.mgrid[:120, :160]
    for cy, cx, r in [(30, 40, 10), (80, 100, 14), (60, 140, 8)]:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 50
    region = np.zeros(img.shape, bool)
    region[:, :120] = True                # the third pore lies outside the region
    seg = B.segment(img, region, threshold=ThresholdSettings(method="ij_default", band=5),
                    cleanup=CleanupSettings(min_pore_area_px=4))
    assert not seg.pores[~region].any()
    truth = ((yy - 30) ** 2 + (xx - 40) ** 2 < 100) | ((yy - 80) ** 2 + (xx - 100) ** 2 < 196)
    p = seg.pores.sum() / region.sum()
    assert abs(p - (truth & region).sum() / region.sum()) < 0.002
    assert seg.porosity_low <= p <= seg.porosity_high
    assert seg.histogram.sum() == region.sum() and seg.histogram.shape == (256,)
    assert 50 < seg.threshold < 180


def test_segment_manual_and_um2_area():
    img = np.full((50, 50), 200.0, np.float32)
    img[10:12, 10:12] = 20                 # 4 px = 0.04 um2 at 0.1 um
    img[30:40, 30:40] = 20
    region = np.ones(img.shape, bool)
    seg = B.segment(img, region, threshold=ThresholdSettings(method="manual", value=100.0),
                    cleanup=CleanupSettings(min_pore_area_um2=0.05), pixel_size_um=0.1)
    assert seg.threshold == 100.0 and seg.pores.sum() == 100
    seg = B.segment(img, region, threshold=ThresholdSettings(method="manual", value=100.0),
                    cleanup=CleanupSettings(min_pore_area_px=0))
    assert seg.pores.sum() == 104


def test_segment_errors():
    img = np.zeros((4, 4), np.float32)
    with pytest.raises(PorometError, match="empty"):
        B.segment(img, np.zeros((4, 4), bool), threshold=ThresholdSettings(),
                  cleanup=CleanupSettings())
    with pytest.raises(PorometError, match="differ"):
        B.segment(img, np.ones((3, 4), bool), threshold=ThresholdSettings(),
                  cleanup=CleanupSettings())
    with pytest.raises(PipelineError, match="threshold.value"):
        B.segment(img, np.ones((4, 4), bool),
                  threshold=ThresholdSettings(method="manual"), cleanup=CleanupSettings())
    with pytest.raises(PorometError, match="256"):
        B.threshold_otsu(hist=np.ones(10))


def test_binarize_ij_default_16bit_maps_back():
    rng = np.random.default_rng(9)
    base = two_phase(rng, n=200 * 100, frac=0.25).reshape(200, 100)
    img16 = (base * 200 + 1000).astype(np.uint16)
    img16[0, 0] = 60000                   # outside-region max drives ImageJ's scaling
    region = np.zeros(img16.shape, bool)
    region[10:, :] = True
    pores, upper = B.binarize_ij_default(img16, region)
    hist, lo, hi = B.imagej_histogram(img16, region)
    t = B.threshold_ij_default(hist=hist)
    assert lo == img16.min() and hi == 60000
    assert upper == np.floor(lo + t / 255 * (hi - lo))
    assert pores.sum() == ((img16 <= upper) & region).sum()
    assert 0.2 < pores.sum() / region.sum() < 0.3


@pytest.mark.parametrize("fill_holes", [False, True])
@pytest.mark.parametrize("min_area", [0, 1, 4])
def test_cleaned_count_is_the_cleanup_count(fill_holes, min_area):
    """The band's shortcut (counts from label areas) counts what the
    clean-up keeps, with and without hole filling and extra floor pixels."""
    rng = np.random.default_rng(min_area)
    region = np.zeros((60, 80), bool)
    region[5:55, 3:70] = True
    raw = (rng.random(region.shape) < 0.35) & region
    plus = (rng.random(region.shape) < 0.03) & region
    q = B.cleanup_pores(raw, region, min_area_px=min_area, fill_holes=fill_holes)
    assert B.cleaned_count(raw, region, min_area_px=min_area, fill_holes=fill_holes) == q.sum()
    assert (B.cleaned_count(raw, region, min_area_px=min_area, fill_holes=fill_holes, plus=plus)
            == (q | plus).sum())


def test_float_histogram_bins_like_numpy_at_rounding_edges():
    """float32 values a hair below, at and above k + 0.5, and below 0.5 (where
    the float32 sum v + 0.5 rounds): the same bins as floor(v + 0.5) in double."""
    rng = np.random.default_rng(5)
    k = rng.integers(0, 256, 20000).astype(np.float32)
    half = k - np.float32(0.5)
    v = np.concatenate([np.nextafter(half, np.float32(-1)), half, np.nextafter(half, np.float32(300)),
                        np.float32(0.5) - rng.uniform(0, 1e-6, 20000).astype(np.float32),
                        rng.uniform(-0.5, 255.5, 20000).astype(np.float32)])
    v = v[(v >= -0.5) & (v < 255.5)]
    v = v[: v.size // 100 * 100].reshape(-1, 100)
    region = rng.random(v.shape) < 0.7
    want = np.bincount(np.floor(v[region].astype(np.float64) + 0.5).astype(np.intp), minlength=256)
    assert np.array_equal(B.region_histogram(v, region), want)
