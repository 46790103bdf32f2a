"""The compiled kernels (poromet.kernels) against the reference path they replace.

Each kernel is checked on seeded inputs against the OpenCV/NumPy code that
gives the same result without Numba (``POROMET_KERNELS=0``); the whole
default segmentation is compared on synthetic fields, pixel by pixel.
"""

import cv2
import numpy as np
import pytest

from poromet import kernels
from poromet.adaptive import (
    LOCAL_RULES,
    fill_dark_floors,
    gradient_magnitude,
    local_threshold,
    tangential_curvature,
)
from poromet.labels import remove_small

needs_numba = pytest.mark.skipif(not kernels.available(),
                                 reason="Numba not installed (pip install poromet[fast])")


@pytest.fixture
def reference(monkeypatch):
    """Run the block under it on the reference path."""
    def use(on: bool):
        monkeypatch.setenv("POROMET_KERNELS", "0" if on else "1")
    return use


def blobs(seed, shape=(150, 170), sigma=2.0, q=30):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
    img = (img - img.min()) / (img.max() - img.min()) * 200 + 20
    return img.astype(np.float32), img < np.percentile(img, q)


@needs_numba
def test_the_environment_switch_chooses_the_reference(reference):
    assert kernels.available()
    reference(True)
    assert not kernels.available()
    with pytest.raises(RuntimeError, match="Numba"):
        kernels.keep_large(np.zeros((3, 3), np.uint8), 1, 2)


@needs_numba
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("min_area", [1, 2, 4, 9, 40])
def test_keep_large_is_remove_small(seed, min_area):
    rng = np.random.default_rng(seed)
    shape = [(60, 80), (1, 50), (37, 1), (5, 5)][seed]
    code = rng.integers(0, 4, shape).astype(np.uint8)
    for level in (1, 2, 3):
        want = remove_small(code >= level, min_area)
        got = kernels.keep_large(code, level, min_area)
        assert got.dtype == bool
        assert np.array_equal(got, want), (level, min_area)


@needs_numba
def test_keep_large_keeps_a_thin_diagonal_and_drops_specks():
    code = np.zeros((20, 20), np.uint8)
    idx = np.arange(2, 8)
    code[idx, idx] = 2                    # a 6-pixel 8-connected diagonal
    code[15, 15] = code[15, 16] = 2       # a 2-pixel speck
    got = kernels.keep_large(code, 2, 4)
    assert got[idx, idx].all() and not got[15, 15:17].any()


@needs_numba
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale", [0.0, 0.6])
def test_threshold_codes_match_the_reference_threshold(seed, scale):
    img, _ = blobs(seed, sigma=1.5 + seed * 0.4)
    region = np.ones(img.shape, bool)
    region[:, :9] = False
    T, t, dark, solid = local_threshold(img, region, blob_depth=0.7)
    grad = np.empty(img.shape, np.float32)
    if scale:
        tangential_curvature(img, scale=scale, add_to=T, gradient_out=grad)
    else:
        grad = gradient_magnitude(img)
    D = T - img
    band = 2.0
    want = ((D > -band).astype(np.uint8) + (D > 0) + (D > band)) * region
    code, g = kernels.threshold_codes(img, region, t=t, dark=dark, solid=solid, blob_depth=0.7,
                                      curvature_scale=scale, band=band, **LOCAL_RULES)
    # the Sobel sums may round differently in the last bit: a pixel whose
    # level is within ~1e-5 of its threshold may fall the other way
    differ = code != want
    assert np.count_nonzero(differ) <= 2
    near_a_level = np.min(np.abs(D[differ][:, None] - np.array([-band, 0, band])), axis=1)
    assert (near_a_level < 1e-4).all()
    assert np.allclose(g, grad, atol=1e-4)
    assert (code[~region] == 0).all() and code.max() == 3


