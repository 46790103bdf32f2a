"""Tests of automatic exterior-unit trimming (poromet.autotrim)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poromet.autotrim import StackSide, find_stack, stack_mask, trim_auto
from poromet.errors import RoiError
from poromet.pipeline import TrimSettings
from poromet.roi import trim_region

REAL = Path(__file__).parents[2] / "shared" / "realdata"


def _ceramic(rng, shape, porosity=0.15):
    """Homogeneous porous ceramic: grey solid with dark round pores."""
    H, W = shape
    img = rng.normal(150, 8, shape).astype(np.float32)
    yy, xx = np.mgrid[:H, :W]
    n = int(porosity * H * W / (np.pi * 16))
    for y, x in zip(rng.integers(0, H, n), rng.integers(0, W, n)):
        img[(yy - y) ** 2 + (xx - x) ** 2 < 16] = 40
    return img


def _with_stack(rng, shape, side, depth):
    """Ceramic field with a layered band (bright collector, dark and mid layers)."""
    img = _ceramic(rng, shape)
    H, W = shape
    along = W if side in ("top", "bottom") else H
    wave = depth + 6 * np.sin(np.arange(along) / along * 2 * np.pi)
    levels = [90, 235, 110, 200]
    s = np.arange(H if side in ("top", "bottom") else W)
    if side in ("bottom", "right"):
        s = s[::-1]
    for i, lev in enumerate(levels):
        inner = wave * (1 - i / len(levels))
        band = s[:, None] < inner[None, :]           # (across, along)
        noise = rng.normal(lev, 6, band.shape)
        if side in ("left", "right"):
            band, noise = band.T, noise.T
        img[band] = noise[band]
    return img, wave


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_finds_stack_on_each_side(side):
    rng = np.random.default_rng({"left": 1, "right": 2, "top": 3, "bottom": 4}[side])
    img, wave = _with_stack(rng, (240, 320), side, depth=70)
    found = find_stack(img)
    assert [s.side for s in found] == [side]
    st = found[0]
    assert isinstance(st, StackSide)
    # the boundary follows the wavy band to within a few pixels, never inside it
    assert np.median(np.abs(st.boundary - wave)) < 8
    assert st.coverage >= 0.6 and st.strength > 2


@pytest.mark.parametrize("side", ["left", "top", "right", "bottom"])
def test_trim_auto_removes_stack_with_margin(side):
    rng = np.random.default_rng(11)
    img, wave = _with_stack(rng, (240, 320), side, depth=70)
    bar = 20
    img[-bar:] = 255
    r = trim_auto(img, info_bar_px=bar, settings=TrimSettings(mode="auto", margin_px=10))
    assert r.source == "auto" and side in r.description and "margin 10 px" in r.description
    assert 0 <= r.confidence <= 1
    assert not r.mask[-bar:].any()
    truth = np.zeros(img.shape, bool)
    truth[:-bar] = True
    # the band was drawn from the image edge; depths are counted from the
    # edge of the area above the info bar
    depth = {"top": wave, "bottom": wave - bar}.get(side, wave[:-bar] if side != "top" else wave)
    truth &= ~stack_mask(img.shape, [StackSide(side, depth, 1, 1, 1)], info_bar_px=bar)
    # no stack pixel is kept, and most of the exterior unit is
    assert not (r.mask & ~truth).any()
    assert (r.mask & truth).sum() / truth.sum() > 0.85


def test_margin_from_pixel_size():
    rng = np.random.default_rng(5)
    img, _ = _with_stack(rng, (240, 320), "left", depth=70)
    r1 = trim_auto(img, pixel_size_um=0.1, settings=TrimSettings(margin_um=1.0))
    r2 = trim_auto(img, pixel_size_um=0.1, settings=TrimSettings(margin_um=3.0))
    assert "margin 10 px" in r1.description and "margin 30 px" in r2.description
    assert r2.mask.sum() < r1.mask.sum()


def test_no_stack_keeps_whole_field():
    rng = np.random.default_rng(7)
    img = _ceramic(rng, (240, 320))
    r = trim_auto(img.astype(np.uint16) * 200, info_bar_px=30)
    assert r.mask[:210].all() and not r.mask[210:].any()
    assert r.confidence == 1.0 and "no stack" in r.description


@pytest.mark.parametrize("axis", [0, 1])
def test_shading_ramp_is_not_a_stack(axis):
    rng = np.random.default_rng(8)
    img = _ceramic(rng, (240, 320))
    ramp = np.linspace(0.6, 1.4, img.shape[axis])
    img = img * (ramp[:, None] if axis == 0 else ramp[None, :])
    assert find_stack(img) == []
    r = trim_auto(img)
    assert r.mask.all() and r.confidence >= 0.9


def test_step_statistic_is_ramp_free():
    from poromet.autotrim import _steps

    s = np.arange(200, dtype=np.float64)
    ramp = (0.3 + 0.002 * s)[None, None, :]
    step = np.where(s < 80, 0.2, 0.6)[None, None, :]
    D_ramp = _steps(np.repeat(ramp, 3, axis=1), 5, 30)
    D_step = _steps(np.repeat(step, 3, axis=1), 5, 30)
    assert np.nanmax(np.abs(D_ramp)) < 1e-9
    assert np.nanargmax(D_step[0, 0]) == 80
    assert D_step[0, 0, 80] == pytest.approx(0.4)
    assert np.isnan(D_step[0, 0, :5]).all() and np.isnan(D_step[0, 0, -29:]).all()


def test_weak_outer_layer_is_removed_too():
    """A layer with the ceramic's grey level but no pores, outside a strong band."""
    rng = np.random.default_rng(15)
    H, W = 300, 400
    img = _ceramic(rng, (H, W), porosity=0.2)
    solid = rng.normal(150, 8, (H, W)).astype(np.float32)        # same grey, dense
    img[:, :150] = solid[:, :150]
    img[:, :60] = rng.normal(230, 6, (H, 60))                     # collector-like band
    img[:, :30] = rng.normal(90, 6, (H, 30))
    found = find_stack(img)
    assert [s.side for s in found] == ["left"]
    # the boundary is placed within a few pixels of the layer's edge (150);
    # the margin covers the rest
    assert found[0].boundary.min() >= 140 and found[0].depth_px < 175


