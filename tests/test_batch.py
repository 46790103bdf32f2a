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


_DYING_WORKER = """
import json, os, sys, time
import poromet.batch as batch
from poromet.batch import FieldTask, run_fields, worker_start_method
from poromet.pipeline import Pipeline
from poromet.records import FieldResult

def dies_on_f02(task, *args, **kwargs):
    if task.path.endswith("f02.tif"):
        os._exit(3)                       # the worker dies, as when it is killed
    time.sleep(0.1)                       # the others are in flight when it dies
    return FieldResult(path=task.path, sample=task.sample, field=task.field, status="ok")

if __name__ == "__main__":
    batch.process_field = dies_on_f02     # reaches the workers by fork
    tasks = [FieldTask(f"/nowhere/S01_f{i:02d}.tif", "S01", i) for i in range(1, 13)]
    rows = [(r.path, r.status, r.message)
            for r in run_fields(tasks, Pipeline(), None, workers=2, render=False)]
    print(json.dumps({"method": worker_start_method(), "rows": rows}))
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"),
                    reason="the replaced measuring function reaches the workers by fork only")
def test_a_dying_worker_loses_and_doubles_nothing(tmp_path):
    """A worker dies on one field (three tries, then an error row); every
    other field gives exactly one result, whatever was in flight with it.
    Run in a fresh interpreter, as ``poromet batch`` runs (workers forked)."""
    import json
    import subprocess
    import sys

    script = tmp_path / "dying.py"
    script.write_text(_DYING_WORKER)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["method"] == "fork"
    paths = sorted(p for p, _, _ in got["rows"])
    assert paths == sorted(f"/nowhere/S01_f{i:02d}.tif" for i in range(1, 13))   # each once
    bad = [(p, m) for p, status, m in got["rows"] if status == "error"]
    assert [p for p, _ in bad] == ["/nowhere/S01_f02.tif"]
    assert "worker process died" in bad[0][1]


def test_a_process_with_threads_or_opencv_does_not_fork_its_workers():
    """OpenCV's thread pool (or any thread) does not survive a fork."""
    import subprocess
    import sys

    code = ("import threading, poromet.batch as b; m0 = b.worker_start_method(); "
            "import cv2; m1 = b.worker_start_method(); print(m0, m1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == ("spawn" if __import__("os").name == "nt" else "forkserver")
    if sys.platform.startswith("linux"):
        assert out[0] == "fork"