@needs_numba
@pytest.mark.parametrize("seed", range(6))
def test_fill_dark_floors_fused_matches_the_reference(seed, reference):
    img, pores = blobs(seed, q=45 if seed < 3 else 70)
    if seed >= 3:
        img *= 0.6
    region = np.ones(img.shape, bool)
    region[:, :7] = False
    region[-5:] = False
    pores &= region
    grad = gradient_magnitude(img)
    kw = dict(level=120.0 * (0.6 if seed >= 3 else 1), soft_level=135.0, gradient=grad)
    got = fill_dark_floors(pores, img, region, **kw)
    reference(True)
    want = fill_dark_floors(pores, img, region, **kw)
    assert np.array_equal(got, want)
    assert (got >= pores).all()


@needs_numba
def test_region_histogram_kernel_matches_the_numpy_bins(reference):
    from poromet.ijparity import region_histogram

    rng = np.random.default_rng(3)
    v = rng.uniform(-3, 260, (90, 110)).astype(np.float32)
    v[5, :20] = np.arange(20, dtype=np.float32) + 0.5        # ties round up
    region = rng.random(v.shape) > 0.3
    got = region_histogram(v, region)
    want = np.bincount(np.clip(np.floor(v[region].astype(np.float64) + 0.5), 0, 255)
                       .astype(int), minlength=256)
    assert np.array_equal(got, want)
    reference(True)
    assert np.array_equal(region_histogram(v, region), want)


@needs_numba
@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_the_default_segmentation_is_the_same_on_both_paths(seed, reference, tmp_path):
    from poromet.measure import measure_field
    from poromet.synth import generate_field

    f = generate_field(seed, width=400, height=300)
    got, a = measure_field(f.image, roi=tuple(f.rect), return_arrays=True)
    reference(True)
    want, b = measure_field(f.image, roi=tuple(f.rect), return_arrays=True)
    assert np.count_nonzero(a.pores != b.pores) <= 2
    assert got.porosity == pytest.approx(want.porosity, abs=1e-5)
    assert got.porosity_low == pytest.approx(want.porosity_low, abs=1e-5)
    assert got.porosity_high == pytest.approx(want.porosity_high, abs=1e-5)
    assert abs(got.porosity - f.porosity_rect) < 0.03          # and it measures


def test_describe_names_the_path_without_importing_numba(monkeypatch):
    import sys

    monkeypatch.setenv("POROMET_KERNELS", "0")
    assert kernels.describe() == "reference (POROMET_KERNELS=0)"
    assert kernels.loaded() is None
    monkeypatch.setenv("POROMET_KERNELS", "1")
    had = "numba" in sys.modules
    d = kernels.describe()
    assert d.startswith("numba ") or d == "reference (numba not installed)"
    assert ("numba" in sys.modules) == had


