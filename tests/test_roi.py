"""Tests for poromet.roi: sidecars, --roi strings, trimming regions."""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from poromet.errors import PorometError, RoiError
from poromet.measure import count_pixels
from poromet.pipeline import TrimSettings
from poromet.records import Region
from poromet.roi import (RoiWarning, find_sidecar, is_sidecar, parse_roi_string,
                         polygon_mask, trim_region)

roifile = pytest.importorskip("roifile")
cv2 = pytest.importorskip("cv2")
from roifile import ROI_TYPE, ImagejRoi  # noqa: E402

SHAPE = (80, 100)   # H, W
REALDATA = Path(__file__).parents[2] / "shared" / "realdata"


def rect_mask(x, y, w, h, shape=SHAPE):
    m = np.zeros(shape, bool)
    m[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
    return m


def even_odd_reference(points, shape):
    """Brute force: is each pixel centre inside (ray casting, even-odd)?"""
    pts = np.asarray(points, float)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    cx, cy = xx.ravel() + 0.5, yy.ravel() + 0.5
    inside = np.zeros(cx.size, bool)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for i in range(len(pts)):
        crosses = ((y0[i] <= cy) & (cy < y1[i])) | ((y1[i] <= cy) & (cy < y0[i]))
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = x0[i] + (cy - y0[i]) * (x1[i] - x0[i]) / (y1[i] - y0[i])
        inside ^= crosses & (cx < xi)
    return inside.reshape(shape)


def write_json(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def write_png(path, arr):
    assert cv2.imwrite(str(path), arr)
    return path


def imagej_rect(x, y, w, h, roitype=ROI_TYPE.RECT):
    return ImagejRoi(roitype=roitype, left=x, top=y, right=x + w, bottom=y + h)


# -- sidecars -------------------------------------------------------------------

def test_find_sidecar_priority_json_mask_roi(tmp_path):
    img = tmp_path / "S01_f01.tif"
    img.touch()
    assert find_sidecar(img) is None
    imagej_rect(1, 2, 3, 4).tofile(tmp_path / "S01_f01.roi")
    assert find_sidecar(img) == tmp_path / "S01_f01.roi"
    write_png(tmp_path / "S01_f01.mask.png", np.full(SHAPE, 255, np.uint8))
    assert find_sidecar(img) == tmp_path / "S01_f01.mask.png"
    write_json(tmp_path / "S01_f01.roi.json", {"rect": [1, 2, 3, 4]})
    assert find_sidecar(str(img)) == tmp_path / "S01_f01.roi.json"
    # another image's sidecar is not ours
    assert find_sidecar(tmp_path / "S01_f02.tif") is None


def test_find_sidecar_ome_tif(tmp_path):
    img = tmp_path / "a.ome.tif"
    write_json(tmp_path / "a.roi.json", {"rect": [0, 0, 5, 5]})
    assert find_sidecar(img) == tmp_path / "a.roi.json"
    write_json(tmp_path / "a.ome.roi.json", {"rect": [0, 0, 5, 5]})
    assert find_sidecar(img) == tmp_path / "a.ome.roi.json"   # most specific stem first


def test_find_sidecar_keeps_dots_in_stem(tmp_path):
    img = tmp_path / "LLZO_1.5kV.tif"
    write_json(tmp_path / "LLZO_1.roi.json", {"rect": [0, 0, 5, 5]})
    assert find_sidecar(img) is None
    write_json(tmp_path / "LLZO_1.5kV.roi.json", {"rect": [0, 0, 5, 5]})
    assert find_sidecar(img) == tmp_path / "LLZO_1.5kV.roi.json"


@pytest.mark.parametrize("name,expected", [
    ("a.roi.json", True), ("a.mask.png", True), ("a.roi", True), ("dir/S 01.ROI", True),
    ("a.MASK.PNG", True), ("a.tif", False), ("a.png", False), ("a.json", False),
    ("mask.png", False), ("a.roi.tif", False), (".roi", False),
])
def test_is_sidecar(name, expected):
    assert is_sidecar(name) is expected


# -- --roi strings ---------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("10,20,300,200", (10, 20, 300, 200)),
    (" 10 , 20,300 ,200 ", (10, 20, 300, 200)),
    ("-5,0,1,1", (-5, 0, 1, 1)),
])
def test_parse_roi_string(text, expected):
    assert parse_roi_string(text) == expected


