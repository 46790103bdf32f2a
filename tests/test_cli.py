"""The command line end to end: measure, batch with bad files, pipelines."""

from __future__ import annotations

import csv
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from poromet.cli import main
from poromet.synth import generate_field, write_field

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "sem-metadata"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    fields = []
    for i in range(3):
        f = generate_field(300 + i, width=320, height=240, bit_depth=8)
        write_field(f, d / f"S01_f{i + 1:02d}.tif", sidecar="rect", metadata="fei")
        fields.append(f)
    return d, fields


def read_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def png_bytes(arr):
    import cv2

    ok, buf = cv2.imencode(".png", arr)
    return buf.tobytes()


def make_bad_files(d: Path) -> dict[str, str]:
    """A dozen kinds of bad file; returns name -> a word the error must contain."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    bad = {}
    (d / "empty_1.tif").write_bytes(b"")
    bad["empty_1.tif"] = "empty"
    (d / "text_2.tif").write_text("this is not an image\n")
    bad["text_2.tif"] = "not an image"
    tifffile.imwrite(d / "full.tif", img)
    data = (d / "full.tif").read_bytes()
    (d / "full.tif").unlink()
    (d / "trunc_3.tif").write_bytes(data[: len(data) // 2])
    bad["trunc_3.tif"] = "trunc"
    p = png_bytes(img)
    (d / "trunc_4.png").write_bytes(p[: len(p) // 2])
    bad["trunc_4.png"] = "trunc"
    import cv2

    ok, j = cv2.imencode(".jpg", img)
    (d / "trunc_5.jpg").write_bytes(j.tobytes()[: len(j) // 2])
    bad["trunc_5.jpg"] = "trunc"
    # TIFF header pointing at an IFD beyond the end of the file: zero pages
    (d / "nopages_6.tif").write_bytes(b"II*\x00" + struct.pack("<I", 10_000) + b"\x00" * 8)
    bad["nopages_6.tif"] = ""
    tifffile.imwrite(d / "const_7.tif", np.full((64, 64), 128, np.uint8))
    bad["const_7.tif"] = "constant"
    tifffile.imwrite(d / "tiny_8.tif", np.zeros((1, 1), np.uint8))
    bad["tiny_8.tif"] = "minimum"
    (d / "html_9.jpg").write_text("<html><body>404</body></html>")
    bad["html_9.jpg"] = "not an image"
    (d / "gif_10.png").write_bytes(b"GIF89a" + b"\x00" * 40)
    bad["gif_10.png"] = "GIF"
    # PNG header claiming 100000 x 100000 pixels: refused before allocating
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    bomb = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))
    (d / "bomb_11.png").write_bytes(bomb)
    bad["bomb_11.png"] = "limit"
    (d / "dir_12.tif").mkdir()
    bad["dir_12.tif"] = ""
    # a sidecar that is broken: the image is fine, its region is not
    tifffile.imwrite(d / "badroi_13.tif", img)
    (d / "badroi_13.roi.json").write_text("{rect: nope")
    bad["badroi_13.tif"] = "roi.json"
    return bad


def test_batch_with_bad_files_gives_one_error_row_each(good, tmp_path):
    src, _ = good
    d = tmp_path / "in"
    d.mkdir()
    for f in src.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    bad = make_bad_files(d)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["batch", str(d), "-o", str(out), "--workers", "1",
                                    "--no-report", "--quiet"])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    rows = read_rows(out / "fields.csv")
    by_name = {Path(r["path"]).name: r for r in rows}
    for name, word in bad.items():
        if name == "dir_12.tif":           # a folder is a sample, not a field
            continue
        r = by_name[name]
        assert r["status"] == "error", name
        assert name.split(".")[0] in r["message"], r["message"]
        assert word.lower() in r["message"].lower(), (name, r["message"])
    for i in range(3):
        assert by_name[f"S01_f{i + 1:02d}.tif"]["status"] == "ok"
    assert len({r["path"] for r in rows}) == len(rows)


def test_batch_outputs_and_accuracy(good, tmp_path):
    src, fields = good
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["batch", str(src), "-o", str(out), "-j", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    rows = read_rows(out / "fields.csv")
    assert [r["field"] for r in rows] == ["1", "2", "3"]
    for r, f in zip(rows, fields):
        assert abs(float(r["porosity"]) - f.porosity_rect) < 0.03
        assert int(r["void_pixels"]) <= int(r["region_pixels"]) == f.rect[2] * f.rect[3]
        assert r["pixel_size_source"] == "fei"
        assert float(r["porosity_low"]) <= float(r["porosity"]) <= float(r["porosity_high"])
    s = read_rows(out / "samples.csv")
    assert s[0]["sample"] == "S01" and s[0]["n_fields"] == "3"
    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["fields"][0]["sha256"] and "pipeline" in json.dumps(doc)
    assert (out / "report.html").stat().st_size > 10_000


def test_measure_json_lines(good):
    src, fields = good
    paths = sorted(str(p) for p in src.glob("*.tif"))
    res = CliRunner().invoke(main, ["measure", "--json", *paths])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.strip().splitlines()]
    assert len(lines) == 3
    for d, f in zip(lines, fields):
        for key in ("path", "porosity", "porosity_low", "porosity_high", "void_pixels",
                    "region_pixels", "threshold", "pixel_size_um", "pixel_size_source",
                    "info_bar_px"):
            assert key in d
        assert d["info_bar_px"] == f.info_bar_px
        assert d["pixel_size_um"] == pytest.approx(f.pixel_size_um, rel=1e-6)


def test_measure_roi_overrides_and_usage_errors(good, tmp_path):
    src, _ = good
    path = str(sorted(src.glob("*.tif"))[0])
    res = CliRunner().invoke(main, ["measure", "--json", "--roi", "0,0,50,40", path])
    assert json.loads(res.output)["region_pixels"] == 2000
    res = CliRunner().invoke(main, ["measure", "--roi", "1,2,3", path])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["measure", "--pipeline", "nope", path])
    assert res.exit_code == 2 and "no such shipped pipeline" in res.output
    res = CliRunner().invoke(main, ["batch", str(tmp_path / "missing"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["measure", str(tmp_path / "missing.tif")])
    assert res.exit_code == 1 and "missing.tif" in res.output


def test_pipeline_check_names_misspelled_key(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('name = "x"\n[spec]\nporosity_mx = 0.4\n')
    res = CliRunner().invoke(main, ["pipeline", "check", str(f)])
    assert res.exit_code == 1
    assert "spec.porosity_mx" in res.output
    res = CliRunner().invoke(main, ["pipeline", "check", "exterior-unit"])
    assert res.exit_code == 0
    res = CliRunner().invoke(main, ["pipeline", "show", "intermediate-layer"])
    assert "porosity_min = 0.4" in res.output


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/realdata absent")
@pytest.mark.parametrize("rel, px, bar", [
    ("imageio/fei-sem-rbc.tif", 0.00770833, 70),
    ("rosettasciio/test_tiff_Zeiss_SEM_1k.tif", 2.615, None),
    ("aquami/Sample.tif", 0.000543, None),
    ("fibresem/sample.01_img08.tif", 0.009766, None),
    ("fibresem/sample.02_img20.tif", 0.04883, None),
])
def test_measure_json_real_calibration(rel, px, bar):
    res = CliRunner().invoke(main, ["measure", "--json", str(REAL / rel)])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["pixel_size_um"] == pytest.approx(px, rel=1e-4)
    assert d["pixel_size_source"] in ("fei", "zeiss")
    if bar is not None:
        assert d["info_bar_px"] == bar


def test_batch_roi_is_a_fallback_and_sidecars_win(tmp_path):
    f = generate_field(310, width=200, height=160, bit_depth=8, info_bar=0)
    write_field(f, tmp_path / "in" / "A_f01.tif", sidecar="rect", metadata="none")
    write_field(f, tmp_path / "in" / "A_f02.tif", sidecar="none", metadata="none")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["batch", str(tmp_path / "in"), "-o", str(out), "-j", "1",
                                    "--no-report", "--quiet", "--roi", "0,0,40,30"])
    assert res.exit_code == 0, res.output
    rows = {Path(r["path"]).name: r for r in read_rows(out / "fields.csv")}
    assert int(rows["A_f01.tif"]["region_pixels"]) == f.rect[2] * f.rect[3]
    assert int(rows["A_f02.tif"]["region_pixels"]) == 1200


def test_run_info_gives_the_versions_without_importing_opencv():
    # a -jN batch's main process never needs OpenCV; its version comes from
    # the metadata and is spelled as cv2.__version__
    import subprocess
    import sys

    import cv2
    import skimage

    code = ("import json, sys; from poromet.cli import run_info; "
            "print(json.dumps(run_info('x')['packages'])); "
            "print('cv2' in sys.modules, 'skimage' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    packages = json.loads(out[0])
    assert packages["opencv"] == cv2.__version__
    assert packages["scikit-image"] == skimage.__version__
    assert packages["tifffile"] == tifffile.__version__ and packages["numpy"] == np.__version__
    assert out[1] == "False False"
