"""Tests of poromet.report: tables, overlays, masks and the HTML report."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from poromet.errors import PorometError
from poromet.measure import FieldArrays
from poromet.pipeline import pipeline_from_dict
from poromet.records import FIELD_COLUMNS, FieldResult
from poromet.report import atomic_write_text
from poromet.report.html import render_report, write_report
from poromet.report.overlay import MASK_OUTSIDE, field_mask, render_field
from poromet.report.tables import (
    DENSITY_COLUMNS,
    SAMPLE_COLUMNS,
    compute_samples,
    write_fields_csv,
    write_outputs,
    write_results_json,
    write_samples_csv,
)
from poromet.stats import sample_stats

H, W = 120, 160


def synth_arrays(seed: int, *, bar: int = 20):
    """A small field: disc pores, a rectangular region above an info bar."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    pores = np.zeros((H, W), bool)
    for _ in range(12):
        cy, cx, r = rng.integers(0, H), rng.integers(0, W), rng.integers(2, 9)
        pores |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    gray = (np.where(pores, 40, 180) + rng.integers(0, 20, (H, W))).astype(np.uint8)
    region = np.zeros((H, W), bool)
    region[10:H - bar - 5, 12:W - 12] = True
    return FieldArrays(gray8=gray, region=region, pores=pores)


def field_for(arrays, *, sample="S01", field=1, path=None, status="ok", bar=20, **kw):
    void = int((arrays.pores & arrays.region).sum())
    reg = int(arrays.region.sum())
    p = void / reg
    hist = np.bincount(arrays.gray8[arrays.region], minlength=256)
    return FieldResult(
        path=path or f"/data/{sample}/{sample}_f{field:02d}.tif", sample=sample, field=field,
        porosity=p, porosity_low=0.95 * p, porosity_high=1.05 * p, void_pixels=void,
        region_pixels=reg, threshold=110.0, threshold_method="otsu", pixel_size_um=0.1,
        pixel_size_source="fei", info_bar_px=bar, info_bar_source="metadata",
        region="rect", region_source="sidecar", region_fraction=reg / (H * W),
        width=W, height=H, bit_depth=8, status=status, sha256=f"{field:064x}",
        histogram=tuple(int(v) for v in hist), version="0.1.0", **kw)


def build_run(out_dir, *, samples=("S01", "S02"), n=4, seed=0):
    fields = []
    k = 0
    for s in samples:
        for i in range(1, n + 1):
            arr = synth_arrays(seed + k)
            k += 1
            fields.append(render_field(field_for(arr, sample=s, field=i), arr, out_dir))
    return fields


def read_csv(path):
    raw = Path(path).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


# -- atomic writes -------------------------------------------------------------

def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.csv"
    atomic_write_text(target, "old")

    def boom(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(PorometError, match=r"a\.csv: cannot write output"):
        atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]     # temp file removed


# -- CSV / JSON ------------------------------------------------------------------

def test_fields_csv_columns_bom_and_values(tmp_path):
    f1 = FieldResult("/data/µm sample/=cmd.tif", sample="S1", field=1, porosity=1 / 3,
                     void_pixels=1, region_pixels=3, pixel_size_um=0.123456789012345)
    f2 = FieldResult("/data/x.tif", sample="S1", field=2, status="error",
                     message="-bad file")
    rows = read_csv(write_fields_csv(tmp_path / "fields.csv", [f1, f2]))
    assert tuple(rows[0]) == FIELD_COLUMNS
    assert len(rows) == 3
    r1 = dict(zip(rows[0], rows[1]))
    assert float(r1["porosity"]) == 1 / 3                      # all digits kept
    assert float(r1["pixel_size_um"]) == 0.123456789012345
    assert r1["path"] == "/data/µm sample/=cmd.tif"            # µ survives, no formula
    assert r1["porosity_low"] == "" and r1["threshold"] == ""  # NaN -> empty
    r2 = dict(zip(rows[0], rows[2]))
    assert r2["status"] == "error" and r2["message"] == "'-bad file"
    assert r2["pixel_size_um"] == ""


def test_fields_csv_formula_cells_are_neutralised(tmp_path):
    f = FieldResult("=HYPERLINK(1)", sample="+S", field=1)
    rows = read_csv(write_fields_csv(tmp_path / "f.csv", [f]))
    r = dict(zip(rows[0], rows[1]))
    assert r["path"] == "'=HYPERLINK(1)" and r["sample"] == "'+S"