@pytest.mark.parametrize("text,match", [
    ("10,20,300", "got 3 values"),
    ("10,20,300,200,5", "got 5 values"),
    ("", "got 1 values"),
    ("10,20,3e2,200", "'3e2' is not an integer"),
    ("a,b,c,d", "'a' is not an integer"),
    ("10,20,0,200", "must be >= 1"),
    ("10,20,300,-2", "must be >= 1"),
])
def test_parse_roi_string_errors(text, match):
    with pytest.raises(RoiError, match=match) as info:
        parse_roi_string(text)
    assert "X,Y,W,H" in str(info.value)          # says what is allowed


# -- rectangles and polygons --------------------------------------------------------

def test_rect_tuple_is_the_slice():
    r = trim_region(SHAPE, roi=(10, 20, 30, 40))
    assert isinstance(r, Region)
    assert r.mask.shape == SHAPE and r.mask.dtype == bool
    np.testing.assert_array_equal(r.mask, rect_mask(10, 20, 30, 40))
    assert (r.source, r.description, r.warnings) == ("user", "rect 10,20,30,40 (user)", ())


def test_rect_string_is_parsed():
    r = trim_region(SHAPE, roi="10,20,30,40")
    np.testing.assert_array_equal(r.mask, rect_mask(10, 20, 30, 40))


@pytest.mark.parametrize("seed", range(5))
def test_rect_as_polygon_equals_rect(seed):
    rng = np.random.default_rng(seed)
    x, y = (int(v) for v in rng.integers(0, 50, 2))
    w, h = (int(v) for v in rng.integers(1, 30, 2))
    rect = trim_region(SHAPE, roi={"rect": [x, y, w, h]}).mask
    poly = trim_region(SHAPE, roi={"polygon": [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]}).mask
    # vertices on pixel corners: exactly the same pixels (pixel-centre rule)
    np.testing.assert_array_equal(rect, poly)
    assert rect.sum() == w * h
    # vertices shifted by less than half a pixel: differs at most by the edge rows/columns
    d = float(rng.uniform(-0.49, 0.49))
    shifted = trim_region(SHAPE, roi={"polygon": [[x + d, y + d], [x + w + d, y + d],
                                                  [x + w + d, y + h + d], [x + d, y + h + d]]}).mask
    np.testing.assert_array_equal(rect, shifted)


@pytest.mark.parametrize("seed", range(8))
def test_polygon_mask_matches_pixel_centre_ray_casting(seed):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-10, 110, (int(rng.integers(3, 25)), 2))   # self-intersecting, clipped
    np.testing.assert_array_equal(polygon_mask(pts, SHAPE), even_odd_reference(pts, SHAPE))


def test_polygon_with_hole_even_odd():
    outer = [[10, 10], [60, 10], [60, 50], [10, 50]]
    hole = [[20, 20], [30, 20], [30, 30], [20, 30]]
    m = polygon_mask([np.array(outer), np.array(hole)], SHAPE)
    assert m.sum() == 50 * 40 - 10 * 10
    assert not m[25, 25] and m[15, 15]


def test_triangle_area_close_to_geometry():
    m = polygon_mask([[0, 0], [100, 0], [0, 80]], SHAPE)
    assert abs(int(m.sum()) - 100 * 80 / 2) <= 100      # within one edge of pixels


# -- JSON sidecars --------------------------------------------------------------------

def test_json_rect_sidecar(tmp_path):
    p = write_json(tmp_path / "S01_f01.roi.json", {"rect": [10, 20, 30, 40], "comment": "x"})
    r = trim_region(SHAPE, roi=p)
    np.testing.assert_array_equal(r.mask, rect_mask(10, 20, 30, 40))
    assert r.source == "sidecar"
    assert r.description == "rect 10,20,30,40 from S01_f01.roi.json"


def test_json_polygon_sidecar(tmp_path):
    pts = [[5, 5], [90, 12], [50, 70]]
    p = write_json(tmp_path / "a.roi.json", {"polygon": pts})
    r = trim_region(SHAPE, roi=str(p))
    np.testing.assert_array_equal(r.mask, even_odd_reference(pts, SHAPE))
    assert r.description.startswith("polygon (3 vertices") and "a.roi.json" in r.description


