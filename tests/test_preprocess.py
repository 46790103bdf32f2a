"""Tests of poromet.preprocess: 8-bit scaling, denoising, shading, scan lines."""

from __future__ import annotations

import numpy as np
import pytest

from poromet import preprocess as P
from poromet.binarize import binarize, threshold_ij_default
from poromet.errors import PipelineError, PorometError
from poromet.pipeline import PreprocessSettings


def field(seed=0, shape=(192, 256), gain=None, level=170.0, pore=40.0, noise=6.0):
    """A synthetic field: round pores on a solid, optional multiplicative gain."""
    rng = np.random.default_rng(seed)
    H, W = shape
    yy, xx = np.mgrid[:H, :W]
    pores = np.zeros(shape, bool)
    for _ in range(25):
        cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(3, 9)
        pores |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    img = np.where(pores, pore, level) + rng.normal(0, noise, shape)
    if gain is not None:
        img = img * gain
    return np.clip(img, 0, 255), pores


def test_uint8_passthrough_and_dtype():
    img, _ = field()
    u8 = img.astype(np.uint8)
    out = P.to_gray8(u8)
    assert out.dtype == np.float32 and np.array_equal(out, u8.astype(np.float32))


def test_16bit_scaled_by_region_only():
    img, _ = field()
    img16 = (img * 100 + 2000).astype(np.uint16)
    img16[:20] = 65535                      # bright info bar outside the region
    region = np.zeros(img.shape, bool)
    region[20:] = True
    out = P.to_gray8(img16, region)
    assert out[region].max() == pytest.approx(255, abs=0.5)
    assert out[region].min() == pytest.approx(0, abs=0.5)
    # the same picture without the bar maps identically inside the region
    out2 = P.to_gray8(img16[20:], None)
    assert np.allclose(out[20:], out2, atol=1e-3)


def test_float_data_and_errors():
    with pytest.raises(PorometError, match="2-D"):
        P.to_gray8(np.zeros((2, 2, 3)))
    with pytest.raises(PorometError, match="empty"):
        P.preprocess(np.zeros((8, 8), np.uint8), np.zeros((8, 8), bool))
    with pytest.raises(PipelineError, match="preprocess.denoise"):
        P.denoise(np.zeros((8, 8), np.float32), "wavelet", 3)
    with pytest.raises(PipelineError, match="preprocess.background"):
        P.flatten_background(np.zeros((8, 8), np.float32), np.ones((8, 8), bool),
                             method="magic")
    out = P.to_gray8(np.linspace(-1, 1, 64).reshape(8, 8))
    assert out.min() == 0 and out.max() == pytest.approx(255)


@pytest.mark.parametrize("method,size", [("median", 3), ("median", 7), ("gaussian", 1.0),
                                         ("bilateral", 2.0), ("nlmeans", 3.0)])
def test_denoise_reduces_noise_keeps_shape(method, size):
    rng = np.random.default_rng(1)
    img = (150 + rng.normal(0, 10, (64, 64))).astype(np.float32)
    out = P.denoise(img, method, size)
    assert out.shape == img.shape and out.dtype == np.float32
    assert out.std() < 0.8 * img.std()
    assert abs(out.mean() - img.mean()) < 2


def test_flatten_background_removes_shading():
    H, W = 192, 256
    yy, xx = np.mgrid[:H, :W]
    gain = 1.0 + 0.4 * (xx / W - 0.5) * 2          # +-40 % ramp
    img, pores = field(gain=gain, noise=3)
    region = np.ones(img.shape, bool)
    flat = P.flatten_background(img.astype(np.float32), region, scale_px=101)
    solid = ~pores
    left, right = solid & (xx < 40), solid & (xx > W - 40)
    raw_ratio = img[right].mean() / img[left].mean()
    flat_ratio = flat[right].mean() / flat[left].mean()
    assert raw_ratio > 1.8 and abs(flat_ratio - 1) < 0.05
    # a global threshold now finds the pores
    t = threshold_ij_default(flat[region])
    p = binarize(flat, region, t)
    assert abs(p.mean() - pores.mean()) < 0.01


def test_background_uses_region_only():
    img, _ = field(noise=3)
    img = img.astype(np.float32)
    img2 = img.copy()
    img2[:30] = 0                                    # dark frame outside the region
    region = np.zeros(img.shape, bool)
    region[30:] = True
    a = P.preprocess(img, region)
    b = P.preprocess(img2, region)
    # statistics come from the region only: the result inside is nearly identical
    assert np.abs(a[40:] - b[40:]).mean() < 1.0


def test_rolling_ball_and_subtract_run():
    img, pores = field(gain=None, noise=3)
    region = np.ones(img.shape, bool)
    for method in ("subtract", "rolling_ball"):
        out = P.flatten_background(img.astype(np.float32), region, method=method, scale_px=50)
        assert out.shape == img.shape and np.isfinite(out).all()
        assert out[~pores].mean() > out[pores].mean() + 60


def test_scan_line_correction():
    img, pores = field(noise=2)
    img = img.astype(np.float32)
    bright_rows = [40, 41, 120]
    streaked = img.copy()
    streaked[bright_rows] *= 1.3
    region = np.ones(img.shape, bool)
    out = P.correct_scan_lines(np.clip(streaked, 0, 255), region)
    solid = ~pores
    for y in bright_rows:
        assert abs(out[y, solid[y]].mean() / img[y, solid[y]].mean() - 1) < 0.03
    s = PreprocessSettings(scan_lines=True)
    assert P.preprocess(streaked, region, s).shape == img.shape


def test_preprocess_default_shape_and_scale():
    img, _ = field()
    img16 = (img * 50).astype(np.uint16)
    out = P.preprocess(img16, np.ones(img.shape, bool), PreprocessSettings())
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 255