def test_samples_csv(tmp_path):
    rng = np.random.default_rng(7)
    fs = [FieldResult(f"/d/f{i}.tif", sample="S1", field=i, porosity=float(p),
                      void_pixels=int(p * 1000), region_pixels=1000)
          for i, p in enumerate(rng.uniform(0.1, 0.2, 10), 1)]
    s = sample_stats(fs)
    rows = read_csv(write_samples_csv(tmp_path / "samples.csv", [s]))
    assert tuple(rows[0]) == SAMPLE_COLUMNS
    r = dict(zip(rows[0], rows[1]))
    assert r["sample"] == "S1" and r["n_fields"] == "10" and r["complete"] == "true"
    assert float(r["porosity_mean"]) == s.porosity_mean
    assert float(r["ci95_low"]) < float(r["porosity_mean"]) < float(r["ci95_high"])
    assert r["verdict"] == "n/a"
    for required in ("porosity_sd", "rel_accuracy_pct", "porosity_pooled", "relative_density"):
        assert r[required] != ""
    assert "filling_rate_pct" not in rows[0]


def test_samples_csv_density_columns(tmp_path):
    a = sample_stats([FieldResult("a", sample="A", porosity=0.2, void_pixels=2,
                                  region_pixels=10)])
    b = sample_stats([FieldResult("b", sample="B", porosity=0.3, void_pixels=3,
                                  region_pixels=10)])
    a = a.replace(density={"filling_rate_pct": 78.5, "porosity_density_pct": 21.5,
                           "difference_pp": -1.5, "difference_flag": False,
                           "relative_density_verdict": "fail"})
    rows = read_csv(write_samples_csv(tmp_path / "s.csv", [a, b]))
    assert rows[0][-5:] == [c for c, _ in DENSITY_COLUMNS]
    ra, rb = dict(zip(rows[0], rows[1])), dict(zip(rows[0], rows[2]))
    assert ra["filling_rate_pct"] == "78.5" and ra["density_flag"] == "false"
    assert ra["relative_density_verdict"] == "fail"
    assert rb["filling_rate_pct"] == "" and rb["density_flag"] == ""


def _strict_json(path):
    def no_nan(x):
        raise AssertionError(f"non-standard JSON constant {x}")

    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=no_nan)


def test_results_json_has_provenance(tmp_path):
    pipe = pipeline_from_dict({"name": "p", "spec": {"porosity_max": 0.5}})
    fields = [FieldResult("/d/a.tif", sample="S", field=1, porosity=0.2, void_pixels=2,
                          region_pixels=10, sha256="ab" * 32, pixel_size_um=0.05,
                          pixel_size_source="zeiss", histogram=(1, 2, 3)),
              FieldResult("/d/b.tif", sample="S", field=2, status="error", message="broken")]
    _, samples = compute_samples(fields, pipe)
    doc = _strict_json(write_results_json(tmp_path / "r.json", fields, samples, pipe,
                                          {"command": "poromet batch d", "started": "t0"}))
    assert doc["pipeline"]["hash"] == pipe.hash and doc["pipeline"]["name"] == "p"
    assert doc["pipeline"]["settings"]["spec"]["porosity_max"] == 0.5
    assert "[spec]" in doc["pipeline"]["toml"]
    assert doc["run"]["command"] == "poromet batch d" and doc["run"]["version"]
    inputs = {i["path"]: i for i in doc["provenance"]["inputs"]}
    assert inputs["/d/a.tif"]["sha256"] == "ab" * 32
    assert inputs["/d/a.tif"]["pixel_size_source"] == "zeiss"
    assert doc["provenance"]["pixel_sizes"] == [
        {"pixel_size_um": 0.05, "source": "zeiss", "n_fields": 1}]
    assert doc["errors"] == [{"path": "/d/b.tif", "sample": "S", "field": 2,
                              "message": "broken"}]
    assert doc["fields"][0]["histogram"] == [1, 2, 3]
    assert doc["samples"][0]["porosity_sd"] is None          # NaN -> null (n = 1)
    assert doc["summary"]["n_errors"] == 1


# -- overlays and masks ----------------------------------------------------------

def test_field_mask_convention():
    arr = synth_arrays(3)
    m = field_mask(arr.region, arr.pores)
    assert set(np.unique(m)) <= {0, 255, MASK_OUTSIDE}
    black, white = int((m == 0).sum()), int((m == 255).sum())
    assert black == int((arr.pores & arr.region).sum())
    assert black + white == int(arr.region.sum())
    assert (m[~arr.region] == MASK_OUTSIDE).all()


