"""Large inputs: 10,000-file folders, huge images, decompression bombs, big reports.

The 16k x 12k measurement itself takes about a minute and a few GB; it runs
only with ``POROMET_LARGE_TESTS=1`` (the refusal of the same image under a
lower ``image.max_pixels`` always runs).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from poromet.batch import FieldTask, discover, run_fields
from poromet.errors import ImageReadError
from poromet.measure import measure_field
from poromet.pipeline import load_pipeline, override
from poromet.records import FieldResult

BIG = pytest.mark.skipif(os.environ.get("POROMET_LARGE_TESTS") != "1",
                         reason="set POROMET_LARGE_TESTS=1 for the 16k x 12k measurement")


def _field(seed: int, shape=(96, 128)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(180, 8, shape)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    for _ in range(6):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(3, 9)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 40
    return np.clip(img, 0, 255).astype(np.uint8)


def _peak_rss_mb(code: str, *args: str, timeout: float = 600) -> tuple[float, str]:
    """Run ``code`` in a fresh Python; return (its peak RSS in MB from VmHWM, stdout)."""
    wrapped = code + (
        "\nwith open('/proc/self/status') as _fh:\n"
        "    print('VMHWM', next(l.split()[1] for l in _fh if l.startswith('VmHWM:')))\n")
    proc = subprocess.run([sys.executable, "-c", wrapped, *args], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    kb = next(int(l.split()[1]) for l in out if l.startswith("VMHWM"))
    return kb / 1024, "\n".join(l for l in out if not l.startswith("VMHWM"))


# -- bombs -------------------------------------------------------------------

def _tiff_bomb(path: Path, width: int, height: int) -> Path:
    """A valid little-endian TIFF header claiming ``width x height`` 8-bit
    pixels, with one tiny deflate strip (a decompression bomb's shape)."""
    strip = zlib.compress(b"\x80" * 4096)
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 8),
               (262, 3, 1, 1), (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height),
               (279, 4, 1, len(strip))]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    entries = [(t, ty, n, data_offset if t == 273 else v) for t, ty, n, v in entries]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHI", tag, typ, count)
        ifd += struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
    path.write_bytes(b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + struct.pack("<I", 0)
                     + strip)
    return path


def _png_bomb(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("maker, name", [(_tiff_bomb, "bomb.tif"), (_png_bomb, "bomb.png")])
def test_a_decompression_bomb_is_refused_before_allocating(tmp_path, maker, name):
    bomb = maker(tmp_path / name, 100_000, 100_000)          # claims 10 GPx, 10 GB
    assert bomb.stat().st_size < 10_000
    with pytest.raises(ImageReadError, match=r"100000 x 100000 = 10,000,000,000 pixels.*"
                                             r"limit of 250,000,000 \(image\.max_pixels\)"):
        measure_field(bomb)
    # in a fresh process, refusing it costs no more memory than importing poromet
    code = ("import sys, poromet\nfrom poromet.measure import measure_field\n"
            "from poromet.errors import PorometError\n"
            "try:\n    measure_field(sys.argv[1])\nexcept PorometError as e:\n    print('REFUSED', e)\n")
    peak, out = _peak_rss_mb(code, str(bomb))
    assert "REFUSED" in out and "image.max_pixels" in out
    assert peak < 400, f"peak RSS {peak:.0f} MB while refusing a bomb"


def test_batch_keeps_going_past_a_bomb(tmp_path):
    import tifffile
    from click.testing import CliRunner

    from poromet.cli import main

    src = tmp_path / "in"
    src.mkdir()
    for i in (1, 2):
        tifffile.imwrite(src / f"S1_f{i:02d}.tif", _field(i))
    _tiff_bomb(src / "S1_f03.tif", 70_000, 70_000)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["batch", str(src), "-o", str(out), "--no-report", "-j", "1",
                                    "--trim", "none", "--info-bar", "none", "-q"])
    assert res.exit_code == 1, res.output
    rows = json.loads((out / "results.json").read_text(encoding="utf-8"))
    fields = rows["fields"] if isinstance(rows, dict) else rows
    by_name = {Path(f["path"]).name: f for f in fields}
    assert by_name["S1_f03.tif"]["status"] == "error"
    assert "image.max_pixels" in by_name["S1_f03.tif"]["message"]
    assert by_name["S1_f01.tif"]["status"] == by_name["S1_f02.tif"]["status"] == "ok"