def test_opposite_bands_never_leave_an_empty_region():
    rng = np.random.default_rng(16)
    img = _ceramic(rng, (240, 320))
    img[:, :130] = rng.normal(230, 5, (240, 130))
    img[:, :60] = rng.normal(70, 5, (240, 60))
    img[:, -130:] = rng.normal(230, 5, (240, 130))
    img[:, -60:] = rng.normal(70, 5, (240, 60))
    r = trim_auto(img, settings=TrimSettings(margin_px=5))
    assert r.mask.mean() > 0.3


@pytest.mark.parametrize("shape", [(192, 256), (480, 640), (768, 1024)])
def test_pure_noise_is_not_a_stack(shape):
    """Edge rows (changed by the streak median) must not look like a band."""
    rng = np.random.default_rng(shape[0])
    img = rng.normal(120, 10, shape).astype(np.float32)
    r = trim_auto(img, info_bar_px=20)
    assert "no stack" in r.description and r.confidence >= 0.9


def test_clear_bands_on_opposite_sides_are_both_removed():
    # each side's profiles end before the very clear band against the
    # opposite edge (before, that band entered the exterior window and the
    # shading slope: one side was cut 274 px deep, the other not at all)
    rng = np.random.default_rng(17)
    img = _ceramic(rng, (240, 400))
    for sl in (np.s_[:, :70], np.s_[:, -70:]):
        img[sl] = rng.normal(230, 5, (240, 70))
    img[:, :35] = rng.normal(70, 5, (240, 35))
    img[:, -35:] = rng.normal(70, 5, (240, 35))
    found = find_stack(img)
    assert sorted(s.side for s in found) == ["left", "right"]
    r = trim_auto(img, settings=TrimSettings(margin_px=5))
    assert not r.mask[:, :75].any() and not r.mask[:, -75:].any()
    assert r.mask[:, 90:310].all()


def test_scan_line_streak_is_not_a_stack():
    rng = np.random.default_rng(9)
    img = _ceramic(rng, (240, 320))
    img[40:42] = 250                           # a 2-row charging streak
    assert find_stack(img) == []


def test_rgb_accepted_and_bad_shape_rejected():
    rng = np.random.default_rng(10)
    img, _ = _with_stack(rng, (200, 260), "right", depth=60)
    rgb = np.repeat(img[..., None], 3, axis=2)
    assert [s.side for s in find_stack(rgb)] == ["right"]
    with pytest.raises(RoiError, match="allowed: \\(H, W\\)"):
        trim_auto(np.zeros((4, 8, 8, 2)))
    with pytest.raises(RoiError, match="side 'middle'"):
        find_stack(img, sides=["middle"])


def test_trim_region_auto_and_sidecar_wins(tmp_path):
    rng = np.random.default_rng(12)
    img, _ = _with_stack(rng, (240, 320), "bottom", depth=60)
    auto = TrimSettings(mode="auto")
    r = trim_region(img.shape, image=img, info_bar_px=0, trim=auto)
    assert r.source == "auto" and "bottom" in r.description
    given = trim_region(img.shape, roi=(0, 0, 100, 100), image=img, trim=auto)
    assert given.source == "user" and given.mask.sum() == 100 * 100