@pytest.mark.parametrize("text,match", [
    ("{not json", "not valid JSON"),
    ('[[1, 2, 3, 4]]', "top level is list"),
    ('{"rectangle": [1, 2, 3, 4]}', "unknown key 'rectangle'"),
    ('{"rect": [1, 2, 3, 4], "polygon": [[0, 0], [1, 0], [1, 1]]}', "exactly one of"),
    ('{"comment": "no shape"}', "exactly one of"),
    ('{"rect": [1, 2, 3]}', "rect is"),
    ('{"rect": "1,2,3,4"}', "rect is"),
    ('{"rect": [1, "2", 3, 4]}', "rect y is '2'"),
    ('{"rect": [1, 2, true, 4]}', "rect w is True"),
    ('{"rect": [1, 2, -30, 4]}', "width -30"),
    ('{"rect": [1, 2, NaN, 4]}', "finite"),
    ('{"polygon": [[0, 0], [1, 1]]}', "2 vertices"),
    ('{"polygon": [[0, 0], [1, 1], [2]]}', "vertex 2 is"),
    ('{"polygon": [[0, 0], [1, 1], [2, null]]}', "vertex 2 y is None"),
])
def test_json_errors_name_file_and_problem(tmp_path, text, match):
    p = tmp_path / "bad.roi.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(RoiError, match=match) as info:
        trim_region(SHAPE, roi=p)
    assert str(p) in str(info.value)


def test_json_error_says_what_is_allowed(tmp_path):
    p = write_json(tmp_path / "bad.roi.json", {"rect": [1, 2, -3, 4]})
    with pytest.raises(RoiError, match=r"allowed: \[x, y, w, h\]"):
        trim_region(SHAPE, roi=p)


def test_dict_roi_is_user_and_checked():
    r = trim_region(SHAPE, roi={"polygon": [[0, 0], [10, 0], [10, 10], [0, 10]]})
    assert r.source == "user" and r.mask.sum() == 100
    with pytest.raises(RoiError, match="unknown key 'poly'"):
        trim_region(SHAPE, roi={"poly": []})


# -- mask PNG sidecars ------------------------------------------------------------------

def test_mask_png_nonzero_is_region(tmp_path):
    rng = np.random.default_rng(3)
    arr = (rng.random(SHAPE) < 0.3).astype(np.uint8) * rng.integers(1, 256, SHAPE, dtype=np.uint8)
    p = write_png(tmp_path / "f.mask.png", arr)
    r = trim_region(SHAPE, roi=p)
    np.testing.assert_array_equal(r.mask, arr != 0)
    assert r.source == "sidecar" and "f.mask.png" in r.description


def test_mask_png_16bit_and_rgba(tmp_path):
    m16 = np.zeros(SHAPE, np.uint16)
    m16[5:15, 5:25] = 1000
    r = trim_region(SHAPE, roi=write_png(tmp_path / "a.mask.png", m16))
    assert r.mask.sum() == 200
    rgba = np.zeros(SHAPE + (4,), np.uint8)
    rgba[..., :3] = 255              # white everywhere ...
    rgba[10:20, 10:40, 3] = 255      # ... but opaque only here
    r = trim_region(SHAPE, roi=write_png(tmp_path / "b.mask.png", rgba))
    np.testing.assert_array_equal(r.mask, rect_mask(10, 10, 30, 10))


def test_mask_png_wrong_shape(tmp_path):
    p = write_png(tmp_path / "f.mask.png", np.full((70, 100), 255, np.uint8))
    with pytest.raises(RoiError, match=r"mask is 100x70 .* image is 100x80") as info:
        trim_region(SHAPE, roi=p)
    assert str(p) in str(info.value) and "10 rows shorter" in str(info.value)


def test_mask_png_empty_and_unreadable(tmp_path):
    p = write_png(tmp_path / "z.mask.png", np.zeros(SHAPE, np.uint8))
    with pytest.raises(RoiError, match="contains no pixel") as info:
        trim_region(SHAPE, roi=p)
    assert str(p) in str(info.value)
    bad = tmp_path / "x.mask.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(RoiError, match="cannot read mask image"):
        trim_region(SHAPE, roi=bad)