def test_a_batch_records_the_segmentation_path(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from poromet.cli import main
    from poromet.synth import generate_field
    import tifffile

    f = generate_field(5, width=256, height=192)
    tifffile.imwrite(tmp_path / "S01_f01.tif", f.image)
    monkeypatch.setenv("POROMET_KERNELS", "0")
    res = CliRunner().invoke(main, ["batch", str(tmp_path), "-o", str(tmp_path / "out"),
                                    "--no-report", "-q", "-j", "1"])
    assert res.exit_code in (0, 1), res.output
    run = json.loads((tmp_path / "out" / "results.json").read_text())["run"]
    assert run["segmentation_kernels"] == "reference (POROMET_KERNELS=0)"


def test_an_unusable_numba_falls_back_to_the_reference_with_a_warning(monkeypatch):
    # e.g. no writable cache location: numba raises RuntimeError at import
    import builtins

    real_import = builtins.__import__

    def fake(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 1 and fromlist and "_jit" in fromlist:
            raise RuntimeError("cannot cache function 'codes': no locator available")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(kernels, "_JIT", None)
    monkeypatch.setattr(kernels, "_FAILURE", "")
    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delenv("POROMET_KERNELS", raising=False)
    with pytest.warns(RuntimeWarning, match="reference path"):
        assert not kernels.available()
    monkeypatch.setattr(builtins, "__import__", real_import)
    if kernels.describe() != "reference (numba not installed)":
        assert kernels.describe().startswith("reference (numba failed to load: RuntimeError")


@needs_numba
@pytest.mark.parametrize("seed", range(4))
def test_floors_agree_when_no_patch_is_bright(seed, reference):
    # every patch darker than the level: the steep-border reference is the
    # median over all border pixels (the reference path once reordered
    # those gradients in place before summing them per patch, so that its
    # soft-border decisions were those of shuffled pixels: a real
    # 63 %-porosity Zeiss image differed by 7248 pixels between the paths)
    img, pores = blobs(seed, q=40)
    region = np.ones(img.shape, bool)
    grad = gradient_magnitude(img)
    kw = dict(level=float(img.max()) + 1, soft_level=float(img.max()) + 1, gradient=grad)
    got = fill_dark_floors(pores, img, region, **kw)
    reference(True)
    want = fill_dark_floors(pores, img, region, **kw)
    assert np.array_equal(got, want)
    assert got.sum() > pores.sum()


# -- the exact kernels: the same bits as the NumPy/OpenCV code they replace ---

@needs_numba
@pytest.mark.parametrize("dtype,bins,lo,hi", [
    (np.uint8, 256, 0, 256), (np.uint16, 65536, 0, 65536), (np.uint16, 3000, 0, 3000),
    (np.float32, 65536, 0.0, 256.0), (np.float32, 300, -2.0, 3.7), (np.float32, 7, 0.5, 100.0)])
@pytest.mark.parametrize("masked", [True, False])
def test_histogram_kernel_counts_what_opencv_counts(dtype, bins, lo, hi, masked):
    rng = np.random.default_rng(bins + masked)
    shape = (83, 121)
    if dtype == np.float32:
        v = rng.uniform(lo - 5, hi + 5, shape).astype(np.float32)
        v[0, :10] = np.float32(lo)                       # the range's ends
        v[1, :10] = np.nextafter(np.float32(hi), np.float32(0))
        v[3, :5] = np.float32(hi)                        # outside: not counted
    else:
        v = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=np.int64).astype(dtype)
        v[0, :20] = bins - 1
        v[1, :20] = min(bins, np.iinfo(dtype).max)      # over the last bin (uint16)
    region = rng.random(shape) > 0.4 if masked else None
    mask = None if region is None else region.view(np.uint8)
    want = cv2.calcHist([v], [0], mask, [bins], [lo, hi]).ravel().astype(np.int64)
    got = kernels.histogram(kernels._kernels(), v, region, bins, lo, hi)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    if dtype == np.float32:
        # NaN is not counted (OpenCV 5 counts it in the last bin; the reader
        # replaces NaN pixels before any histogram)
        v[:, 0] = np.nan
        nan_free = kernels.histogram(kernels._kernels(), v, region, bins, lo, hi)
        keep = np.ones(shape, bool) if region is None else region.copy()
        inside = (v[keep] >= lo) & (v[keep] < hi)
        assert nan_free.sum() == np.count_nonzero(inside)


@needs_numba
@pytest.mark.parametrize("seed", range(6))
def test_pair_median_is_numpys_median_of_the_differences(seed):
    rng = np.random.default_rng(seed)
    shape = [(70, 90), (1, 40), (40, 2), (64, 64), (33, 47), (50, 50)][seed]
    # quantized values make ties and equal differences, the hard case
    img = (np.round(rng.normal(150, 6, shape) * 4) / 4).astype(np.float32)
    img[rng.random(shape) < 0.2] = 20.0
    region = rng.random(shape) > 0.15
    thr = np.float32(100.0)
    above = (img > thr) & region
    m = above[:, 1:] & above[:, :-1]
    d = np.abs(img[:, 1:] - img[:, :-1])
    n, med = kernels.pair_median(kernels._kernels(), img, region, 100.0)
    assert n == np.count_nonzero(m)
    if n:
        want = np.median(d[m])
        assert med.dtype == np.float32 and med == want
    big = img.copy()
    big[0, 0], big[0, 1] = 1000.0, 300.0                 # a difference of 700
    region2 = region.copy()
    region2[0, :2] = True
    if shape[1] > 1:
        assert kernels.pair_median(kernels._kernels(), big, region2, 100.0)[1] is None


@needs_numba
@pytest.mark.parametrize("seed", range(4))
def test_noise_sigma_is_the_same_on_both_paths(seed, reference):
    from poromet.adaptive import noise_sigma

    img, region = blobs(seed, shape=(300, 260 + seed))
    img += np.random.default_rng(seed).normal(0, 3, img.shape).astype(np.float32)
    got = noise_sigma(img, region | (seed % 2 == 0), 90.0)
    reference(True)
    assert got == noise_sigma(img, region | (seed % 2 == 0), 90.0) and got > 0


@needs_numba
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_unit_scale_and_the_final_scaling_equal_numpys_float32(dtype):
    rng = np.random.default_rng(7)
    data = rng.integers(0, np.iinfo(dtype).max + 1, (61, 77), dtype=np.int64).astype(dtype)
    lo, hi = 13.0, float(np.iinfo(dtype).max) * 0.7
    k = kernels._kernels()
    want = data.astype(np.float32)
    want -= np.float32(lo)
    want *= np.float32(1.0 / (hi - lo))
    np.clip(want, 0, 1.5, out=want)
    got = kernels.unit_scale(k, data, lo, hi)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))       # the same bits
    bg = rng.uniform(0.2, 1.7, data.shape).astype(np.float32)
    f = got.copy()
    scale = 170.0 / 0.93
    assert kernels.divide_scale_clip(k, f, bg, scale)
    want /= bg
    want *= np.float32(scale)
    np.clip(want, 0, 255, out=want)
    assert np.array_equal(f.view(np.uint32), want.view(np.uint32))
    assert not kernels.divide_scale_clip(k, f[:, ::2], bg[:, ::2], scale)   # not contiguous