def test_render_field_writes_overlay_thumb_mask(tmp_path):
    import cv2

    arr = synth_arrays(1)
    res = field_for(arr, sample="S 1/x", path="/data/S1/a b.ome.tif")
    out = render_field(res, arr, tmp_path, save_masks=True, thumb_px=64)
    assert out.overlay == "overlays/S 1_x/a b.png"             # separator made safe
    assert out.thumbnail == "thumbs/S 1_x/a b.png"
    assert out.porosity == res.porosity                        # measurement untouched
    ov = cv2.imread(str(tmp_path / out.overlay), cv2.IMREAD_COLOR)
    assert ov.shape == (H, W, 3)
    # pore pixels inside the region (away from the outline and label) are tinted red
    inner = np.zeros_like(arr.region)
    inner[30:H - 35, 20:W - 20] = True
    pore_px = ov[arr.pores & inner].astype(int)
    solid_px = ov[~arr.pores & inner].astype(int)
    assert len(pore_px) and (pore_px[:, 2] > pore_px[:, 0] + 60).mean() > 0.95
    assert (np.abs(solid_px[:, 2] - solid_px[:, 0]) < 10).mean() > 0.95
    # outside the region (not outline, not info bar) is dimmed
    assert ov[3:6, 60:100].mean() < 0.6 * arr.gray8[3:6, 60:100].mean() + 1
    # the region outline is drawn (yellow) on the region border
    edge = ov[40:80, W - 13].astype(int)
    assert ((edge[:, 1] > 200) & (edge[:, 2] > 200) & (edge[:, 0] < 100)).mean() > 0.8
    th = cv2.imread(str(tmp_path / out.thumbnail), cv2.IMREAD_COLOR)
    assert max(th.shape[:2]) == 64
    m = cv2.imread(str(tmp_path / "masks/S 1_x/a b.png"), cv2.IMREAD_UNCHANGED)
    assert m.dtype == np.uint8 and m.shape == (H, W)
    assert (m == 0).sum() / ((m == 0).sum() + (m == 255).sum()) == pytest.approx(res.porosity)


def test_render_field_without_masks_and_bad_shapes(tmp_path):
    arr = synth_arrays(2)
    render_field(field_for(arr), arr, tmp_path)
    assert not (tmp_path / "masks").exists()
    bad = FieldArrays(gray8=arr.gray8, region=arr.region[:-1], pores=arr.pores)
    with pytest.raises(PorometError, match=r"S01_f01\.tif: overlay arrays differ in shape"):
        render_field(field_for(arr), bad, tmp_path)


# -- the whole output set --------------------------------------------------------

