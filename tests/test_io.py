"""Tests of poromet.io: formats, conversions, and every way a file can be bad."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from poromet.errors import ImageReadError, PorometError
from poromet.io import MIN_SIZE, as_image, read_image, sniff_format

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def _noise(shape=(48, 64), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        return rng.random(shape).astype(dtype)
    hi = min(np.iinfo(dtype).max, 60000)
    return rng.integers(0, hi, shape, endpoint=True).astype(dtype)


def _png_bytes(a):
    ok, buf = cv2.imencode(".png", a)
    assert ok
    return buf.tobytes()


def _jpeg_bytes(a, quality=95):
    ok, buf = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


# -- good files --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("compression", [None, "zlib", "lzw"])
def test_tiff_round_trip(tmp_path, dtype, compression):
    a = _noise(dtype=dtype, seed=1)
    f = tmp_path / "a.tif"
    tifffile.imwrite(f, a, compression=compression, tile=(16, 16) if compression == "zlib" else None)
    img = read_image(f)
    assert img.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(img.data, a)
    assert img.bit_depth == {1: 8, 2: 16, 4: 32}[np.dtype(dtype).itemsize]
    assert img.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert img.path == str(f.absolute())
    assert img.metadata["format"] == "tiff"
    assert img.warnings == ()


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.float64])
def test_tiff_other_types_become_float32(tmp_path, dtype):
    a = (_noise(dtype=np.uint16, seed=2).astype(np.int64) - 3000).astype(dtype)
    f = tmp_path / "a.tif"
    tifffile.imwrite(f, a)
    img = read_image(f)
    assert img.data.dtype == np.float32
    np.testing.assert_allclose(img.data, a.astype(np.float64), rtol=1e-6)


def test_bigtiff_and_planar_rgb_with_equal_channels(tmp_path):
    g = _noise(seed=3)
    f = tmp_path / "planar.tif"
    tifffile.imwrite(f, np.stack([g, g, g]), photometric="rgb", planarconfig="separate", bigtiff=True)
    img = read_image(f)  # equal channels: no warning, one channel
    np.testing.assert_array_equal(img.data, g)


def test_rgb_with_colour_warns_and_uses_luminance(tmp_path):
    rgb = np.stack([_noise(seed=s) for s in (4, 5, 6)], axis=-1)
    f = tmp_path / "rgb.tif"
    tifffile.imwrite(f, rgb, photometric="rgb")
    with pytest.warns(UserWarning, match="colour image .* luminance"):
        img = read_image(f)
    expected = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    np.testing.assert_array_equal(img.data, expected.astype(np.uint8))
    assert any("luminance" in w for w in img.warnings)


def test_png_rgb_is_read_in_rgb_order_not_bgr(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16, 0] = 200  # red left half
    rgb[:, 16:, 2] = 200  # blue right half
    f = tmp_path / "c.png"
    f.write_bytes(_png_bytes(rgb[:, :, ::-1]))  # cv2 writes BGR
    with pytest.warns(UserWarning, match="colour"):
        img = read_image(f)
    assert img.data[0, 0] == round(0.299 * 200) and img.data[0, 31] == round(0.114 * 200)


def test_rgba_with_equal_channels_takes_one_channel(tmp_path):
    g = _noise(seed=7)
    rgba = np.dstack([g, g, g, np.full_like(g, 255)])
    f = tmp_path / "a.tif"
    tifffile.imwrite(f, rgba, photometric="rgb", extrasamples=["unassalpha"])
    img = read_image(f)
    np.testing.assert_array_equal(img.data, g)


def test_palette_tiff_gray_colormap(tmp_path):
    idx = _noise(seed=8)
    cmap = np.tile((np.arange(256, dtype=np.uint16) * 257)[::-1], (3, 1))  # inverted gray LUT
    f = tmp_path / "p.tif"
    tifffile.imwrite(f, idx, photometric="palette", colormap=cmap)
    img = read_image(f)
    np.testing.assert_array_equal(img.data, 255 - idx)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_8_and_16_bit(tmp_path, dtype):
    a = _noise(dtype=dtype, seed=9)
    f = tmp_path / "a.png"
    f.write_bytes(_png_bytes(a))
    img = read_image(f)
    assert img.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(img.data, a)


def test_bmp_and_jpeg(tmp_path):
    a = _noise(seed=10)
    ok, buf = cv2.imencode(".bmp", a)
    (tmp_path / "a.bmp").write_bytes(buf.tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "a.bmp").data, a)
    smooth = cv2.GaussianBlur(a, (7, 7), 2)
    (tmp_path / "a.jpg").write_bytes(_jpeg_bytes(smooth))
    img = read_image(tmp_path / "a.jpg")
    assert img.data.shape == a.shape and np.abs(img.data.astype(int) - smooth).mean() < 3


def test_non_ascii_path(tmp_path):
    a = _noise(seed=11)
    d = tmp_path / "µm-Probe_測定"
    d.mkdir()
    f = d / "Schliff_ü.png"
    f.write_bytes(_png_bytes(a))
    np.testing.assert_array_equal(read_image(f).data, a)


def test_multipage_reads_first_page_with_warning(tmp_path):
    pages = np.stack([_noise(seed=12), _noise(seed=13)])
    f = tmp_path / "m.tif"
    tifffile.imwrite(f, pages)
    with pytest.warns(UserWarning, match="multi-page TIFF .2 pages"):
        img = read_image(f)
    np.testing.assert_array_equal(img.data, pages[0])


def test_extension_mismatch_reads_content_with_warning(tmp_path):
    a = _noise(seed=14)
    f = tmp_path / "really_a_png.tif"
    f.write_bytes(_png_bytes(a))
    with pytest.warns(UserWarning, match="extension '.tif' does not match .* PNG"):
        img = read_image(f)
    np.testing.assert_array_equal(img.data, a)
    assert img.metadata["format"] == "png"


def test_sniff_format():
    assert sniff_format(b"II*\x00abcd") == "tiff"
    assert sniff_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_format(b"GIF89a...") == "GIF"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WebP"
    assert sniff_format(b"plain text") is None


# -- bad files ----------------------------------------------------------------------

def test_errors_are_porometerrors_naming_the_file(tmp_path):
    f = tmp_path / "missing.tif"
    with pytest.raises(ImageReadError, match=r"missing\.tif: file not found"):
        read_image(f)
    assert issubclass(ImageReadError, PorometError)
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)


def test_empty_and_not_an_image(tmp_path):
    (tmp_path / "e.tif").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"e\.tif: empty file \(0 bytes\)"):
        read_image(tmp_path / "e.tif")
    (tmp_path / "t.png").write_text("sample,porosity\nA,0.1\n")
    with pytest.raises(ImageReadError, match=r"t\.png: not an image file .*TIFF, PNG, JPEG, BMP"):
        read_image(tmp_path / "t.png")
    (tmp_path / "g.gif").write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(ImageReadError, match="is a GIF file; supported formats"):
        read_image(tmp_path / "g.gif")


def test_permission_denied(tmp_path, monkeypatch):
    f = tmp_path / "locked.png"
    f.write_bytes(_png_bytes(_noise()))

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(ImageReadError, match=r"locked\.png: permission denied"):
        read_image(f)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied_for_real(tmp_path):
    f = tmp_path / "locked.png"
    f.write_bytes(_png_bytes(_noise()))
    f.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(f)
    finally:
        f.chmod(0o644)


def test_truncated_tiff(tmp_path):
    f = tmp_path / "cut.tif"
    tifffile.imwrite(f, _noise((64, 64), seed=15))
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) - 500])
    with pytest.raises(ImageReadError, match=r"cut\.tif: truncated TIFF file"):
        read_image(f)


def test_tiff_with_zero_pages(tmp_path, capsys):
    f = tmp_path / "zero.tif"
    tifffile.imwrite(f, _noise(seed=16))
    raw = bytearray(f.read_bytes())
    raw[4:8] = struct.pack("<I", 10**8)  # first-IFD offset far past the end
    f.write_bytes(bytes(raw))
    with pytest.raises(ImageReadError, match=r"zero\.tif: TIFF file with no readable image \(zero pages\)"):
        read_image(f)
    assert "tifffile" not in capsys.readouterr().err  # its log lines were captured


def test_truncated_png_jpeg_bmp(tmp_path):
    a = _noise((64, 64), seed=17)
    raw = _png_bytes(a)
    (tmp_path / "a.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageReadError, match="truncated PNG"):
        read_image(tmp_path / "a.png")
    raw = _jpeg_bytes(a)
    (tmp_path / "a.jpg").write_bytes(raw[: int(len(raw) * 0.7)])
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        read_image(tmp_path / "a.jpg")
    ok, buf = cv2.imencode(".bmp", a)
    (tmp_path / "a.bmp").write_bytes(buf.tobytes()[:-300])
    with pytest.raises(ImageReadError, match="truncated BMP"):
        read_image(tmp_path / "a.bmp")


@pytest.mark.parametrize("value", [0, 255])
def test_constant_image(tmp_path, value):
    f = tmp_path / "c.png"
    f.write_bytes(_png_bytes(np.full((32, 32), value, np.uint8)))
    with pytest.raises(ImageReadError, match=rf"constant image: all 1,024 pixels equal {value}"):
        read_image(f)


@pytest.mark.parametrize("shape", [(1, 1), (15, 40), (40, 15)])
def test_tiny_image(tmp_path, shape):
    f = tmp_path / "tiny.tif"
    tifffile.imwrite(f, _noise(shape, seed=18))
    with pytest.raises(ImageReadError, match=f"minimum is {MIN_SIZE} x {MIN_SIZE}"):
        read_image(f)


def _forbid_decoding(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(cv2, "imdecode", boom)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", boom)


def test_decompression_bomb_png_refused_before_decoding(tmp_path, monkeypatch):
    raw = bytearray(_png_bytes(_noise(seed=19)))
    raw[16:24] = struct.pack(">II", 100_000, 100_000)  # IHDR claims 10 gigapixels
    f = tmp_path / "bomb.png"
    f.write_bytes(bytes(raw))
    _forbid_decoding(monkeypatch)
    with pytest.raises(ImageReadError, match=r"bomb\.png: .*10,000,000,000 pixels.*limit of 250,000,000"):
        read_image(f)


def test_decompression_bomb_tiff_jpeg_bmp(tmp_path, monkeypatch):
    # TIFF: a real page whose header is patched to claim 60000 x 60000
    f = tmp_path / "bomb.tif"
    tifffile.imwrite(f, _noise(seed=20), compression="zlib")
    with tifffile.TiffFile(f) as t:
        offsets = [t.pages[0].tags[n].valueoffset for n in ("ImageWidth", "ImageLength")]
    raw = bytearray(f.read_bytes())
    for off in offsets:
        raw[off:off + 4] = struct.pack("<I", 60_000)
    f.write_bytes(bytes(raw))
    raw_j = bytearray(_jpeg_bytes(_noise(seed=21)))
    sof = raw_j.find(b"\xff\xc0")
    raw_j[sof + 5:sof + 9] = struct.pack(">HH", 60_000, 60_000)
    (tmp_path / "bomb.jpg").write_bytes(bytes(raw_j))
    ok, buf = cv2.imencode(".bmp", _noise(seed=22))
    raw_b = bytearray(buf.tobytes())
    raw_b[18:26] = struct.pack("<ii", 60_000, 60_000)
    (tmp_path / "bomb.bmp").write_bytes(bytes(raw_b))
    _forbid_decoding(monkeypatch)
    for name in ("bomb.tif", "bomb.jpg", "bomb.bmp"):
        with pytest.raises(ImageReadError, match=r"3,600,000,000 pixels.*limit"):
            read_image(tmp_path / name)


def test_max_pixels_setting(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(_png_bytes(_noise((40, 50), seed=23)))
    with pytest.raises(ImageReadError, match="2,000 pixels, more than the limit of 1,999"):
        read_image(f, max_pixels=1999)
    assert read_image(f, max_pixels=2000).data.shape == (40, 50)


# -- in-memory arrays ------------------------------------------------------------------

def test_as_image_types():
    assert as_image(_noise(seed=24)).data.dtype == np.uint8
    img = as_image(_noise(dtype=np.float64, seed=25))
    assert img.data.dtype == np.float32 and img.bit_depth == 32 and img.path is None
    b = np.zeros((20, 20), bool)
    b[5:10] = True
    assert set(np.unique(as_image(b).data)) == {0, 255}
    with pytest.raises(ImageReadError, match=r"<array>: expected a 2-D"):
        as_image(np.arange(100))
    with pytest.raises(ImageReadError, match="constant image"):
        as_image(np.ones((20, 20)))


def test_as_image_nan_pixels_warn():
    a = _noise(dtype=np.float32, seed=26)
    a[0, :5] = np.nan
    with pytest.warns(UserWarning, match="5 NaN/infinite pixels"):
        img = as_image(a)
    assert np.isfinite(img.data).all()
    with pytest.raises(ImageReadError, match="no finite pixel"):
        as_image(np.full((20, 20), np.nan))


# -- real files ------------------------------------------------------------------------

@pytest.mark.skipif(not REAL.is_dir(), reason="realdata not present")
def test_real_zeiss_palette_and_multipage():
    img = read_image(REAL / "sem-metadata" / "rosettasciio" / "test_tiff_Zeiss_SEM_512pix.tif")
    assert img.data.shape == (384, 512) and img.data.dtype == np.uint8
    assert img.metadata["summary"]["vendor"] == "Zeiss"
    with pytest.warns(UserWarning, match="multi-page"):
        mp = read_image(REAL / "sem-metadata" / "rosettasciio" / "ZEISS_SEM_multipage.tif")
    assert mp.data.shape == (1536, 2048)


@pytest.mark.skipif(not REAL.is_dir(), reason="realdata not present")
def test_real_blank_navcam_is_constant():
    with pytest.raises(ImageReadError, match="constant image"):
        read_image(REAL / "sem-metadata" / "rosettasciio" / "FEI-Helios-navcam.tif")


@pytest.mark.skipif(not REAL.is_dir(), reason="realdata not present")
def test_real_metadata_is_json_able_and_small():
    import json

    for f in ("sem-metadata/imageio/fei-sem-rbc.tif", "sem-metadata/fibresem/sample.01_img08.tif"):
        text = json.dumps(read_image(REAL / f).metadata, allow_nan=False)
        assert len(text) < 20_000


def test_truncated_jpeg_with_exif_thumbnail(tmp_path):
    # an APP1 segment holding a thumbnail (with its own end-of-image marker) must not hide the cut
    raw = _jpeg_bytes(_noise((64, 64), seed=27))
    thumb = b"Exif\x00\x00" + b"\xff\xd8" + bytes(40) + b"\xff\xd9"
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumb) + 2) + thumb
    full = raw[:2] + app1 + raw[2:]
    (tmp_path / "ok.jpg").write_bytes(full)
    assert read_image(tmp_path / "ok.jpg").data.shape == (64, 64)
    (tmp_path / "cut.jpg").write_bytes(full[: len(full) - 200])
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        read_image(tmp_path / "cut.jpg")


def test_bilevel_and_miniswhite_tiff(tmp_path):
    b = _noise(seed=28) > 128
    tifffile.imwrite(tmp_path / "b.tif", b)
    assert set(np.unique(read_image(tmp_path / "b.tif").data)) == {0, 255}
    g = _noise(seed=29)
    tifffile.imwrite(tmp_path / "w.tif", g, photometric="miniswhite")
    img = read_image(tmp_path / "w.tif")
    np.testing.assert_array_equal(img.data, 255 - g)
    assert any("MINISWHITE" in w for w in img.warnings)


def test_corrupt_tiff_header(tmp_path):
    f = tmp_path / "bad.tif"
    f.write_bytes(b"II*\x00" + b"\xff" * 40)
    with pytest.raises(ImageReadError, match=r"bad\.tif: (corrupt TIFF|TIFF file with no readable)"):
        read_image(f)


def test_corrupt_png_data(tmp_path):
    raw = bytearray(_png_bytes(_noise((64, 64), seed=30)))
    idat = raw.find(b"IDAT")
    raw[idat + 10:idat + 60] = bytes(50)  # garbage inside the compressed stream
    (tmp_path / "c.png").write_bytes(bytes(raw))
    with pytest.raises(ImageReadError, match=r"c\.png: corrupt PNG"):
        read_image(tmp_path / "c.png")


def test_image_too_large_for_memory_is_refused_with_the_need(tmp_path, monkeypatch):
    import poromet.io as pio

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.tile(np.arange(5000, dtype=np.uint16), (5000, 1)))
    monkeypatch.setattr(pio, "_available_memory", lambda: 100 * 2**20)
    with pytest.raises(ImageReadError, match=r"big\.tif: a 5000 x 5000 image needs about "
                                             r"0\.6 GB .* 0\.1 GB are available"):
        pio.read_image(path)
    monkeypatch.setattr(pio, "_available_memory", lambda: None)
    assert pio.read_image(path).data.shape == (5000, 5000)