def test_measure_field_flags_small_region():
    from poromet.measure import measure_field
    from poromet.pipeline import Pipeline, override

    rng = np.random.default_rng(13)
    img, _ = _with_stack(rng, (240, 320), "left", depth=70)
    pipe = override(Pipeline(), trim__mode="auto", trim__min_region_fraction=0.9,
                    image__info_bar="none")
    res = measure_field(img.astype(np.uint8), pipeline=pipe)
    assert res.region_source == "auto" and res.status == "flagged"
    assert "trim.min_region_fraction" in res.message


def test_speed_1024x768():
    import time

    rng = np.random.default_rng(14)
    img = rng.normal(120, 20, (768, 1024)).astype(np.uint8)
    trim_auto(img)
    t0 = time.perf_counter()
    trim_auto(img, info_bar_px=60)
    assert time.perf_counter() - t0 < 1.5     # ~0.1 s on one core; generous for CI


@pytest.mark.skipif(not (REAL / "llzo-composite-cathode").is_dir(), reason="real data absent")
def test_real_composite_without_stack_keeps_whole_field():
    import cv2

    img = cv2.imread(str(REAL / "llzo-composite-cathode" / "Picture1cropped.png"),
                     cv2.IMREAD_GRAYSCALE)
    r = trim_auto(img)
    assert r.mask.mean() > 0.99 and r.confidence >= 0.9


def test_synthetic_generator_fields():
    """Fields of the synthetic generator (seeds not used for tuning)."""
    synth = pytest.importorskip("poromet.synth")
    ious, leaks = [], []
    for seed, side in [(31, "left"), (32, "top"), (33, "right"), (34, "bottom"),
                       (35, "left"), (36, "top")]:
        f = synth.generate_field(seed, width=768, height=576, stack=side)
        r = trim_auto(f.image, info_bar_px=f.info_bar_px, pixel_size_um=f.pixel_size_um)
        ious.append((r.mask & f.exterior).sum() / (r.mask | f.exterior).sum())
        leaks.append((r.mask & ~f.exterior).sum() / r.mask.sum())
    assert np.median(ious) > 0.9 and min(ious) > 0.6
    assert np.median(leaks) < 0.01


def test_synthetic_fields_without_stack_stay_whole():
    synth = pytest.importorskip("poromet.synth")
    for seed in (41, 42, 43):
        f = synth.generate_field(seed, width=768, height=576, stack=False)
        r = trim_auto(f.image, info_bar_px=f.info_bar_px, pixel_size_um=f.pixel_size_um)
        whole = np.zeros(f.image.shape, bool)
        whole[: f.image.shape[0] - f.info_bar_px] = True
        assert (r.mask == whole).all() and r.confidence >= 0.5


def _oriented_band_field(rng, shape, depth, amp):
    """Ceramic with round pores; a band against the left edge with the SAME
    grey levels and pore fraction but pores drawn out along the edge (a
    solid-electrolyte layer much like the cover) and a wavy boundary."""
    H, W = shape
    img = _ceramic(rng, shape)
    yy, xx = np.mgrid[:H, :W]
    wave = depth + amp * np.sin(yy[:, 0] / H * 3 * np.pi)
    band = xx < wave[:, None]
    lay = rng.normal(150, 8, shape).astype(np.float32)
    n = int(0.15 * H * W / (np.pi * 2 * 14))
    for y, x in zip(rng.integers(0, H, n), rng.integers(0, W, n)):
        lay[((yy - y) / 14.0) ** 2 + ((xx - x) / 2.0) ** 2 < 1] = 40
    img[band] = lay[band]
    return img, wave


def test_layered_band_without_texture_step_is_found_by_orientation():
    """Same grey levels and pore fraction as the cover: only the orientation
    of the band's texture (along the edge) tells the stack apart."""
    rng = np.random.default_rng(21)
    img, wave = _oriented_band_field(rng, (384, 512), depth=110, amp=12)
    stacks = find_stack(img)
    assert [(s.side, s.cue) for s in stacks] == [("left", "orientation")]
    b = stacks[0].boundary
    # never inside the band by more than a few px, never far beyond it
    assert np.quantile(b - wave, 0.1) > -6
    assert np.median(b - wave) < 40
    r = trim_auto(img, settings=TrimSettings(margin_px=5))
    cols = np.arange(img.shape[1])[None, :]
    assert not (r.mask & (cols < wave[:, None] - 6)).any()
    assert r.mask.mean() > 0.6