# -- ImageJ ROIs ------------------------------------------------------------------------

def test_imagej_rect(tmp_path):
    p = tmp_path / "f.roi"
    imagej_rect(10, 20, 30, 40).tofile(p)
    r = trim_region(SHAPE, roi=p)
    np.testing.assert_array_equal(r.mask, rect_mask(10, 20, 30, 40))
    assert r.description == "ImageJ rect 10,20,30,40 from f.roi" and r.source == "sidecar"


def test_imagej_oval(tmp_path):
    p = tmp_path / "o.roi"
    imagej_rect(10, 20, 60, 40, ROI_TYPE.OVAL).tofile(p)
    m = trim_region(SHAPE, roi=p).mask
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    ref = ((xx + 0.5 - 40) / 30) ** 2 + ((yy + 0.5 - 40) / 20) ** 2 < 1
    np.testing.assert_array_equal(m, ref)
    assert abs(m.sum() - np.pi * 30 * 20) < 0.03 * np.pi * 30 * 20
    assert not (m & ~rect_mask(10, 20, 60, 40)).any()


@pytest.mark.parametrize("roitype", [ROI_TYPE.POLYGON, ROI_TYPE.FREEHAND, ROI_TYPE.TRACED])
def test_imagej_polygon_types(tmp_path, roitype):
    pts = [[12, 8], [80, 15], [70, 60], [30, 72], [5, 40]]
    roi = ImagejRoi.frompoints(pts)
    roi.roitype = roitype
    roi.tofile(tmp_path / "p.roi")
    r = trim_region(SHAPE, roi=tmp_path / "p.roi")
    np.testing.assert_array_equal(r.mask, even_odd_reference(pts, SHAPE))
    assert r.description.startswith(f"ImageJ {roitype.name.lower()} (5 vertices")


def test_imagej_subpixel_freehand_matches_json_polygon(tmp_path):
    rng = np.random.default_rng(7)
    ang = np.sort(rng.uniform(0, 2 * np.pi, 40))
    rad = rng.uniform(20, 35, 40)
    pts = np.c_[50 + rad * np.cos(ang), 40 + rad * np.sin(ang)].astype(np.float32)
    ImagejRoi.frompoints(pts).tofile(tmp_path / "s.roi")      # float: subpixel coordinates
    a = trim_region(SHAPE, roi=tmp_path / "s.roi").mask
    b = trim_region(SHAPE, roi={"polygon": pts.tolist()}).mask
    np.testing.assert_array_equal(a, b)


def test_imagej_composite_with_hole(tmp_path):
    path = [0, 10, 5, 1, 60, 5, 1, 60, 45, 1, 10, 45, 4,
            0, 20, 15, 1, 40, 15, 1, 40, 30, 1, 20, 30, 4]
    mc = np.array(path, np.float32)
    ImagejRoi(roitype=ROI_TYPE.RECT, left=10, top=5, right=60, bottom=45,
              shape_roi_size=len(mc), multi_coordinates=mc).tofile(tmp_path / "c.roi")
    r = trim_region(SHAPE, roi=tmp_path / "c.roi")
    np.testing.assert_array_equal(r.mask, rect_mask(10, 5, 50, 40) & ~rect_mask(20, 15, 20, 15))
    assert r.description.startswith("ImageJ composite (2 parts")


def test_imagej_rounded_and_subpixel_rect(tmp_path):
    ImagejRoi(roitype=ROI_TYPE.RECT, left=10, top=5, right=70, bottom=45,
              rounded_rect_arc_size=16).tofile(tmp_path / "rr.roi")
    m = trim_region(SHAPE, roi=tmp_path / "rr.roi").mask
    assert not (m & ~rect_mask(10, 5, 60, 40)).any()
    assert m[25, 10] and m[5, 40] and not m[5, 10] and not m[44, 69]      # corners cut
    assert abs(int(m.sum()) - (60 * 40 - (4 - np.pi) * 8 ** 2)) <= 8
    sub = ImagejRoi(roitype=ROI_TYPE.RECT, left=10, top=5, right=41, bottom=26, version=228,
                    options=roifile.ROI_OPTIONS.SUB_PIXEL_RESOLUTION,
                    xd=10.4, yd=5.6, widthd=30.2, heightd=20.0)
    sub.tofile(tmp_path / "sr.roi")
    # centres 10.5 .. 40.5 lie in [10.4, 40.6); centres 6.5 .. 25.5 in [5.6, 25.6)
    np.testing.assert_array_equal(trim_region(SHAPE, roi=tmp_path / "sr.roi").mask,
                                  rect_mask(10, 6, 31, 20))


