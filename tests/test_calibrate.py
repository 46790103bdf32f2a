"""Tests of poromet.calibrate: pixel size from metadata, info-bar detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from poromet.calibrate import calibrate, calibration_from_metadata, detect_info_bar
from poromet.errors import CalibrationError, PorometError
from poromet.io import as_image, read_image
from poromet.pipeline import ImageSettings

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"
META = REAL / "sem-metadata"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="realdata not present")


# -- synthetic images ------------------------------------------------------------------

def micrograph(shape=(300, 400), seed=0, dtype=np.uint8):
    """Noisy gray texture with dark pores (not exactly uniform anywhere)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = rng.normal(150, 18, shape)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(30):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(3, 15)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.normal(40, 10)
    img += rng.normal(0, 6, shape)
    if dtype == np.uint16:
        return np.clip(img * 257, 0, 65535).astype(np.uint16)
    return np.clip(img, 0, 255).astype(dtype)


def add_bar(img, height, *, bg=0, ink=255, frame=None, junk_rows=0, seed=0):
    """Draw an SEM-like data bar: exact background, text blocks, scale bar."""
    rng = np.random.default_rng(seed)
    img = img.copy()
    h, w = img.shape
    top = h - height
    img[top:h - junk_rows] = bg
    if frame is not None:
        img[top] = frame
        img[h - junk_rows - 1] = frame
        img[top:h - junk_rows, 0] = frame
        img[top:h - junk_rows, -1] = frame
    line_h = max(4, height // 5)
    for y0 in (top + height // 5, top + height // 2 + 1):
        for x0 in range(10, w - 40, 45):
            glyphs = rng.random((line_h, 30)) < 0.35
            img[y0:y0 + line_h, x0:x0 + 30][glyphs] = ink
    img[top + height - height // 4, 12:60] = ink  # scale bar
    return img


# -- detection --------------------------------------------------------------------------

@pytest.mark.parametrize("height,bg,ink,frame,junk", [
    (40, 0, 255, None, 0),      # FEI-like: black band, white text, sharp edge
    (34, 255, 0, 0, 1),         # Zeiss-like: white band, black frame line, one junk image row
    (60, 46, 230, None, 0),     # dark-gray band
    (25, 0, 255, 255, 0),       # NMI-like: black band, white frame
])
def test_detects_synthetic_bars(height, bg, ink, frame, junk):
    img = add_bar(micrograph(seed=height), height, bg=bg, ink=ink, frame=frame, junk_rows=junk, seed=1)
    assert detect_info_bar(img) == height


def test_detects_bar_in_16_bit_and_float():
    img = add_bar(micrograph(seed=3, dtype=np.uint16), 30, bg=0, ink=65535)
    assert detect_info_bar(img) == 30
    assert detect_info_bar(img.astype(np.float32) / 65535) == 30


@pytest.mark.parametrize("seed", range(5))
def test_no_bar_in_noise_and_textures(seed):
    rng = np.random.default_rng(seed)
    assert detect_info_bar(rng.integers(0, 256, (256, 256)).astype(np.uint8)) == 0
    assert detect_info_bar(micrograph(seed=seed)) == 0
    assert detect_info_bar(rng.random((128, 200))) == 0


def test_no_bar_when_bottom_rows_are_dark_or_bright_pores():
    img = micrograph(seed=7)
    img[-30:] = np.clip(img[-30:].astype(int) - 120, 0, 255)  # dark, noisy bottom (resin)
    assert detect_info_bar(img) == 0
    img = micrograph(seed=8)
    img[-25:] = 0  # clipped black pore along the bottom, with clipped bright specks
    rng = np.random.default_rng(8)
    img[-25:][rng.random((25, img.shape[1])) < 0.02] = 255
    assert detect_info_bar(img) == 0
    img = micrograph(seed=9)
    img[-20:] = 255  # saturated bright bottom, no text
    assert detect_info_bar(img) == 0


def test_no_bar_in_binary_or_flat_synthetic_images():
    rng = np.random.default_rng(10)
    binary = np.where(rng.random((200, 300)) < 0.01, 0, 255).astype(np.uint8)
    assert detect_info_bar(binary) == 0
    layered = np.full((200, 300), 120, np.uint8)
    layered[150:] = 30
    layered[160:170, 10:200:7] = 250
    assert detect_info_bar(layered) == 0  # a flat image above is no micrograph


def test_bar_taller_than_cap_is_refused():
    img = add_bar(micrograph(seed=11), 90, bg=0, ink=255)  # 30 % of 300 rows
    assert detect_info_bar(img) == 0
    assert detect_info_bar(img, max_fraction=0.35) == 90


# -- metadata -----------------------------------------------------------------------------

def test_fei_metadata_pixel_size_and_bar():
    md = {"fei": {"Scan": {"PixelWidth": 7.70833e-09}, "Image": {"ResolutionX": 1536, "ResolutionY": 1024}}}
    cal = calibration_from_metadata(md, (1094, 1536))
    assert cal.pixel_size_um == pytest.approx(0.00770833, rel=1e-9)
    assert (cal.pixel_size_source, cal.info_bar_px, cal.info_bar_source) == ("fei", 70, "metadata")


def test_fei_escan_fallback_and_bad_floats():
    md = {"fei": {"Scan": {"PixelWidth": "1.2.3"}, "EScan": {"PixelWidth": 2e-9}, "Image": {}}}
    cal = calibration_from_metadata(md, (100, 100))
    assert cal.pixel_size_um == pytest.approx(0.002) and cal.info_bar_source == "none"
    cal = calibration_from_metadata({"fei": {"Scan": {"PixelWidth": "nan"}}}, (100, 100))
    assert cal.pixel_size_source == "none"


def test_fei_resolution_y_larger_than_image_is_ignored_with_note():
    cal = calibration_from_metadata({"fei": {"Image": {"ResolutionY": 900}}}, (800, 1000))
    assert cal.info_bar_source == "none" and "ResolutionY 900" in cal.notes[0]


def _write(tmp_path, name, data, **kw):
    f = tmp_path / name
    tifffile.imwrite(f, data, **kw)
    return f


def test_fei_ini_tag_in_a_written_tiff(tmp_path):
    ini = "[User]\r\nDate=01/02/2024\r\n[Scan]\r\nPixelWidth=2.5e-08\r\n[Image]\r\nResolutionX=256\r\nResolutionY=200\r\n"
    f = _write(tmp_path, "fei.tif", micrograph((230, 256), seed=12), extratags=[(34682, "s", 0, ini, True)])
    img = read_image(f)
    assert img.calibration.pixel_size_um == pytest.approx(0.025)
    assert img.calibration.info_bar_px == 30 and img.metadata["summary"]["vendor"].startswith("FEI")


def test_fei_xml_tag_is_parsed_from_raw_text(tmp_path):
    xml = ('<?xml version="1.0" encoding="utf-8"?><Metadata xmlns="http://example/fei">'
           '<Instrument><Manufacturer>Thermo</Manufacturer></Instrument>'
           '<BinaryResult><PixelSize><X unit="m">3.1e-09</X><Y unit="m">3.1e-09</Y></PixelSize></BinaryResult>'
           '<Image><DatabarHeight>22</DatabarHeight></Image></Metadata>')
    f = _write(tmp_path, "xml.tif", micrograph((200, 256), seed=13), extratags=[(34682, "s", 0, xml, True)])
    img = read_image(f)
    assert "fei_xml" in img.metadata
    assert img.calibration.pixel_size_um == pytest.approx(0.0031)
    assert (img.calibration.pixel_size_source, img.calibration.info_bar_px) == ("fei", 22)


@pytest.mark.parametrize("value,unit,um", [(543.0, "pm", 0.000543), (9.766, "nm", 0.009766), (2.615, "µm", 2.615)])
def test_zeiss_image_pixel_size_units(value, unit, um):
    cal = calibration_from_metadata({"zeiss": {"ap_image_pixel_size": ["Image Pixel Size", value, unit]}}, (768, 1024))
    assert cal.pixel_size_um == pytest.approx(um) and cal.pixel_size_source == "zeiss"


def test_zeiss_scan_pixel_size_is_rescaled_to_stored_width():
    md = {"zeiss": {"ap_pixel_size": ["Pixel Size", 5.825, "nm"], "ap_width": ["Width", 5.965, "µm"]}}
    cal = calibration_from_metadata(md, (384, 512))
    assert cal.pixel_size_um == pytest.approx(5.965 / 512)
    assert "1024-px reference width" in cal.notes[0]
    md = {"zeiss": {"ap_pixel_size": ["Pixel Size", 19.53, "nm"]}}  # no width: scale the 1024 reference
    assert calibration_from_metadata(md, (1536, 2048)).pixel_size_um == pytest.approx(0.019530 / 2)


def test_tiff_resolution_tags(tmp_path):
    a = micrograph((64, 64), seed=14)
    f = _write(tmp_path, "cm.tif", a, resolution=(1e4, 1e4), resolutionunit="CENTIMETER")
    cal = read_image(f).calibration
    assert cal.pixel_size_source == "tiff-resolution" and cal.pixel_size_um == pytest.approx(1.0)
    for dpi in (72, 96, 300):
        f = _write(tmp_path, f"{dpi}.tif", a, resolution=(dpi, dpi), resolutionunit="INCH")
        cal = read_image(f).calibration
        assert cal.pixel_size_source == "none" and f"{dpi} dpi looks like a screen" in cal.notes[0]
    f = _write(tmp_path, "none.tif", a, resolution=(5.0, 5.0), resolutionunit="NONE")
    assert read_image(f).calibration.pixel_size_source == "none"


def test_imagej_calibration(tmp_path):
    f = _write(tmp_path, "ij.tif", micrograph((64, 64), seed=15), imagej=True,
               resolution=(4.0, 4.0), metadata={"unit": "micron"})
    cal = read_image(f).calibration
    assert cal.pixel_size_source == "tiff-resolution" and cal.pixel_size_um == pytest.approx(0.25)


# -- calibrate() -------------------------------------------------------------------------------

def test_calibrate_user_override_and_forced_bar():
    img = as_image(add_bar(micrograph(seed=16), 40))
    cal = calibrate(img, ImageSettings())
    assert (cal.info_bar_px, cal.info_bar_source, cal.pixel_size_source) == (40, "detected", "none")
    cal = calibrate(img, ImageSettings(info_bar="none", pixel_size_um=0.5))
    assert (cal.info_bar_px, cal.info_bar_source, cal.pixel_size_um, cal.pixel_size_source) == (0, "none", 0.5, "user")
    cal = calibrate(img, ImageSettings(info_bar=12))
    assert (cal.info_bar_px, cal.info_bar_source) == (12, "pipeline")
    with pytest.raises(CalibrationError, match=r"image.info_bar: got 290 px but <array> is 300 px high; allowed: 0 to 284"):
        calibrate(img, ImageSettings(info_bar=290))
    assert issubclass(CalibrationError, PorometError)
    assert calibrate(as_image(micrograph(seed=17)), ImageSettings()).info_bar_source == "none"


def test_calibrate_prefers_metadata_bar_and_notes_override(tmp_path):
    ini = "[Scan]\r\nPixelWidth=1e-08\r\n[Image]\r\nResolutionY=260\r\n"
    f = _write(tmp_path, "fei.tif", micrograph((300, 256), seed=18), extratags=[(34682, "s", 0, ini, True)])
    img = read_image(f)
    cal = calibrate(img, ImageSettings())
    assert (cal.info_bar_px, cal.info_bar_source) == (40, "metadata")
    cal = calibrate(img, ImageSettings(pixel_size_um=0.02, info_bar=10))
    assert any("overrides the fei metadata value 0.01" in n for n in cal.notes)
    assert any("overrides the metadata value 40 px" in n for n in cal.notes)


# -- real files ---------------------------------------------------------------------------------

REAL_CASES = [
    # file, pixel size µm, source, bar from calibrate(auto), bar source
    ("imageio/fei-sem-rbc.tif", 0.00770833, "fei", 70, "metadata"),
    ("rosettasciio/FEI-Helios-Ebeam-8bits.tif", 3.3724, "fei", 29, "metadata"),
    ("rosettasciio/FEI-Helios-Ebeam-16bits.tif", 3.3724, "fei", 29, "metadata"),
    ("rosettasciio/test_tiff_Zeiss_SEM_1k.tif", 2.615, "zeiss", 77, "detected"),
    ("rosettasciio/test_tiff_Zeiss_SEM_512pix.tif", 5.965 / 512, "zeiss", 34, "detected"),
    ("aquami/Sample.tif", 0.000543, "zeiss", 77, "detected"),
    ("fibresem/sample.01_img08.tif", 0.009766, "zeiss", 166, "detected"),
    ("fibresem/sample.02_img20.tif", 0.04883, "zeiss", 166, "detected"),
]


@needs_real
@pytest.mark.parametrize("name,px,source,bar,bar_source", REAL_CASES)
def test_real_sem_files(name, px, source, bar, bar_source):
    cal = calibrate(read_image(META / name), ImageSettings())
    assert cal.pixel_size_um == pytest.approx(px, rel=1e-6)
    assert cal.pixel_size_source == source
    assert (cal.info_bar_px, cal.info_bar_source) == (bar, bar_source)


@needs_real
def test_real_fei_detection_agrees_with_metadata():
    img = read_image(META / "imageio" / "fei-sem-rbc.tif")
    assert detect_info_bar(img.data) == img.calibration.info_bar_px == 70


@needs_real
@pytest.mark.parametrize("name", [
    "nasa-ebc-coating/images/040617#2_S127(2)0015.tif",
    "nasa-ebc-coating/images/050317#3_S0440016.tif",
    "nasa-ebc-coating/images/070516#1_S1160030.tif",
    "gaktpore-foam/1.tif", "gaktpore-foam/2-fft.tif",
    "llzo-composite-cathode/Picture1cropped.png",
])
def test_real_images_without_bar(name):
    img = read_image(REAL / name)
    assert detect_info_bar(img.data) == 0
    assert calibrate(img, ImageSettings()).info_bar_source == "none"


@needs_real
def test_real_zeiss_multipage_has_no_bar():
    with pytest.warns(UserWarning, match="multi-page"):
        img = read_image(META / "rosettasciio" / "ZEISS_SEM_multipage.tif")
    assert img.calibration.pixel_size_um == pytest.approx(0.01233)
    assert detect_info_bar(img.data) == 0


@needs_real
def test_measure_json_reports_calibration_of_real_files():
    import json

    from click.testing import CliRunner

    from poromet.cli import main

    files = [META / "imageio" / "fei-sem-rbc.tif", META / "rosettasciio" / "test_tiff_Zeiss_SEM_512pix.tif"]
    res = CliRunner().invoke(main, ["measure", "--json", *map(str, files)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    got = [(r["pixel_size_um"], r["pixel_size_source"], r["info_bar_px"], r["info_bar_source"]) for r in rows]
    assert got[0] == (pytest.approx(0.00770833), "fei", 70, "metadata")
    assert got[1] == (pytest.approx(0.0116504, rel=1e-5), "zeiss", 34, "detected")


def test_framed_bar_under_a_partly_saturated_micrograph():
    img = micrograph(seed=19)
    rng = np.random.default_rng(19)
    img[rng.random(img.shape) < 0.45] = 255  # 45 % clipped white, as under charging
    framed = add_bar(img, 40, bg=255, ink=0, frame=127)
    assert detect_info_bar(framed) == 40
    assert detect_info_bar(add_bar(img, 40, bg=255, ink=0)) == 0  # no frame: edge too uncertain