def test_isotropic_field_has_no_oriented_band():
    rng = np.random.default_rng(22)
    img = _ceramic(rng, (384, 512), porosity=0.25)
    assert find_stack(img) == []


def _truth_trim_conf(seed, **kw):
    """Auto trim of a seeded synthetic field: (porosity error in pp from
    trimming alone, IoU with the true exterior, confidence)."""
    synth = pytest.importorskip("poromet.synth")
    f = synth.generate_field(seed, **kw)
    r = trim_auto(f.image, info_bar_px=f.info_bar_px, pixel_size_um=f.pixel_size_um,
                  settings=TrimSettings(margin_um=2.0))
    err = 100 * ((f.pores & r.mask).sum() / r.mask.sum() - f.porosity_exterior)
    iou = (r.mask & f.exterior).sum() / (r.mask | f.exterior).sum()
    return err, iou, r.confidence


def _truth_trim(seed, **kw):
    return _truth_trim_conf(seed, **kw)[:2]


@pytest.mark.parametrize("seed,kw", [
    # a wavy stack whose pores are drawn out along it, missed in round 2 (-3.5 pp)
    (101517946, dict(porosity=0.3489, bit_depth=8, stack="left", info_bar=116,
                     pixel_size_um=0.11223)),
    # a strong stack, then a pore-density gradient in the cover taken as a
    # weak outer interface in round 2 (+8.5 pp)
    (1385333291, dict(porosity=0.2989, bit_depth=8, stack="right", info_bar=120,
                      pixel_size_um=0.08972)),
])
def test_worst_fields_of_round_two(seed, kw):
    err, iou = _truth_trim(seed, width=1024, height=768, **kw)
    assert abs(err) < 1.5 and iou > 0.9


@pytest.mark.parametrize("seed,side", [
    # wavy stacks whose outermost layer (a low-porosity electrolyte against a
    # porous cover) was left in: the wave smeared its step over many depths
    # (trimming alone -1.9, -2.6, -5.6 pp before the side was straightened)
    (3069, "right"), (64028, "bottom"), (88037, "top"),
])
def test_wavy_outer_layer_is_removed_after_straightening(seed, side):
    synth = pytest.importorskip("poromet.synth")
    f = synth.generate_field(seed, width=1024, height=768, stack=side)
    r = trim_auto(f.image, info_bar_px=f.info_bar_px, pixel_size_um=f.pixel_size_um,
                  settings=TrimSettings(margin_um=2.0))
    H = f.image.shape[0] - f.info_bar_px
    stack = ~f.exterior[:H]
    assert (r.mask[:H] & stack).sum() <= 0.005 * stack.sum()
    err = 100 * ((f.pores & r.mask).sum() / r.mask.sum() - f.porosity_exterior)
    iou = (r.mask & f.exterior).sum() / (r.mask | f.exterior).sum()
    assert abs(err) < 1.0 and iou > 0.9


def test_straightened_side_is_not_searched_beyond_max_depth():
    # a clear stack, then a pore-density gradient of the cover at about 64 %
    # of the width: straightening moves it within max_depth, where it must
    # not be taken as the outermost interface (IoU 0.41 before)
    err, iou = _truth_trim(64020, width=1024, height=768, stack="right")
    assert iou > 0.95 and abs(err) < 0.5


def test_track_follows_a_wavy_interface():
    from poromet.autotrim.straighten import _shift_lines, _track

    rng = np.random.default_rng(5)
    T, S = 256, 300
    t = np.arange(T)
    course = 60 + 10 * np.sin(2 * np.pi * t / 170)             # working px from the edge
    s = np.arange(S)[None, :]
    o = np.where(s < course[:, None], 0.8, 0.4) + rng.normal(0, 0.05, (T, S))
    o = o.astype(np.float32)
    u = np.zeros(7)
    u[:3] = -1 / np.sqrt(3)                                    # quantiles fall into the exterior
    found = _track(o, u, 60, wl=6, wr=36, tol=18)
    assert np.abs(found - course).max() <= 4 and np.abs(found - course).mean() <= 2
    d = np.round(found - found.min()).astype(int)
    straight = _shift_lines(o, d)
    edge = (straight > 0.6).sum(axis=1)
    assert edge.max() - edge.min() <= 6