def test_imagej_zip_is_union(tmp_path):
    p = tmp_path / "set.zip"
    roifile.roiwrite(p, [imagej_rect(0, 0, 10, 10), imagej_rect(50, 50, 10, 5)])
    r = trim_region(SHAPE, roi=p)
    np.testing.assert_array_equal(r.mask, rect_mask(0, 0, 10, 10) | rect_mask(50, 50, 10, 5))


def test_imagej_line_and_garbage_rejected(tmp_path):
    line = ImagejRoi(roitype=ROI_TYPE.LINE, x1=1, y1=1, x2=50, y2=40, left=1, top=1,
                     right=50, bottom=40)
    line.tofile(tmp_path / "l.roi")
    with pytest.raises(RoiError, match="line ROI, which has no area.*allowed: rect, oval"):
        trim_region(SHAPE, roi=tmp_path / "l.roi")
    (tmp_path / "g.roi").write_bytes(b"hello, not a roi" * 8)
    with pytest.raises(RoiError, match="not a readable ImageJ ROI") as info:
        trim_region(SHAPE, roi=tmp_path / "g.roi")
    assert "g.roi" in str(info.value)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(RoiError, match="region file not found"):
        trim_region(SHAPE, roi=tmp_path / "nope.roi.json")
    (tmp_path / "r.txt").write_text("10,20,30,40")
    with pytest.raises(RoiError, match="unknown region file type '.txt'"):
        trim_region(SHAPE, roi=tmp_path / "r.txt")
    with pytest.raises(RoiError, match="allowed: None"):
        trim_region(SHAPE, roi=3.5)


# -- clipping, empty regions ---------------------------------------------------------------

def test_rect_partly_outside_is_clipped_with_warning():
    with pytest.warns(RoiWarning, match=r"rect 90,-5,30,20 \(user\) extends beyond the 100x80 "
                                        r"image; clipped to 90,0,10,15"):
        r = trim_region(SHAPE, roi=(90, -5, 30, 20))
    np.testing.assert_array_equal(r.mask, rect_mask(90, 0, 10, 15))
    assert len(r.warnings) == 1 and "clipped" in r.warnings[0]


def test_polygon_partly_outside_is_clipped_with_warning(tmp_path):
    p = write_json(tmp_path / "a.roi.json", {"polygon": [[-20, 10], [50, 10], [50, 120]]})
    with pytest.warns(RoiWarning, match=r"a\.roi\.json extends beyond .* \(x -20\.\.50, y 10\.\.120\)"):
        r = trim_region(SHAPE, roi=p)
    assert r.mask.any() and r.warnings


def test_rect_inside_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trim_region(SHAPE, roi=(0, 0, SHAPE[1], SHAPE[0]))


def test_region_outside_image_is_an_error(tmp_path):
    p = write_json(tmp_path / "S02.roi.json", {"rect": [200, 10, 30, 30]})
    with pytest.raises(RoiError, match="contains no pixel.*nothing of it is inside") as info:
        trim_region(SHAPE, roi=p)       # an error, not a warning as well
    assert str(p) in str(info.value)


def test_tiny_polygon_between_pixel_centres_is_empty():
    with pytest.raises(RoiError, match="rect|polygon"):
        trim_region(SHAPE, roi={"polygon": [[10.6, 10.6], [11.4, 10.6], [11.4, 11.4]]})


# -- info bar -----------------------------------------------------------------------------

def test_whole_image_above_info_bar():
    r = trim_region(SHAPE, info_bar_px=12)
    assert r.source == "whole" and r.description == "whole image above info bar (12 px)"
    assert r.mask[:68].all() and not r.mask[68:].any()
    assert r.fraction == pytest.approx(68 / 80)