@needs_numba
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_normalize_field_is_the_same_bits_on_both_paths(dtype, reference):
    from poromet.adaptive import normalize_field
    from poromet.synth import generate_field

    f = generate_field(21, width=320, height=240, bit_depth=8 if dtype == np.uint8 else 16)
    region = np.zeros(f.image.shape, bool)
    x, y, w, h = f.rect
    region[y:y + h, x:x + w] = True
    got = normalize_field(f.image, region)
    reference(True)
    want = normalize_field(f.image, region)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@needs_numba
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("step", [1, 2, 3])
def test_fine_histogram_kernel_gives_the_reference_bins(seed, step, reference):
    from poromet.adaptive import _fine_histogram, field_levels

    img, region = blobs(seed, shape=(241, 333))
    img[5:9, 7:30] = 0.0                                   # the void floor, exactly 0
    img, region = img[::step, ::step], region[::step, ::step]     # strided views, as field_levels
    got = _fine_histogram(img, region)
    levels = field_levels(img, region)
    empty = _fine_histogram(img, np.zeros(img.shape, bool))
    reference(True)
    want = _fine_histogram(img, region)
    assert np.array_equal(got[0], want[0]) and got[1:] == want[1:]
    assert got[0].sum() == np.count_nonzero(region) > 0
    assert levels == field_levels(img, region)
    assert empty is None and _fine_histogram(img, np.zeros(img.shape, bool)) is None


@needs_numba
def test_fine_histogram_kernel_leaves_negative_values_to_the_reference():
    k = kernels._kernels()
    img, region = blobs(3)
    assert kernels.fine_histogram(k, img, region, 3000) is not None
    img[region.nonzero()[0][0], region.nonzero()[1][0]] = -1.0
    assert kernels.fine_histogram(k, img, region, 3000) is None