def test_known_stack_view_needs_strips_lined_up():
    """In a view re-tracked along a candidate interface, the candidate is kept
    only when the strips show it at one depth (a pore cluster's course, or a
    change found at different depths in different strips, is not a layer)."""
    from poromet.autotrim.profiles import _profiles, _side_boundary

    rng = np.random.default_rng(7)
    T, S = 256, 400
    s = np.arange(S)[None, :]

    def field(depths):
        b = np.repeat(np.asarray(depths, float), T // len(depths))[:, None]
        o = np.where(s < b, 0.7, 0.45) + rng.normal(0, 0.08, (T, S))
        return _profiles(o.astype(np.float32))

    kw = dict(max_depth=250, min_depth=4, known=True)
    res, _, _ = _side_boundary(field([80] * 8), **kw)
    assert res is not None and np.all(np.abs(res[0] - 80) <= 3)
    res, _, _ = _side_boundary(field([80, 80, 80, 80, 105, 105, 105, 105]), **kw)
    assert res is None


@pytest.mark.parametrize("seed,kw", [
    # a bright collector, then a thick low-porosity anode against a very
    # porous cover (left side): the straightened view sharpened the
    # collector, its band of oriented texture ended at the collector and the
    # cover's interface beyond it was refused (-4.4 pp, IoU 0.84 before)
    (921952892, dict(porosity=0.34824, bit_depth=8, stack=True, info_bar=107,
                     pixel_size_um=0.060553)),
    # the same on the right: the outer layer (pores drawn out along it) was
    # left in, the straightened band replacing the deeper original one
    # (IoU 0.82 before)
    (95030, dict(stack="right")),
])
def test_band_beyond_a_sharpened_collector_is_removed(seed, kw):
    err, iou = _truth_trim(seed, width=1024, height=768, **kw)
    assert iou > 0.9 and abs(err) < 2.0


def test_boundary_beyond_the_middle_is_the_opposite_sides_stack():
    """A wavy stack on the right whose collector is the only clear interface
    across the field: seen from the left edge (the exterior's), that
    interface lies beyond the middle, and the whole exterior was cut as the
    "stack" (IoU 0.003, -27.9 pp before).  The exterior is the wider part:
    the stack is the right side's."""
    synth = pytest.importorskip("poromet.synth")
    f = synth.generate_field(381337928, width=1024, height=768, porosity=0.41032, bit_depth=8,
                             stack=True, info_bar=55, pixel_size_um=0.13918)
    assert f.stack_side == "right"
    stacks = find_stack(f.image, info_bar_px=f.info_bar_px)
    assert [s.side for s in stacks] == ["right"]
    assert stacks[0].depth_px < 0.5 * f.image.shape[1]
    err, iou = _truth_trim(381337928, width=1024, height=768, porosity=0.41032, bit_depth=8,
                           stack=True, info_bar=55, pixel_size_um=0.13918)
    assert iou > 0.85 and abs(err) < 1.5


def test_deep_boundary_is_dropped_when_the_opposite_side_holds_the_stack():
    """The same interface seen from both edges: when the side it is near
    holds the stack already, the deep band of the other side is dropped, not
    moved over (moved over, it cut this field's exterior to IoU 0.81)."""
    from poromet.autotrim.detect import _deep

    synth = pytest.importorskip("poromet.synth")
    f = synth.generate_field(64011, width=1024, height=768, stack="bottom")
    stacks = find_stack(f.image, info_bar_px=f.info_bar_px)
    assert [s.side for s in stacks] == ["bottom"]
    assert not any(_deep(s, (f.image.shape[0] - f.info_bar_px, f.image.shape[1])) for s in stacks)
    err, iou = _truth_trim(64011, width=1024, height=768, stack="bottom")
    assert iou > 0.9 and abs(err) < 1.0


# stack-free fields of batch_truth sets whose cover changes its pore density
# sharply: the step was cut as a stack (99991 S06_f09 -9.3 pp, S08_f06
# -6.0 pp, 27182 S08_f05 -9.6 pp, trimming alone, before layered-band
# evidence was required)
_DENSITY_STEPS = [
    (1867966731, dict(porosity=0.153013505192533, bit_depth=8, info_bar=105,
                      pixel_size_um=0.09430431381546166)),
    (1543356835, dict(porosity=0.36435093474256786, bit_depth=8, info_bar=0,
                      pixel_size_um=0.07834726552070578)),
    (973473323, dict(porosity=0.1637007803705287, bit_depth=8, info_bar=119,
                     pixel_size_um=0.1424960117017498)),
]


@pytest.mark.parametrize("seed,kw", _DENSITY_STEPS)
def test_pore_density_step_is_not_a_stack(seed, kw):
    synth = pytest.importorskip("poromet.synth")
    f = synth.generate_field(seed, width=1024, height=768, stack=False, **kw)
    assert find_stack(f.image, info_bar_px=f.info_bar_px) == []
    err, iou = _truth_trim(seed, width=1024, height=768, stack=False, **kw)
    assert iou == 1.0 and err == 0.0


@pytest.mark.parametrize("seed,kw", [
    # stacks whose outer layer is a smooth, nearly pore-free layer with
    # hardly any oriented texture and only a moderate step (statistic 5-6):
    # their evidence of layers is the smooth layer itself
    (1700583285, dict(porosity=0.13220920573405592, bit_depth=16, info_bar=104,
                      pixel_size_um=0.06226697955229905)),
    (1668773016, dict(porosity=0.3846463541690597, bit_depth=8, info_bar=0,
                      pixel_size_um=0.0829409578608725)),
])
def test_smooth_outer_layer_is_evidence_of_a_stack(seed, kw):
    err, iou = _truth_trim(seed, width=1024, height=768, stack=True, **kw)
    assert iou > 0.9 and abs(err) < 1.5


def test_weak_stack_with_a_collector_is_found():
    """A wavy stack (active, collector, active) whose interfaces all stayed
    below acceptance (statistic 3.6) and whose pores are drawn out along the
    side like the cover's: it was missed (99991 S09_f02, trimming alone
    -2.6 pp).  Its bright dense collector is evidence enough to take the
    weaker interface."""
    kw = dict(width=1024, height=768, porosity=0.27491553331967833, bit_depth=16, stack=True,
              info_bar=116, pixel_size_um=0.14134149194345277)
    synth = pytest.importorskip("poromet.synth")
    f = synth.generate_field(1204964751, **kw)
    assert [s.side for s in find_stack(f.image, info_bar_px=f.info_bar_px)] == [f.stack_side]
    err, iou = _truth_trim(1204964751, **kw)
    assert iou > 0.9 and abs(err) < 1.0


def test_oriented_pores_of_the_cover_do_not_extend_the_cut():
    """A dark 16-bit field (4711 S06_f01): a clear stack on top, then a zone
    of the cover, dense with pores drawn out along the side, that ends in a
    pore-density step.  The band of oriented texture ran on to the step and
    the cut followed it ~120 px too deep (trimming alone -4.4 pp, IoU 0.73):
    beyond a clear texture boundary the band is followed only where it is
    oriented like a layer."""
    kw = dict(width=1024, height=768, porosity=0.12367473957951113, bit_depth=16, stack=True,
              info_bar=48, pixel_size_um=0.12065569646020669)
    err, iou = _truth_trim(829841726, **kw)
    assert iou > 0.9 and abs(err) < 2.0


def test_weak_stack_whose_strips_disagree_a_little_is_found_by_its_collector():
    """autotrim_accuracy seed 789000, field 789015: a stack on top
    (electrolyte, active, collector, active) against a very porous cover,
    statistic 4.3 (below acceptance, the bottom side 3.6 close behind) and
    a step consistency of 0.88 along the side: missed (IoU 0.66, trimming
    alone -10.5 pp).  With a collector in the band, an interface that agrees
    along the side as well as an accepted one must is taken.  (Since the top
    side's orientation is read without the streak median, the band of
    oriented texture finds it, 264 px deep for 245: IoU 0.895, -1.3 pp.)"""
    err, iou = _truth_trim(789015, width=1024, height=768, stack="top")
    assert iou > 0.88 and abs(err) < 1.5


def test_stack_against_a_cover_with_pores_drawn_out_along_it_keeps_its_evidence():
    """batch_truth 3005 S09_f03: a dark stack on the left (statistic 5.2)
    against a cover whose own pores are drawn out along the same side, so the
    band's orientation excess over the cover is only 0.14; with the evidence
    level at 0.15 the stack was dropped (trimming alone -5.2 pp)."""
    kw = dict(width=1024, height=768, porosity=0.37166285660210713, bit_depth=8, stack=True,
              info_bar=97, pixel_size_um=0.13364800499890514)
    err, iou = _truth_trim(847226476, **kw)
    assert iou > 0.9 and abs(err) < 1.0


def test_oriented_band_without_any_texture_change_is_not_a_stack():
    """batch_truth 24680 S09_f01: no stack; the left third of the cover has
    sparse, round pores, the rest dense pores drawn out across that side.
    The left side's orientation excess over the far part (0.25) came from
    the far part's opposite orientation, with no texture change at all
    (statistic 1.7): it was cut 254 px deep on orientation alone (+6.4 pp)."""
    kw = dict(width=1024, height=768, porosity=0.22766225770752957, bit_depth=16, stack=False,
              info_bar=108, pixel_size_um=0.10414561287559894)
    err, iou = _truth_trim(564302125, **kw)
    assert iou == 1.0 and err == 0.0


def test_band_beside_an_oriented_cover_keeps_its_level():
    """batch_truth 24680 S04_f02: a stack on the right (electrolyte, anode,
    collector; orientation excess 0.4-0.9) against a cover whose pores are
    drawn out along the same side (excess 0.1-0.25 over the far part).  At
    half the layered level the band ran on into the cover, its median level
    fell below the layered level and the band was dropped; no interface
    passed either: the stack was missed (trimming alone -6.4 pp)."""
    kw = dict(width=1024, height=768, porosity=0.43953194021052383, bit_depth=8, stack=True,
              info_bar=82, pixel_size_um=0.09728350716096422)
    err, iou = _truth_trim(1784288151, **kw)
    assert iou > 0.9 and abs(err) < 1.0


@pytest.mark.parametrize("seed,kw", [
    # a thick dense outer electrolyte (darker solid, few small pores) whose
    # weak interface with the porous cover passed no outer-interface test:
    # only the bright inner layers were cut (-5.5 pp, seed 70707 S01_f02)
    (2017507471, dict(porosity=0.2578, bit_depth=16, stack=True, info_bar=89,
                      pixel_size_um=0.0847)),
])
def test_dense_outer_layer_is_removed(seed, kw):
    err, iou = _truth_trim(seed, width=1024, height=768, **kw)
    assert abs(err) < 2.0 and iou > 0.9


@pytest.mark.parametrize("seed,kw", [
    # batch_truth 4004 S01_f09: a clear stack on the bottom (statistic 8.2 at
    # its true depth); the straightened view took a change of the cover
    # beyond the middle, the band was moved to the top as "the exterior seen
    # from the other edge", showed no layers there and nothing was cut
    # (trimming alone -9.0 pp)
    (1072258841, dict(porosity=0.4058653471804358, bit_depth=8, stack=True, info_bar=0,
                      pixel_size_um=0.11297754835638807)),
    # batch_truth 23232 S08_f08: a wavy stack on the left (statistic 10.1), a
    # weak deeper change beyond the middle taken as its outer interface, the
    # same way lost (-2.5 pp)
    (2127333791, dict(porosity=0.2231570021297385, bit_depth=8, stack=True, info_bar=0,
                      pixel_size_um=0.11619014691714068)),
])
def test_failed_deep_reading_falls_back_to_the_near_half(seed, kw):
    err, iou = _truth_trim(seed, width=1024, height=768, **kw)
    assert iou > 0.9 and abs(err) < 1.0


def test_outer_interface_is_not_refined_onto_a_stronger_inner_one():
    """batch_truth 70707 S09_f08: a dark inner layer and a lighter, dense
    outer electrolyte on the bottom, their interfaces 24 working px apart
    (within the wave tolerance).  The strips of the outer interface were
    refined onto the stronger inner one, the band ended at it, showed no
    smooth layer and was dropped (trimming alone -3.6 pp)."""
    kw = dict(width=1024, height=768, porosity=0.2668374621539552, bit_depth=8, stack=True,
              info_bar=71, pixel_size_um=0.10110863110638137)
    err, iou = _truth_trim(623761060, **kw)
    assert iou > 0.9 and abs(err) < 1.0


def test_uncut_band_with_layers_is_not_a_confident_miss():
    """batch_truth 12121 S08_f09: a stack on the left (smooth layer with fine
    pores drawn out along it) beside a very porous cover whose pore streaks
    run the same way; its interface (statistic 3.6) passes no test and it is
    not cut, but it was reported as a clear "no stack" (confidence 0.92).  A
    band with layers left uncut is flagged."""
    _, iou, conf = _truth_trim_conf(831144345, width=1024, height=768,
                                    porosity=0.42578040560810676, bit_depth=8, stack=True,
                                    info_bar=46, pixel_size_um=0.08146868981911051)
    # either the stack is cut, or the field says it is unsure
    assert iou > 0.9 or conf < TrimSettings().min_confidence
    assert iou > 0.7                       # the stack (~19 % of the field) is all that is wrong


@pytest.mark.parametrize("seed,kw", [
    # a stack on the left; beside it the cover holds pore clusters, then a
    # dense part: the straightened view, re-tracked along the clusters' edge,
    # took that edge for the outer interface (346 px cut for 200; -4.0 pp,
    # seed 45454 S05_f05)
    (454293916, dict(porosity=0.11265, bit_depth=16, stack=True, info_bar=99,
                     pixel_size_um=0.093530)),
    # the same on the right, in a very porous cover (388 px for 242; +7.7 pp,
    # seed 50505 S01_f09)
    (720146918, dict(porosity=0.41809, bit_depth=8, stack=True, info_bar=62,
                     pixel_size_um=0.063596)),
    # a stack on the right whose cover changes grain and pore texture beyond
    # the middle: that change passed acceptance, the band reached beyond the
    # middle and was moved to the left side (513 px cut on the wrong side;
    # seed 8181 S02_f10)
    (2079354905, dict(porosity=0.11435, bit_depth=8, stack=True, info_bar=91,
                      pixel_size_um=0.090642)),
])
def test_pore_cluster_edge_of_the_cover_is_not_the_outer_interface(seed, kw):
    """The edge of a pore cluster of the cover is a texture step of the
    exterior's own material (same solid grey level, not uniform along the
    side): the interface before it is the stack's outer boundary."""
    err, iou = _truth_trim(seed, width=1024, height=768, **kw)
    assert abs(err) < 1.5 and iou > 0.93


def test_uneven_smooth_band_is_not_a_confident_stack():
    """batch_truth 34343 S09_f05: no stack, a cover with large pore clusters;
    a dense zone beside the porous one looked like smooth layers and 410 px
    were cut on the right (trimming alone -12.6 pp) at confidence 0.50.  Its
    step is missing from part of the side (a cluster's round edge), so the
    field is either left whole or flagged."""
    _, iou, conf = _truth_trim_conf(855082054, width=1024, height=768,
                                    porosity=0.4476830764820351, bit_depth=16, stack=False,
                                    info_bar=0, pixel_size_um=0.10311483290605199)
    assert iou > 0.9 or conf < TrimSettings().min_confidence


def test_step_evenness_tells_a_layer_from_a_partial_step():
    from poromet.autotrim.detect import StackSide
    from poromet.autotrim.evidence import _step_evenness
    from poromet.autotrim.profiles import _profiles

    rng = np.random.default_rng(3)
    T, S, k = 256, 256, 1
    o = rng.normal(0.5, 0.05, (T, S)).astype(np.float32)
    layer = o.copy()
    layer[:, :60] += 0.3                          # a layer along the whole side
    part = o.copy()
    part[:96, :60] += 0.3                         # a step on part of the side only
    st = StackSide(side="left", boundary=np.full(T, 60.0 + 1 + 1), strength=5.0,
                   coverage=1.0, interfaces=1)
    assert _step_evenness(_profiles(layer), st, k) > 0.5
    assert _step_evenness(_profiles(part), st, k) < 0.25


def test_top_stack_orientation_survives_the_streak_median():
    """The working image's vertical streak median (9 rows) erases thin
    horizontal structure, the layers and drawn-out pores of a top or bottom
    stack; their orientation is read on the image without it."""
    from poromet.autotrim.orientation import _layered_band, _orientation_maps
    from poromet.autotrim.profiles import _working_image

    rng = np.random.default_rng(5)
    H, W = 768, 1024
    img = _ceramic(rng, (H, W))
    # a top band 200 px deep of thin (2-row) dark lenses drawn out along it
    for y, x in zip(rng.integers(0, 196, 900), rng.integers(0, W, 900)):
        img[y:y + 2, max(0, x - 20):x + 20] = 40
    small, k = _working_image(img)
    plain, _ = _working_image(img, streaks=False)
    S = small.shape[0]
    kw = dict(max_depth=int(0.6 * S), min_depth=4)
    assert _layered_band(_orientation_maps(small), "top", **kw) is None
    dj, level, cover = _layered_band(_orientation_maps(small, plain), "top", **kw)
    assert cover == 1.0 and np.median(dj) * k == pytest.approx(200, abs=24)
    # left and right keep the median's view: a vertical median keeps vertical layers
    assert np.array_equal(_orientation_maps(small, plain)["left"][0],
                          _orientation_maps(small)["left"][0])


@pytest.mark.parametrize("seed,kw", [
    # top or bottom stacks whose layers hold thin pores drawn out along them,
    # against an isotropic cover: the streak median had erased their
    # orientation and no texture step passed (trimming alone -7.2, -12.6,
    # -4.9 pp; never-tuned seeds 100333 S05_f02, 100153 S03_f06, 60606 S01_f08)
    (1323816535, dict(porosity=0.3990573661178663, bit_depth=16, stack=True, info_bar=0,
                      pixel_size_um=0.14827587574669523)),
    (778460591, dict(porosity=0.4372433019150268, bit_depth=8, stack=True, info_bar=93,
                     pixel_size_um=0.07181795166287439)),
    (1556853688, dict(porosity=0.41589305688189554, bit_depth=8, stack=True, info_bar=66,
                      pixel_size_um=0.08503117163820063)),
])
def test_top_or_bottom_stack_with_thin_drawn_out_pores_is_found(seed, kw):
    err, iou = _truth_trim(seed, width=1024, height=768, **kw)
    assert abs(err) < 1.5 and iou > 0.9