@pytest.mark.parametrize("mode", ["sidecar", "none"])
def test_no_roi_is_whole_image(mode):
    r = trim_region(SHAPE, trim=TrimSettings(mode=mode))
    assert r.mask.all() and r.source == "whole"


def _sources(tmp_path):
    """The same region (x 10..70, y 30..80) in every format."""
    full = np.zeros(SHAPE, np.uint8)
    full[30:80, 10:70] = 255
    imagej_rect(10, 30, 60, 50).tofile(tmp_path / "r.roi")
    return {
        "tuple": (10, 30, 60, 50),
        "dict": {"polygon": [[10, 30], [70, 30], [70, 80], [10, 80]]},
        "json": write_json(tmp_path / "r.roi.json", {"rect": [10, 30, 60, 50]}),
        "png": write_png(tmp_path / "r.mask.png", full),
        "imagej": tmp_path / "r.roi",
    }


@pytest.mark.parametrize("kind", ["tuple", "dict", "json", "png", "imagej"])
def test_info_bar_always_outside(tmp_path, kind):
    roi = _sources(tmp_path)[kind]
    with pytest.warns(RoiWarning, match=r"info bar \(bottom 15 px\); 900 px in 15 rows left out"):
        r = trim_region(SHAPE, roi=roi, info_bar_px=15)
    assert not r.mask[65:].any()
    np.testing.assert_array_equal(r.mask, rect_mask(10, 30, 60, 35))
    assert any("info bar" in w for w in r.warnings)


def test_region_inside_info_bar_is_an_error():
    with pytest.raises(RoiError, match=r"contains no pixel .* info bar \(20 px\).*500 px in 10 rows"):
        trim_region(SHAPE, roi=(0, 65, 50, 10), info_bar_px=20)


@pytest.mark.parametrize("bar,match", [(80, "covers the whole"), (-1, "integer >= 0"),
                                       (2.5, "integer >= 0")])
def test_bad_info_bar(bar, match):
    with pytest.raises(RoiError, match=match):
        trim_region(SHAPE, info_bar_px=bar)


def test_shape_must_match_image():
    with pytest.raises(RoiError, match="does not match"):
        trim_region(SHAPE, image=np.zeros((10, 10)))


# -- counting: outside is never solid ---------------------------------------------------------

def test_region_leaving_out_pores_does_not_count_them(tmp_path):
    rng = np.random.default_rng(11)
    pores = rng.random(SHAPE) < 0.2
    pores[:, :40] = True             # a band of voids the region leaves out
    pores[65:] = True                # voids in the info-bar rows too
    p = write_json(tmp_path / "f.roi.json", {"rect": [40, 0, 60, 80]})
    with pytest.warns(RoiWarning, match="info bar"):
        region = trim_region(SHAPE, roi=p, info_bar_px=15)
    counts = count_pixels(pores, region.mask)
    assert counts.region == 60 * 65
    assert counts.void == int(pores[:65, 40:].sum())
    assert counts.porosity == pytest.approx(pores[:65, 40:].mean())
    # the trap: masking the image turns the excluded pixels into solid
    assert counts.porosity > (pores & region.mask).sum() / pores.size


# -- automatic trimming ------------------------------------------------------------------------

def test_auto_mode_calls_trim_auto(monkeypatch):
    calls = {}

    def fake_trim_auto(image, *, info_bar_px, pixel_size_um, settings):
        calls.update(shape=image.shape, bar=info_bar_px, px=pixel_size_um, settings=settings)
        return Region(mask=np.ones(image.shape, bool), description="auto", source="auto",
                      confidence=0.8)

    monkeypatch.setitem(sys.modules, "poromet.autotrim",
                        types.SimpleNamespace(trim_auto=fake_trim_auto))
    settings = TrimSettings(mode="auto", margin_um=3.0)
    r = trim_region(SHAPE, image=np.zeros(SHAPE, np.uint8), info_bar_px=7,
                    pixel_size_um=0.05, trim=settings)
    assert r.source == "auto" and r.confidence == 0.8
    assert calls == {"shape": SHAPE, "bar": 7, "px": 0.05, "settings": settings}
    # a given region wins over auto trimming
    assert trim_region(SHAPE, roi=(0, 0, 5, 5), trim=settings).source == "user"