def test_write_outputs(tmp_path):
    fields = build_run(tmp_path, samples=("S2", "S10"), n=3)
    fields.append(FieldResult("/data/S2/S2_f04.tif", sample="S2", field=4, status="error",
                              message="/data/S2/S2_f04.tif: not an image"))
    pipe = pipeline_from_dict({"spec": {"porosity_max": 0.5}})
    paths = write_outputs(tmp_path, fields[::-1], pipe, run_info={"command": "c"},
                          complete=lambda name: name != "S10")
    assert set(paths) == {"fields", "samples", "results", "report"}
    rows = read_csv(paths["samples"])
    assert [r[0] for r in rows[1:]] == ["S2", "S10"]               # natural order
    hdr = rows[0]
    s2, s10 = dict(zip(hdr, rows[1])), dict(zip(hdr, rows[2]))
    assert s2["n_fields"] == "3" and s2["n_excluded"] == "1" and s2["complete"] == "true"
    assert s10["complete"] == "false" and s10["verdict_reason"].startswith("provisional")
    frows = read_csv(paths["fields"])
    assert [r[1] for r in frows[1:]] == ["1", "2", "3", "4", "1", "2", "3"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    html = paths["report"].read_text(encoding="utf-8")
    assert "provisional" in html and "not an image" in html


def test_write_outputs_density_join(tmp_path):
    fields = build_run(tmp_path, samples=("A",), n=3)
    pipe = pipeline_from_dict({"spec": {"relative_density_min": 0.8}})

    def join(samples):
        return [s.replace(density={"step": "final", "filling_rate_pct": 70.0,
                                   "porosity_density_pct": 30.0,
                                   "porosity_image_pct": 100 * s.porosity_mean,
                                   "difference_pp": 100 * s.porosity_mean - 30.0,
                                   "difference_flag": True,
                                   "relative_density_verdict": "fail", "message": ""})
                for s in samples]

    paths = write_outputs(tmp_path, fields, pipe, density=join)
    rows = read_csv(paths["samples"])
    r = dict(zip(rows[0], rows[1]))
    assert r["filling_rate_pct"] == "70.0" and r["density_flag"] == "true"
    assert r["verdict"] == "fail"
    doc = _strict_json(paths["results"])
    assert doc["samples"][0]["density"]["filling_rate_pct"] == 70.0
    html = paths["report"].read_text(encoding="utf-8")
    assert "filling rate" in html and "70.00 %" in html


def test_write_outputs_density_error_still_writes(tmp_path):
    fields = build_run(tmp_path, samples=("A",), n=2)

    def bad(samples):
        raise PorometError("sheet.csv: row 2 (A): column mass_mg: got -1")

    with pytest.raises(PorometError, match="row 2"):
        write_outputs(tmp_path, fields, pipeline_from_dict({}), density=bad)
    assert (tmp_path / "samples.csv").is_file()
    assert "density sheet not joined" in (tmp_path / "report.html").read_text(encoding="utf-8")


# -- HTML ------------------------------------------------------------------------

def test_report_is_self_contained_and_escaped(tmp_path):
    nasty = 'S<script>alert("x")</script>'
    arr = synth_arrays(5)
    fields = [render_field(field_for(arr, sample=nasty, field=1,
                                     path="/data/<b>odd<b> #1.tif"), arr, tmp_path)]
    fields.append(FieldResult("/data/e<i>.tif", sample=nasty, field=2, status="error",
                              message="e<i>.tif: <img src=x onerror=alert(1)>"))
    pipe = pipeline_from_dict({})
    _, samples = compute_samples(fields, pipe)
    html = write_report(tmp_path / "report.html", fields, samples, pipe, None).read_text("utf-8")
    assert "<script" not in html.lower()
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "<b>odd<b>" not in html and "&lt;b&gt;odd&lt;b&gt; #1.tif" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html and "@import" not in html
    hrefs = re.findall(r'href="(overlays/[^"]+)"', html)
    assert hrefs and all("%20" in h and " " not in h and "#" not in h for h in hrefs)
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 1
    assert "could not be measured" in html


def test_report_bounds_inline_thumbnails(tmp_path):
    fields = build_run(tmp_path, samples=("A", "B"), n=3)
    pipe = pipeline_from_dict({})
    _, samples = compute_samples(fields, pipe)
    html = render_report(fields, samples, pipe, None, base_dir=tmp_path, max_inline_thumbs=4)
    assert html.count('src="data:image/png;base64,') == 4
    assert html.count("overlay (not inlined)") == 2
    for f in fields:                                     # every overlay still linked
        assert f'href="{f.overlay}"' in html


def test_report_missing_thumbnail_is_a_placeholder(tmp_path):
    f = FieldResult("/d/a.tif", sample="S", field=1, porosity=0.1, void_pixels=1,
                    region_pixels=10, thumbnail="thumbs/S/a.png", overlay="overlays/S/a.png")
    pipe = pipeline_from_dict({})
    _, samples = compute_samples([f], pipe)
    html = render_report([f], samples, pipe, None, base_dir=tmp_path)
    assert "base64" not in html and "overlay (not inlined)" in html


# -- headless Chromium -----------------------------------------------------------

_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_CHECK_JS = """<script>window.addEventListener("load", function () {
  var im = document.images, ok = 0, bad = [];
  for (var i = 0; i < im.length; i++) {
    if (im[i].complete && im[i].naturalWidth > 0) ok++; else bad.push(im[i].alt);
  }
  var d = document.createElement("pre"); d.id = "imgcheck";
  d.textContent = JSON.stringify({total: im.length, ok: ok, bad: bad});
  document.body.appendChild(d);
});</script>"""


def _chromium_dump(html_path: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [_CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
             "--dump-dom", html_path.as_uri()],
            capture_output=True, text=True, timeout=60)
    return proc.stdout


@pytest.mark.chromium
@pytest.mark.skipif(_CHROMIUM is None, reason="headless Chromium not installed")
def test_report_thumbnails_decode_in_chromium(tmp_path):
    fields = build_run(tmp_path, samples=("S1", "S2"), n=3)
    # negative control: a thumbnail with a PNG header but corrupt data must fail to decode
    bad = tmp_path / fields[-1].thumbnail
    bad.write_bytes(bad.read_bytes()[:40] + b"\x00" * 64)
    pipe = pipeline_from_dict({"spec": {"porosity_max": 0.3}})
    paths = write_outputs(tmp_path, fields, pipe)
    html = paths["report"].read_text(encoding="utf-8")
    check = tmp_path / "check.html"
    check.write_text(html.replace("</body>", _CHECK_JS + "</body>"), encoding="utf-8")
    dom = _chromium_dump(check)
    m = re.search(r'<pre id="imgcheck">([^<]*)</pre>', dom)
    assert m, f"no image check in Chromium's DOM dump: {dom[:300]!r}"
    result = json.loads(m.group(1))
    assert result["total"] == len(fields)
    assert result["ok"] == len(fields) - 1
    assert result["bad"] == [f"overlay of {Path(fields[-1].path).name}"]
