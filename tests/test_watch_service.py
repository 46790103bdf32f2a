"""The watch service in-process: slow writers, renames, replacements, corrupt
files, files that arrive while it is down, sidecars, sample completion."""

import csv
import hashlib
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from poromet.errors import PorometError
from poromet.pipeline import Pipeline, override
from poromet.watch.cli import watch, watch_status
from poromet.watch.journal import Journal
from poromet.watch.service import WatchConfig, WatchService


def field_bytes(seed, *, porosity=0.2, shape=(96, 128)):
    """A small TIFF: bright solid with dark square pores covering ~``porosity``."""
    rng = np.random.default_rng(seed)
    a = np.full(shape, 200, np.uint8)
    pores = rng.random((shape[0] // 8, shape[1] // 8)) < porosity
    a[np.kron(pores, np.ones((8, 8), bool))] = 40
    a = np.clip(a.astype(int) + rng.integers(-8, 9, shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    tifffile.imwrite(buf, a)
    return buf.getvalue()


def rows(out, name="fields.csv"):
    with open(out / name, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def cfg(inp, out, **kw):
    kw.setdefault("settle", 0.3)
    kw.setdefault("interval", 0.5)
    kw.setdefault("report", False)
    return WatchConfig(input_dir=inp, out_dir=out, **kw)


class Running:
    """Run a WatchService in a thread; wait for conditions on its journal."""

    def __init__(self, config):
        self.svc = WatchService(config)
        self.config = config
        self.thread = threading.Thread(target=self.svc.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.svc.stop()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()

    def wait(self, cond, timeout=20.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.thread.is_alive() is False:
                raise AssertionError("service died")
            if not self.config.journal_path.is_file():
                time.sleep(0.1)
                continue
            try:
                j = Journal(self.config.journal_path, readonly=True)
            except PorometError:          # being created right now
                time.sleep(0.1)
                continue
            with j:
                if cond(j):
                    return
            time.sleep(0.1)
        raise AssertionError("condition not reached")


def n_done(j, state="done"):
    return j.counts()[state]


@pytest.fixture
def dirs(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    return inp, out


def test_once_measures_groups_and_writes_outputs(dirs):
    inp, out = dirs
    (inp / "S01").mkdir()
    for f in range(1, 4):
        (inp / "S01" / f"S01_f{f:02d}.tif").write_bytes(field_bytes(f))
    (inp / "S02_f01.tif").write_bytes(field_bytes(9))
    (inp / "S01" / "~S01_f04.tif").write_bytes(b"lock file")
    (inp / "S01" / "S01_f05.tif.part").write_bytes(field_bytes(5)[:100])
    p = override(Pipeline(), sample__fields=3)
    assert WatchService(cfg(inp, out, pipeline=p, report=True)).run(once=True) == 0
    fr = rows(out)
    assert sorted((r["sample"], r["field"]) for r in fr) == [("S01", "1"), ("S01", "2"),
                                                              ("S01", "3"), ("S02", "1")]
    assert all(r["status"] == "ok" for r in fr)
    samples = {r["sample"]: r for r in rows(out, "samples.csv")}
    assert samples["S01"]["complete"] == "true" and samples["S02"]["complete"] == "false"
    assert (out / "report.html").stat().st_size > 0 and (out / "results.json").is_file()
    log = (out / "watch.log").read_text(encoding="utf-8")
    assert "sample S01 complete: 3 good fields" in log and "~S01_f04" not in log
    # a second run measures nothing again
    assert WatchService(cfg(inp, out, pipeline=p)).run(once=True) == 0
    assert len(rows(out)) == 4
    assert (out / "watch.log").read_text(encoding="utf-8").count("measured ") == 4


def test_corrupt_files_fail_after_tries_and_are_copied(dirs):
    inp, out = dirs
    good = field_bytes(1)
    files = {"S_f01.tif": good,
             "S_f02.tif": good[: len(good) // 2],                    # truncated for good
             "S_f03.tif": b"II*\x00" + bytes(range(256)) * 8,        # bad IFD
             "S_f04.tif": bytes(range(256)) * 20}                    # not an image at all
    for name, data in files.items():
        (inp / name).write_bytes(data)
    before = {n: hashlib.sha256((inp / n).read_bytes()).hexdigest() for n in files}
    with Running(cfg(inp, out, max_tries=2, settle=0.2)) as r:
        r.wait(lambda j: n_done(j, "failed") == 3 and n_done(j) == 1)
    fr = {Path(x["path"]).name: x for x in rows(out)}
    assert fr["S_f01.tif"]["status"] == "ok"
    for name in ("S_f02.tif", "S_f03.tif", "S_f04.tif"):
        assert fr[name]["status"] == "error" and name in fr[name]["message"]
        copy = out / "quarantine" / "S" / name
        assert copy.read_bytes() == files[name]
        assert (out / "quarantine" / "S" / f"{name}.error.txt").is_file()
    after = {n: hashlib.sha256((inp / n).read_bytes()).hexdigest() for n in files}
    assert after == before                       # originals untouched, still in place
    res = CliRunner().invoke(watch_status, [str(out)])
    assert res.exit_code == 1
    assert "1 done, 3 failed, 0 pending" in res.output and "S_f03.tif" in res.output


def test_slow_writer_with_stalls_and_rename_into_place(dirs):
    inp, out = dirs
    (inp / "A").mkdir()
    slow, renamed = field_bytes(2), field_bytes(3)
    with Running(cfg(inp, out, settle=0.6)) as r:
        target = inp / "A" / "A_1.tif"
        with open(target, "wb") as fh:
            for k in range(0, len(slow), 1500):
                fh.write(slow[k:k + 1500])
                fh.flush()
                time.sleep(0.25 if k % 6000 else 0.45)    # stalls shorter than settle
        tmp = inp / "A" / "A_2.tif.part"
        tmp.write_bytes(renamed)
        time.sleep(0.8)
        tmp.replace(inp / "A" / "A_2.tif")
        r.wait(lambda j: n_done(j) == 2)
        with Journal(r.config.journal_path, readonly=True) as j:
            assert j.counts()["failed"] == 0 and j.counts()["superseded"] == 0
            assert sorted(Path(e.path).name for e in j.entries()) == ["A_1.tif", "A_2.tif"]
    fr = {Path(x["path"]).name: x for x in rows(out)}
    assert len(rows(out)) == 2
    assert fr["A_1.tif"]["sha256"] == hashlib.sha256(slow).hexdigest()
    assert fr["A_2.tif"]["sha256"] == hashlib.sha256(renamed).hexdigest()


def test_replaced_file_is_measured_again_and_replaces_result(dirs):
    inp, out = dirs
    p = inp / "R_f01.tif"
    v1, v2 = field_bytes(4, porosity=0.1), field_bytes(5, porosity=0.5)
    p.write_bytes(v1)
    with Running(cfg(inp, out)) as r:
        r.wait(lambda j: n_done(j) == 1)
        time.sleep(0.3)
        tmp = inp / "R_f01.tmp"
        tmp.write_bytes(v2)
        tmp.replace(p)
        r.wait(lambda j: j.counts()["superseded"] == 1 and n_done(j) == 1)
        time.sleep(0.5)
    fr = rows(out)
    assert len(fr) == 1 and fr[0]["sha256"] == hashlib.sha256(v2).hexdigest()
    assert float(fr[0]["porosity"]) > 0.3


def test_files_arriving_while_down_and_late_sidecar(dirs):
    inp, out = dirs
    (inp / "D_f01.tif").write_bytes(field_bytes(6))
    assert WatchService(cfg(inp, out)).run(once=True) == 0
    (inp / "D_f02.tif").write_bytes(field_bytes(7))            # while the service is down
    with Running(cfg(inp, out, settle=1.0)) as r:
        r.wait(lambda j: n_done(j) == 2)
        (inp / "D_f03.tif").write_bytes(field_bytes(8))
        time.sleep(0.4)                                        # within the settle time
        (inp / "D_f03.roi.json").write_text('{"rect": [0, 0, 64, 48]}')
        r.wait(lambda j: n_done(j) == 3)
        time.sleep(0.3)
    fr = {Path(x["path"]).name: x for x in rows(out)}
    assert set(fr) == {"D_f01.tif", "D_f02.tif", "D_f03.tif"}
    assert int(fr["D_f03.tif"]["region_pixels"]) == 64 * 48
    assert int(fr["D_f02.tif"]["region_pixels"]) == 96 * 128


def test_sample_completion_by_marker_and_quiet_time(dirs):
    inp, out = dirs
    for s in ("M", "Q", "O"):
        (inp / s).mkdir()
        (inp / s / f"{s}_1.tif").write_bytes(field_bytes(ord(s)))
    (inp / "M.done").write_text("")
    WatchService(cfg(inp, out, quiet_minutes=60)).run(once=True)
    complete = {r["sample"]: r["complete"] for r in rows(out, "samples.csv")}
    assert complete == {"M": "true", "O": "false", "Q": "false"}
    (inp / "O" / "O_1.tif").unlink()                # measured originals may be deleted
    WatchService(cfg(inp, out, quiet_minutes=0.005)).run(once=True)
    complete = {r["sample"]: r["complete"] for r in rows(out, "samples.csv")}
    assert complete == {"M": "true", "O": "true", "Q": "true"}


def test_refuses_journal_in_input_and_second_instance(dirs):
    inp, out = dirs
    with pytest.raises(PorometError, match="inside the watched folder"):
        WatchService(cfg(inp, out, journal=inp / "j.sqlite")).run(once=True)
    with Running(cfg(inp, out)) as r:
        r.wait(lambda j: True)
        with pytest.raises(PorometError, match="another `poromet watch`"):
            WatchService(cfg(inp, out)).run(once=True)


def test_pipeline_change_measures_again(dirs):
    inp, out = dirs
    (inp / "P_f01.tif").write_bytes(field_bytes(11))
    WatchService(cfg(inp, out)).run(once=True)
    p = override(Pipeline(), threshold__method="li")
    WatchService(cfg(inp, out, pipeline=p)).run(once=True)
    fr = rows(out)
    assert len(fr) == 1 and fr[0]["threshold_method"] == "li"
    assert "pipeline changed" in (out / "watch.log").read_text(encoding="utf-8")


def test_cli_once_and_status(dirs):
    inp, out = dirs
    (inp / "C_f01.tif").write_bytes(field_bytes(12))
    res = CliRunner().invoke(watch, [str(inp), "-o", str(out), "--once", "--settle", "0.2",
                                     "--no-report"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(watch_status, [str(out), "--all"])
    assert res.exit_code == 0
    assert "1 done, 0 failed, 0 pending" in res.output and "C_f01.tif  ok  P=" in res.output
    res = CliRunner().invoke(watch, [str(inp / "nope"), "-o", str(out), "--once"])
    assert res.exit_code == 2 and "no such folder" in res.output
    res = CliRunner().invoke(watch_status, [str(inp)])
    assert res.exit_code == 2 and "no journal here" in res.output
