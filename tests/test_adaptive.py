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


@pytest.mark.parametrize("seed", range(6))
def test_fill_dark_floors_small_patch_route_matches_every_pixel_route(seed):
    # the float32 route visits only the patches other than the largest one
    # (its sum by difference); float64 input takes the weighted bincount of
    # every pixel: the same decisions, also when the largest patch itself is
    # dark enough to fill (seeds 3-5: a dark, mostly-void field)
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((120, 150)).astype(np.float32), (0, 0), 2) * 255
    if seed >= 3:
        img *= 0.6
    pores = img < np.percentile(img, 45 if seed < 3 else 70)
    region = np.ones(img.shape, bool)
    region[:, :7] = False
    kw = dict(level=120.0, soft_level=135.0)
    got = fill_dark_floors(pores, img, region, **kw)
    want = fill_dark_floors(pores, img.astype(np.float64), region, **kw)
    assert np.array_equal(got, want)
    assert (got >= pores).all()
    assert seed < 3 or got.sum() > pores.sum()              # something was filled


def test_fill_dark_floors_fills_a_largest_patch_that_is_a_floor():
    # a mostly-void field whose largest non-void patch is a soft mid-gray
    # floor (36 % of the field) next to small sharp solid grains: the floor
    # is filled by both routes (the small-patch route adds it apart)
    img = np.full((150, 150), 10, np.float32)
    floor = np.zeros(img.shape, bool)
    floor[30:120, 30:120] = True
    d = cv2.distanceTransform(floor.astype(np.uint8), cv2.DIST_L2, 3)
    img[floor] = 10 + 100 * np.clip(d[floor] / 8, 0, 1)
    for y, x in [(5, 5), (5, 130), (130, 5), (135, 135), (5, 70)]:
        img[y:y + 8, x:x + 8] = 220
    pores = img < 60
    region = np.ones(img.shape, bool)
    kw = dict(level=120.0, soft_level=135.0)
    got = fill_dark_floors(pores, img, region, **kw)
    assert got[75, 75] and not got[8, 8]
    assert np.array_equal(got, fill_dark_floors(pores, img.astype(np.float64), region, **kw))


def _floor_pore(H=200, W=240, *, floor=0.6, ramp_px=6.0, box=(40, 40, 140, 160)):
    """Solid 0.7 with one large pore whose bottom rises from dark walls to ``floor``."""
    sig = np.full((H, W), 0.7, np.float32)
    pore = np.zeros((H, W), bool)
    y0, x0, y1, x1 = box
    pore[y0:y1, x0:x1] = True
    d_in = cv2.distanceTransform(pore.astype(np.uint8), cv2.DIST_L2, 3)
    sig[pore] = 0.05 + (floor * 0.7 - 0.05) * np.clip((d_in[pore] - 3) / ramp_px, 0, 1)
    return cv2.GaussianBlur(sig, (0, 0), 1.0) * 255, pore


def test_a_large_soft_floor_is_filled_a_solid_island_is_not():
    # a floor covering ~20 % of the field (an open pore network's bottom),
    # with a solid grain (island) standing in the pore
    img, pore = _floor_pore(floor=0.9)          # bottom at ~85 % of the contrast
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    island = (yy - 90) ** 2 + (xx - 70) ** 2 <= 6 ** 2
    sig = img / 255
    sig[island] = 0.7
    sig[(cv2.dilate(island.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & ~island] = 0.05
    img = cv2.GaussianBlur(sig.astype(np.float32), (0, 0), 1.0) * 255
    region = np.ones(img.shape, bool)
    T, t, dark, solid = local_threshold(img, region)
    voids = img < T
    assert voids[pore].mean() < 0.5                         # the floor is not dark
    out = fill_dark_floors(voids, img, region, level=dark + 0.8 * (solid - dark),
                           soft_level=dark + 0.9 * (solid - dark))
    truth = pore & ~island
    assert out[truth].mean() > 0.97                         # floor filled, large as it is
    assert not out[90, 70] and out[island].mean() < 0.3     # the island stays solid
    # without the border rule a large floor is never filled
    old = fill_dark_floors(voids, img, region, level=dark + 0.8 * (solid - dark),
                           edge_ratio=None)
    assert old[truth].mean() < 0.7


def test_a_grain_boundary_valley_next_to_bright_rims_is_not_a_void():
    # solid 0.7 with a few pores (for the void level); a darker grain
    # boundary line (0.52, i.e. ~72 % of the contrast) between bright rims
    sig = np.full((160, 200), 0.7, np.float32)
    sig[20:40, 20:40] = sig[120:140, 150:170] = 0.03
    sig[:, 98:101] = 1.0                                    # rim-bright bands
    sig[:, 104:107] = 1.0
    sig[:, 101:104] = 0.52                                  # the valley
    img = cv2.GaussianBlur(sig, (0, 0), 0.8) * 255
    region = np.ones(img.shape, bool)
    T, *_ = local_threshold(img, region)
    assert not (img < T)[60:100, 95:110].any()
    assert (img < T)[25:35, 25:35].all()


def test_smoothing_shift_of_small_pores_is_undone():
    # small round pores blurred by sigma 1.5 (as after strong adaptive
    # smoothing) lose area at their curved edges; segment(smooth_sigma=)
    # gives most of it back
    H, W = 200, 200
    yy, xx = np.mgrid[:H, :W]
    pores = np.zeros((H, W), bool)
    for cy in range(20, H, 40):
        for cx in range(20, W, 40):
            pores |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 5 ** 2
    sig = np.where(pores, 0.05, 0.7).astype(np.float32)
    img = cv2.GaussianBlur(sig, (0, 0), 1.6) * 255
    region = np.ones(img.shape, bool)
    p = Pipeline()
    plain = segment(img, region, threshold=p.threshold, cleanup=p.cleanup)
    fixed = segment(img, region, threshold=p.threshold, cleanup=p.cleanup, smooth_sigma=1.5)
    err_plain = abs(plain.pores.sum() - pores.sum())
    err_fixed = abs(fixed.pores.sum() - pores.sum())
    assert err_fixed < 0.7 * err_plain


def test_half_size_statistics_keep_a_ragged_region():
    """The shading and levels are taken at half size, over the 2x2 cells
    wholly inside the region; a region of scattered pixels has none, so it
    is kept at full size (it once left normalize_field without a solid
    level and every pixel clipped white)."""
    from poromet.adaptive import _half

    img = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    full = np.ones(img.shape, bool)
    g, r, k = _half(img, full)
    assert k == 2 and g.shape == (64, 64) and r.all()
    sparse = np.zeros(img.shape, bool)
    sparse[::2, ::2] = True
    g, r, k = _half(img, sparse)
    assert k == 1 and g.shape == img.shape and np.array_equal(r, sparse)
    out = normalize_field((img * 200).astype(np.uint8), sparse)
    assert 100 < float(np.median(out[sparse])) < 250
