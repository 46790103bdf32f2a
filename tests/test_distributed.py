"""Dask executor: same rows as the serial run, worker deaths, bounded submission."""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from poromet.batch import FieldTask, discover, run_fields  # noqa: E402
from poromet.distributed import run_fields_dask  # noqa: E402
from poromet.errors import PorometError  # noqa: E402
from poromet.pipeline import load_pipeline, override  # noqa: E402
from poromet.records import FieldResult  # noqa: E402

VOLATILE = ("elapsed_s",)

# distributed's comms occasionally leave a socket to the garbage collector while a
# cluster starts or stops (a ResourceWarning raised as an "unraisable" exception
# at an arbitrary test's teardown); it says nothing about poromet.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _field_image(seed: int, bit_depth: int, shape=(192, 256)) -> np.ndarray:
    """Gray solid with dark elliptical pores, mild shading and noise."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    img = 170.0 + 20.0 * (xx / w) + rng.normal(0, 6, shape)
    for _ in range(int(rng.integers(8, 20))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(3, 14), rng.uniform(3, 14)
        img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 40 + rng.normal(0, 5)
    img = np.clip(img, 0, 255)
    if bit_depth == 16:
        return (img * 257).astype(np.uint16)
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def field_dir(tmp_path_factory):
    """Six small fields in two samples (8- and 16-bit), plus an unreadable one."""
    import tifffile

    root = tmp_path_factory.mktemp("dask_fields")
    for i in range(6):
        sample = "A" if i < 3 else "B"
        tifffile.imwrite(root / f"{sample}_f{i % 3 + 1:02d}.tif",
                         _field_image(100 + i, 8 if i % 2 else 16))
    (root / "C_f01.tif").write_bytes(b"not a tiff at all")
    return root


@pytest.fixture(scope="module")
def pipeline():
    return override(load_pipeline(None), trim__mode="none", image__info_bar="none")


@pytest.fixture(scope="module")
def cluster():
    import dask

    # The scheduler gives up on a task at its first worker death (KilledWorker),
    # so the client-side resubmission is what keeps results whole; a worker
    # holds only the task it runs, so no bystander dies with it.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": 1.0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", worker_dashboard_address=":0",
                                      silence_logs=40) as lc:
            with distributed.Client(lc, set_as_default=False) as client:
                yield client


def _rows(results) -> list[dict]:
    rows = []
    for r in sorted(results, key=lambda r: (r.sample, r.field or 0, r.path)):
        d = r.to_dict()
        for k in VOLATILE:
            d.pop(k)
        rows.append(d)
    return rows


def _assert_same(a, b):
    ra, rb = _rows(a), _rows(b)
    assert [r["path"] for r in ra] == [r["path"] for r in rb]
    for x, y in zip(ra, rb):
        for k in x:
            vx, vy = x[k], y[k]
            if isinstance(vx, float) and math.isnan(vx):
                assert isinstance(vy, float) and math.isnan(vy), k
            else:
                assert vx == vy, (x["path"], k, vx, vy)


@pytest.fixture(scope="module")
def serial(field_dir, pipeline):
    tasks, _ = discover(field_dir)
    return tasks, list(run_fields(tasks, pipeline, None, workers=1, render=False))


def test_dask_gives_the_serial_rows(cluster, serial, pipeline):
    tasks, expected = serial
    got = list(run_fields_dask(tasks, pipeline, None, scheduler=cluster, render=False))
    assert len(got) == len(tasks) == 7
    ok = [r for r in got if r.status != "error"]
    assert len(ok) == 6 and all(0 < r.porosity < 0.6 for r in ok)
    bad = [r for r in got if r.status == "error"]
    assert len(bad) == 1 and "C_f01.tif" in bad[0].message
    _assert_same(got, expected)


def test_workers_are_pinned_to_one_thread(cluster, serial, pipeline):
    tasks, _ = serial
    list(run_fields_dask(tasks[:2], pipeline, None, scheduler=cluster, render=False))

    def _threads():
        import cv2

        return cv2.getNumThreads(), os.environ.get("OMP_NUM_THREADS")

    assert set(cluster.run(_threads).values()) == {(1, "1")}


def test_a_worker_killed_mid_task_changes_nothing(cluster, serial, pipeline, tmp_path):
    tasks, expected = serial
    marker = str(tmp_path / "killed-once")
    victim = tasks[2].path

    def kill_once(task, pipeline, out_dir, roi, render, save_masks, ship_masks):
        from poromet.distributed import _measure_task

        if task.path == victim and not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)        # the worker dies mid-task
        return _measure_task(task, pipeline, out_dir, roi, render, save_masks, ship_masks)

    before = set(cluster.scheduler_info()["workers"])
    got = list(run_fields_dask(tasks, pipeline, None, scheduler=cluster, render=False,
                               field_fn=kill_once))
    assert os.path.exists(marker), "the worker was not killed"
    assert set(cluster.scheduler_info()["workers"]) != before  # a worker was replaced
    _assert_same(got, expected)
    cluster.wait_for_workers(2, timeout=60)


def test_a_task_that_keeps_killing_workers_becomes_an_error_row(cluster, serial, pipeline):
    tasks, expected = serial
    victim = tasks[0].path

    def kill_always(task, pipeline, out_dir, roi, render, save_masks, ship_masks):
        from poromet.distributed import _measure_task

        if task.path == victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return _measure_task(task, pipeline, out_dir, roi, render, save_masks, ship_masks)

    got = list(run_fields_dask(tasks[:3], pipeline, None, scheduler=cluster, render=False,
                               field_fn=kill_always))
    cluster.wait_for_workers(2, timeout=60)
    by_path = {r.path: r for r in got}
    assert by_path[victim].status == "error"
    assert "worker died" in by_path[victim].message and Path(victim).name in by_path[victim].message
    _assert_same([r for r in got if r.path != victim],
                 [r for r in expected if r.path in {t.path for t in tasks[1:3]}])


@pytest.mark.parametrize("overlays", ["workers", "client"])
def test_overlays_drawn_by_workers_or_client_are_the_same(cluster, serial, pipeline, tmp_path,
                                                          overlays):
    pytest.importorskip("poromet.report.overlay")
    tasks, expected = serial
    local_out = tmp_path / "local"
    local = list(run_fields(tasks[:3], pipeline, str(local_out), workers=1, render=True))
    out = tmp_path / overlays
    got = list(run_fields_dask(tasks[:3], pipeline, str(out), scheduler=cluster, render=True,
                               overlays=overlays))
    assert {r.path for r in got} == {t.path for t in tasks[:3]}

    def files(root):
        return sorted(p.relative_to(root) for p in root.rglob("*.png"))

    assert files(out) and files(out) == files(local_out)
    for r in got:
        assert r.overlay, r.warnings
        twin = next(x for x in local if x.path == r.path)
        assert r.porosity == twin.porosity and r.void_pixels == twin.void_pixels
    assert not list(out.glob(".poromet-probe-*"))


def test_submission_is_bounded_for_huge_folders(cluster, pipeline):
    consumed = {"n": 0}
    yielded = 0
    worst = 0

    def lazy_tasks(n):
        for i in range(n):
            consumed["n"] += 1
            yield FieldTask(f"/nowhere/S_{i}.tif", "S", i)

    def fake(task, pipeline, out_dir, roi, render, save_masks, ship_masks):
        return FieldResult(path=task.path, sample=task.sample, field=task.field,
                           porosity=task.field / 1000), None

    got = []
    for r in run_fields_dask(lazy_tasks(120), pipeline, None, scheduler=cluster, render=False,
                             max_in_flight=10, field_fn=fake):
        yielded += 1
        worst = max(worst, consumed["n"] - yielded)
        got.append(r)
    assert worst <= 10
    assert sorted(r.field for r in got) == list(range(120))
    assert all(r.porosity == r.field / 1000 for r in got)


def test_bad_overlays_value_is_named(cluster, pipeline):
    with pytest.raises(PorometError, match=r"overlays: got 'nope'; allowed: 'auto'"):
        list(run_fields_dask([], pipeline, None, scheduler=cluster, overlays="nope"))


def test_missing_dask_says_install_the_extra(monkeypatch, pipeline):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(PorometError, match=r"pip install \"poromet\[dask\]\""):
        list(run_fields_dask([], pipeline, None, scheduler="tcp://127.0.0.1:1"))


def test_unreachable_scheduler_is_named(pipeline):
    with pytest.raises(PorometError, match=r"tcp://127\.0\.0\.1:9: cannot connect"):
        list(run_fields_dask([], pipeline, None, scheduler="tcp://127.0.0.1:9",
                             connect_timeout=1))


def test_cli_batch_on_a_scheduler_writes_the_local_table(cluster, field_dir, tmp_path):
    pytest.importorskip("poromet.report.tables")
    from click.testing import CliRunner

    from poromet.cli import main

    address = cluster.scheduler.address
    args = [str(field_dir), "--no-report", "--trim", "none", "--info-bar", "none", "-q"]
    local = CliRunner().invoke(main, ["batch", *args, "-o", str(tmp_path / "l"), "-j", "1"])
    remote = CliRunner().invoke(main, ["batch", *args, "-o", str(tmp_path / "d"),
                                       "--scheduler", address])
    assert local.exit_code == remote.exit_code == 1, (local.output, remote.output)  # C_f01
    import csv

    def table(p):
        with open(p / "fields.csv", encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            r.pop("elapsed_s", None)
        return rows

    assert table(tmp_path / "l") == table(tmp_path / "d")