# -- a very large image ----------------------------------------------------------

def _write_big(path: Path, height: int, width: int, *, tile: int = 512) -> Path:
    """Write a large 8-bit pore-like TIFF tile by tile (never held in memory)."""
    import tifffile

    base = np.zeros((tile, tile), np.uint8)
    base[:] = _field(7, (tile, tile))

    def tiles():
        for ty in range(0, height, tile):
            for tx in range(0, width, tile):
                yield np.roll(base, (ty // 7 + tx // 11) % tile, axis=1)

    tifffile.imwrite(path, tiles(), shape=(height, width), dtype=np.uint8,
                     tile=(tile, tile), compression="zlib")
    return path


@pytest.fixture(scope="module")
def big_tiff(tmp_path_factory):
    return _write_big(tmp_path_factory.mktemp("big") / "big_16k.tif", 12_288, 16_384)


def test_a_16k_image_over_the_limit_is_refused_with_the_limit(big_tiff):
    p = override(load_pipeline(None), image__max_pixels=100_000_000)
    with pytest.raises(ImageReadError, match=r"16384 x 12288 = 201,326,592 pixels, more than "
                                             r"the limit of 100,000,000 \(image\.max_pixels\)"):
        measure_field(big_tiff, pipeline=p)
    r = run_fields([FieldTask(str(big_tiff), "big", 1)], p, None, workers=1, render=False)
    row = next(iter(r))
    assert row.status == "error" and "100,000,000" in row.message


@BIG
def test_a_16k_image_is_measured_with_sane_memory(big_tiff):
    code = ("import sys, warnings\nwarnings.simplefilter('ignore')\n"
            "from poromet.measure import measure_field\n"
            "r = measure_field(sys.argv[1], pipeline=None)\n"
            "print('STATUS', r.status, r.porosity, r.width, r.height, r.message)\n")
    t0 = time.perf_counter()
    peak, out = _peak_rss_mb(code, str(big_tiff), timeout=900)
    secs = time.perf_counter() - t0
    assert "STATUS" in out, out
    status = out.split()[1]
    if status == "error":
        assert "max_pixels" in out or "memory" in out
    else:
        assert "16384 12288" in out
        mpx = 16_384 * 12_288 / 1e6
        # a sane budget: under 24 bytes per pixel (the data is 1 byte per pixel)
        assert peak < 24 * mpx, f"peak RSS {peak:.0f} MB for {mpx:.0f} MPx"
    print(f"16k x 12k: {status}, peak RSS {peak:.0f} MB, {secs:.0f} s")


def test_histogram_and_label_areas_of_a_field_over_2_24_pixels_are_exact(monkeypatch):
    # 4100 x 4100 = 16.8 MPx: past OpenCV's exact float32 counts, so both are
    # counted in bands of rows (the field-sized NumPy copies they replaced
    # took 5 GB for a 16k x 12k field)
    from poromet.ijparity import region_histogram
    from poromet.labels import label_areas

    monkeypatch.setenv("POROMET_KERNELS", "0")       # the reference path's route
    rng = np.random.default_rng(7)
    v = rng.uniform(-1, 257, (4100, 4100)).astype(np.float32)
    region = np.zeros(v.shape, bool)
    region[::3] = True
    got = region_histogram(v, region)
    sel = v[region].astype(np.float64)
    want = np.bincount(np.clip(np.floor(sel + 0.5), 0, 255).astype(np.intp), minlength=256)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    del sel
    mask = v > 200
    n, lab, areas = label_areas(mask)
    assert areas.sum() == mask.size and areas[0] == np.count_nonzero(~mask)
    assert np.array_equal(areas, np.bincount(lab.ravel(), minlength=n))


# -- 10,000 files ----------------------------------------------------------------

def test_a_folder_of_10000_files_is_listed_fast_and_small(tmp_path):
    for s in range(100):
        d = tmp_path / f"S{s:03d}"
        d.mkdir()
        for f in range(100):
            os.close(os.open(d / f"S{s:03d}_f{f:03d}.tif", os.O_CREAT | os.O_WRONLY, 0o644))
    t0 = time.perf_counter()
    tasks, notes = discover(tmp_path)
    secs = time.perf_counter() - t0
    tracemalloc.start()
    again, _ = discover(tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert again == tasks
    assert len(tasks) == 10_000 and not notes
    assert tasks[0].sample == "S000" and tasks[-1].field == 99
    assert secs < 20
    assert peak < 40 * 2**20, f"listing 10,000 files took {peak / 2**20:.0f} MB"


def test_processing_many_fields_does_not_accumulate_memory(tmp_path):
    import tifffile

    paths = []
    for i in range(3):
        p = tmp_path / f"S_f{i}.tif"
        tifffile.imwrite(p, _field(i))
        paths.append(str(p))
    pipeline = override(load_pipeline(None), trim__mode="none", image__info_bar="none")
    tasks = [FieldTask(paths[i % 3], "S", i) for i in range(120)]
    tracemalloc.start()
    seen = []
    it = run_fields(tasks, pipeline, None, workers=1, render=False)
    for k, r in enumerate(it):
        assert r.status == "ok", r.message
        if k == 30:
            tracemalloc.reset_peak()
            start, _ = tracemalloc.get_traced_memory()
        seen.append(r.porosity)
    end, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(seen) == 120 and len(set(seen)) == 3
    # the 90 later fields add nothing but their results (a few kB each)
    assert end - start < 90 * 16_384, f"grew {(end - start) / 2**20:.1f} MB"
    assert peak - start < 8 * 2**20


def test_tables_and_report_for_10000_fields_stay_usable(tmp_path):
    from poromet.report.tables import write_outputs

    rng = np.random.default_rng(0)
    pipeline = load_pipeline(None)
    hist = tuple(int(v) for v in rng.integers(0, 500, 256))
    fields = [FieldResult(path=f"/data/S{i // 10:04d}/S{i // 10:04d}_f{i % 10 + 1:02d}.tif",
                          sample=f"S{i // 10:04d}", field=i % 10 + 1,
                          porosity=float(p), porosity_low=float(p) - 0.01,
                          porosity_high=float(p) + 0.01, void_pixels=int(p * 1e6),
                          region_pixels=1_000_000, threshold=100.0, threshold_method="otsu",
                          width=1280, height=960, bit_depth=8, histogram=hist,
                          pipeline_name=pipeline.name, pipeline_hash=pipeline.hash,
                          version="0.1.0", elapsed_s=0.2)
              for i, p in enumerate(rng.uniform(0.05, 0.4, 10_000))]
    t0 = time.perf_counter()
    paths = write_outputs(tmp_path, fields, pipeline, report=True, run_info={"command": "test"})
    secs = time.perf_counter() - t0
    assert secs < 30, f"writing the outputs for 10,000 fields took {secs:.0f} s"
    with open(tmp_path / "fields.csv", encoding="utf-8-sig") as fh:
        assert sum(1 for _ in fh) == 10_001
    html = Path(paths.get("report", tmp_path / "report.html"))
    size_mb = html.stat().st_size / 2**20
    assert size_mb < 25, f"report.html is {size_mb:.1f} MB for 10,000 fields"
    assert (tmp_path / "results.json").stat().st_size < 200 * 2**20
