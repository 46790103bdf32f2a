"""Folder discovery and grouping of fields into samples (no image content needed)."""

from pathlib import Path

import pytest

from poromet.batch import discover, is_candidate_image, split_stem
from poromet.errors import PorometError


def touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("S01_f03", ("S01", 3)),
        ("S01-3", ("S01", 3)),
        ("lot_7_S2_12", ("lot_7_S2", 12)),
        ("A-B_field10", ("A-B", 10)),
        ("cover", ("cover", None)),
        ("sample12", ("sample12", None)),
    ],
)
def test_split_stem(stem, expected):
    assert split_stem(stem) == expected


@pytest.mark.parametrize(
    "name, ok",
    [
        ("a.tif", True), ("a.TIFF", True), ("a.png", True), ("a.jpg", True), ("a.bmp", True),
        ("a.roi.json", False), ("a.mask.png", False), ("a.roi", False), ("S01.done", False),
        ("~a.tif", False), ("a.tif.tmp", False), ("a.tif.part", False), (".a.tif", False),
        ("truth.csv", False), ("README.md", False),
    ],
)
def test_candidate_images(name, ok):
    assert is_candidate_image(name) is ok


def test_subfolders_are_samples_and_flat_stems_split(tmp_path):
    for i in (1, 2, 10):
        touch(tmp_path / "S01" / f"S01_f{i:02d}.tif")
        touch(tmp_path / "S01" / f"S01_f{i:02d}.roi.json")
    touch(tmp_path / "S02" / "deep" / "x_3.png")
    touch(tmp_path / "L7_f01.tif")
    touch(tmp_path / "L7-2.tif")
    touch(tmp_path / "overview.tif")
    touch(tmp_path / "truth.csv")
    touch(tmp_path / "out" / "ignored_1.tif")
    tasks, notes = discover(tmp_path, exclude=[tmp_path / "out"])
    got = [(t.sample, t.field, Path(t.path).name) for t in tasks]
    assert got == [
        ("L7", 1, "L7_f01.tif"),
        ("L7", 2, "L7-2.tif"),
        ("S01", 1, "S01_f01.tif"),
        ("S01", 2, "S01_f02.tif"),
        ("S01", 10, "S01_f10.tif"),
        ("S02", 3, "x_3.png"),
        ("overview", 1, "overview.tif"),
    ]
    assert all(Path(t.path).is_absolute() for t in tasks)
    assert any("overview.tif" in n and "one-field sample" in n for n in notes)


def test_duplicate_numbers_fall_back_to_name_order(tmp_path):
    touch(tmp_path / "S1" / "a_1.tif")
    touch(tmp_path / "S1" / "b_1.tif")
    touch(tmp_path / "S1" / "c.tif")
    tasks, notes = discover(tmp_path)
    assert [(t.field, Path(t.path).name) for t in tasks] == [(1, "a_1.tif"), (2, "b_1.tif"), (3, "c.tif")]
    assert any("file-name order" in n for n in notes)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(PorometError, match="not a folder"):
        discover(tmp_path / "nope")


def _blas_threads_var(_):
    import os

    return os.environ.get("OPENBLAS_NUM_THREADS")


@pytest.mark.skipif(__import__("os").name == "nt", reason="forkserver is POSIX only")
def test_workers_start_with_one_blas_thread_and_the_caller_keeps_its_environment(monkeypatch):
    # BLAS reads its thread count when NumPy loads it, which the forkserver
    # does while preloading: the variable must be set before it starts
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import forkserver

    import poromet.batch
    from poromet.batch import start_worker_server

    # the method of macOS (Linux forks its workers straight from the caller)
    monkeypatch.setattr(poromet.batch, "worker_start_method", lambda: "forkserver")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    if getattr(forkserver._forkserver, "_forkserver_pid", None) is not None:
        pytest.skip("a forkserver of this test run is already running")
    start_worker_server()
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    with ProcessPoolExecutor(1, mp_context=mp.get_context("forkserver")) as ex:
        assert ex.submit(_blas_threads_var, 0).result() == "1"


def test_pin_threads_pins_blas_in_this_process():
    # NumPy has loaded BLAS long before: the environment alone is too late
    import subprocess
    import sys

    code = ("import numpy, threadpoolctl; from poromet.batch import pin_threads; pin_threads(); "
            "print(sorted({i['num_threads'] for i in threadpoolctl.threadpool_info() "
            "if i['user_api'] == 'blas'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ,
                                          "OPENBLAS_NUM_THREADS": "4"}).stdout
    assert out.strip() == "[1]"


def _dies_on_f02(task, *args, **kwargs):
    import os
    import time

    from poromet.records import FieldResult

    if task.path.endswith("f02.tif"):
        os._exit(3)                       # the worker dies, as when it is killed
    time.sleep(0.1)                       # the others are in flight when it dies
    return FieldResult(path=task.path, sample=task.sample, field=task.field, status="ok",
                       porosity=0.1)


@pytest.mark.skipif(__import__("poromet.batch").batch.worker_start_method() != "fork",
                    reason="the replaced measuring function reaches the workers by fork only")
def test_a_dying_worker_loses_and_doubles_nothing(monkeypatch):
    """Workers die on one field (three tries, then an error row); every other
    field gives exactly one result, whatever was in flight with it."""
    import poromet.batch as batch
    from poromet.batch import FieldTask, run_fields
    from poromet.pipeline import Pipeline

    monkeypatch.setattr(batch, "process_field", _dies_on_f02)
    tasks = [FieldTask(f"/nowhere/S01_f{i:02d}.tif", "S01", i) for i in range(1, 13)]
    results = list(run_fields(tasks, Pipeline(), None, workers=2, render=False))
    paths = sorted(r.path for r in results)
    assert paths == sorted(t.path for t in tasks)                 # each once
    bad = [r for r in results if r.status == "error"]
    assert [r.path for r in bad] == ["/nowhere/S01_f02.tif"]
    assert "worker process died" in bad[0].message


def test_start_method():
    import os
    import sys

    from poromet.batch import worker_start_method

    want = ("spawn" if os.name == "nt" else
            "fork" if sys.platform.startswith("linux") else "forkserver")
    assert worker_start_method() == want
