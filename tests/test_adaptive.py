"""The default segmentation (poromet.adaptive) on controlled scenes."""

import cv2
import numpy as np
import pytest

from poromet.adaptive import (
    SOLID_LEVEL,
    adaptive_smooth,
    fill_dark_floors,
    local_threshold,
    normalize_field,
)
from poromet.binarize import segment
from poromet.pipeline import Pipeline


def scene(seed=0, *, noise=0.0, ramp=0.0, rim=0.0, floor=0.0, streak=False):
    """Solid at 0.7 with 12 round pores (radius 6-14 px); returns image, truth."""
    rng = np.random.default_rng(seed)
    H, W = 256, 320
    yy, xx = np.mgrid[:H, :W]
    pores = np.zeros((H, W), bool)
    for _ in range(12):
        cy, cx, r = rng.integers(20, H - 20), rng.integers(20, W - 20), rng.integers(6, 15)
        pores |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    sig = np.full((H, W), 0.7, np.float32)
    if rim:
        d = cv2.distanceTransform((~pores).astype(np.uint8), cv2.DIST_L2, 3)
        sig *= 1 + rim * np.exp(-(d - 1) / 2.0)
    d_in = cv2.distanceTransform(pores.astype(np.uint8), cv2.DIST_L2, 3)
    sig[pores] = 0.05 + (floor * 0.7 - 0.05) * np.clip((d_in[pores] - 3) / 3, 0, 1)
    sig = cv2.GaussianBlur(sig, (0, 0), 1.0)
    sig *= 1 + ramp * (xx / W - 0.5)
    if streak:
        sig[100:102, :] += 0.4
    sig += noise * rng.standard_normal(sig.shape).astype(np.float32)
    return np.clip(sig * 255, 0, 255).astype(np.uint8), pores


def measure(img, region=None):
    region = np.ones(img.shape, bool) if region is None else region
    p = Pipeline()
    from poromet.preprocess import preprocess

    clean, sigma = preprocess(img, region, p.preprocess, return_sigma=True)
    return segment(clean, region, threshold=p.threshold, cleanup=p.cleanup, smooth_sigma=sigma)


@pytest.mark.parametrize("kw", [{}, {"noise": 0.08}, {"ramp": 0.8}, {"rim": 0.5},
                                {"floor": 0.6}, {"streak": True}])
def test_porosity_within_half_a_point(kw):
    img, truth = scene(1, **kw)
    seg = measure(img)
    err = 100 * (seg.pores.mean() - truth.mean())
    assert abs(err) < 0.8, f"{kw}: error {err:+.2f} pp"
    assert seg.porosity_low <= seg.pores.mean() <= seg.porosity_high


def test_bright_streak_is_not_a_pore():
    img, truth = scene(2, streak=True)
    seg = measure(img)
    row = seg.pores[100:102]
    assert row.sum() <= truth[100:102].sum() + 4


def test_pore_floors_are_filled_but_solid_islands_are_not():
    img, truth = scene(3, floor=0.65)
    seg = measure(img)
    assert seg.pores[truth].mean() > 0.97          # floors count as pore
    # a solid island inside a pore ring stays solid
    img2 = np.full((128, 128), 180, np.uint8)
    cv2.circle(img2, (64, 64), 30, 10, thickness=8)
    seg2 = measure(img2)
    assert not seg2.pores[64, 64]


def test_region_excludes_outside_pixels():
    img, truth = scene(4)
    region = np.zeros(img.shape, bool)
    region[:, :160] = True
    seg = measure(img, region)
    assert not seg.pores[:, 160:].any()
    err = 100 * (seg.pores[region].mean() - truth[region].mean())
    assert abs(err) < 1.0


def test_normalize_field_flattens_shading():
    img, _ = scene(5, ramp=0.8)
    out = normalize_field(img, np.ones(img.shape, bool))
    left, right = np.median(out[:, :40]), np.median(out[:, -40:])
    assert abs(left - right) < 0.1 * SOLID_LEVEL      # a +-40 % ramp left at a few %
    assert abs(np.median(out) - SOLID_LEVEL) < 0.1 * SOLID_LEVEL


def test_adaptive_smooth_only_when_noisy():
    clean, _ = scene(6)
    noisy, _ = scene(6, noise=0.12)
    r = np.ones(clean.shape, bool)
    _, s_clean = adaptive_smooth(normalize_field(clean, r), r)
    _, s_noisy = adaptive_smooth(normalize_field(noisy, r), r)
    assert s_clean == 0.0 < s_noisy


def test_fill_dark_floors_is_monotone():
    img = np.full((100, 100), 200, np.float32)
    img[10:30, 10:30] = 10
    img[15:25, 15:25] = 90          # mid-gray floor, 1 % of the region
    pores = img < 50
    out = fill_dark_floors(pores, img, np.ones_like(pores), level=150)
    assert out[20, 20] and (out >= pores).all()
    T, t, dark, solid = local_threshold(img, np.ones_like(pores))
    assert dark < t < solid