def test_auto_region_keeps_the_invariants(monkeypatch):
    def fake(mask):
        return types.SimpleNamespace(trim_auto=lambda image, **kw: Region(
            mask=mask, description="auto test", source="auto", confidence=0.9))

    monkeypatch.setitem(sys.modules, "poromet.autotrim", fake(np.ones(SHAPE, bool)))
    auto = TrimSettings(mode="auto")
    r = trim_region(SHAPE, image=np.zeros(SHAPE), info_bar_px=10, trim=auto)
    assert r.mask[:70].all() and not r.mask[70:].any() and r.confidence == 0.9
    monkeypatch.setitem(sys.modules, "poromet.autotrim", fake(np.zeros(SHAPE, bool)))
    with pytest.raises(RoiError, match=r"automatic trimming \(auto test\) found no region"):
        trim_region(SHAPE, image=np.zeros(SHAPE), trim=auto)
    monkeypatch.setitem(sys.modules, "poromet.autotrim", fake(np.ones((5, 5), bool)))
    with pytest.raises(RoiError, match=r"returned a \(5, 5\) mask"):
        trim_region(SHAPE, image=np.zeros(SHAPE), trim=auto)


def test_auto_mode_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "poromet.autotrim", None)     # import fails
    with pytest.raises(PorometError, match="automatic trimming is not available"):
        trim_region(SHAPE, image=np.zeros(SHAPE), trim=TrimSettings(mode="auto"))


def test_auto_mode_needs_image():
    with pytest.raises(PorometError, match="needs the image"):
        trim_region(SHAPE, trim=TrimSettings(mode="auto"))


# -- doctests and real data ------------------------------------------------------------------

def test_doctests():
    import doctest

    import poromet.roi

    res = doctest.testmod(poromet.roi, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 5 and res.failed == 0


def test_real_sem_image_with_rect_sidecar(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    files = sorted((REALDATA / "aquami-nanoporous-gold").glob("*.tif*")) if REALDATA.is_dir() else []
    if not files:
        pytest.skip("real SEM data not available")
    data = tifffile.imread(files[0])
    h, w = data.shape[:2]
    img = tmp_path / "npg.tif"
    img.touch()
    write_json(tmp_path / "npg.roi.json", {"rect": [w // 4, h // 4, w // 2, h // 2]})
    side = find_sidecar(img)
    r = trim_region(data.shape, roi=side, image=data[..., 0] if data.ndim == 3 else data,
                    info_bar_px=h // 10)
    assert r.mask.sum() == (w // 2) * (h // 2)
    assert r.description == f"rect {w // 4},{h // 4},{w // 2},{h // 2} from npg.roi.json"


def test_measure_field_uses_sidecar_and_never_counts_outside(tmp_path):
    for mod in ("poromet.io", "poromet.calibrate", "poromet.preprocess", "poromet.binarize"):
        pytest.importorskip(mod)
    from poromet import measure_field
    from poromet.pipeline import pipeline_from_dict

    rng = np.random.default_rng(5)
    img = np.full(SHAPE, 200, np.uint8)
    img[:, :30] = 20                                   # a dark band the region leaves out
    pores = np.zeros(SHAPE, bool)
    for _ in range(12):
        cy, cx, rad = rng.integers(8, 72), rng.integers(38, 92), rng.integers(2, 5)
        yy, xx = np.ogrid[:SHAPE[0], :SHAPE[1]]
        pores |= (yy - cy) ** 2 + (xx - cx) ** 2 <= rad ** 2
    img[pores] = 20
    write_png(tmp_path / "S01_f01.png", img)
    write_json(tmp_path / "S01_f01.roi.json", {"rect": [30, 0, 70, 80]})
    pipe = pipeline_from_dict({
        "image": {"info_bar": 0},
        "preprocess": {"denoise": "none", "background": "none"},
        "threshold": {"method": "manual", "value": 100},
        "cleanup": {"min_pore_area_px": 0},
    })
    res = measure_field(tmp_path / "S01_f01.png", pipeline=pipe)
    assert res.region_source == "sidecar" and "S01_f01.roi.json" in res.region
    assert res.region_pixels == 70 * 80
    assert res.void_pixels == int(pores[:, 30:].sum())
