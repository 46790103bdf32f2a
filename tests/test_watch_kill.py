"""The watch service as a real process: kill -9 mid-batch, restart, exactly one
result per image; SIGTERM stops it cleanly."""

import csv
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poromet.errors import PorometError
from poromet.watch.journal import Journal

from test_watch_service import field_bytes

pytestmark = pytest.mark.skipif(os.name == "nt", reason="uses SIGKILL")


def start(inp, out, *extra):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, "-m", "poromet.cli", "watch", str(inp), "-o", str(out),
         "--settle", "0.4", "--interval", "0.5", "--no-report", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def counts(out):
    try:
        with Journal(out / "journal.sqlite", readonly=True) as j:
            return j.counts()
    except PorometError:
        return None


def wait_for(cond, timeout=40.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def drip(path, data, *, chunks=4, pause=0.05):
    path.parent.mkdir(parents=True, exist_ok=True)
    step = -(-len(data) // chunks)
    with open(path, "wb") as fh:
        for k in range(0, len(data), step):
            fh.write(data[k:k + step])
            fh.flush()
            time.sleep(pause)


def test_kill_9_twice_then_every_image_has_exactly_one_result(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    images = {inp / f"S{s}" / f"S{s}_f{f}.tif": field_bytes(10 * s + f)
              for s in range(1, 4) for f in range(1, 5)}
    corrupt = inp / "S2" / "S2_f9.tif"
    items = list(images.items())
    proc = start(inp, out)
    try:
        for i, (path, data) in enumerate(items):
            drip(path, data)
            if i == 5:
                corrupt.write_bytes(data[: len(data) // 3])
            if i in (4, 8):       # kill -9 while the service is busy with recent arrivals
                wait_for(lambda: (counts(out) or {}).get("done", 0) >= i - 2)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                proc.stderr.close()
                proc = start(inp, out)
        wait_for(lambda: (c := counts(out)) is not None and c["done"] == len(images)
                 and c["failed"] == 1 and c["pending"] + c["measuring"] == 0)
        time.sleep(0.6)          # the outputs follow the journal
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        finally:
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
    assert rc == 0, err
    with open(out / "fields.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_path = {}
    for r in rows:
        by_path.setdefault(r["path"], []).append(r)
    for path, data in images.items():
        got = by_path[str(path.resolve())]
        assert len(got) == 1 and got[0]["status"] == "ok"
        assert got[0]["sha256"] == hashlib.sha256(data).hexdigest()
        assert path.read_bytes() == data                     # originals untouched
    assert [r["status"] for r in by_path[str(corrupt.resolve())]] == ["error"]
    assert len(rows) == len(images) + 1
    with open(out / "samples.csv", encoding="utf-8-sig", newline="") as fh:
        assert sorted(r["sample"] for r in csv.DictReader(fh)) == ["S1", "S2", "S3"]
    log = (out / "watch.log").read_text(encoding="utf-8")
    assert log.count(" start: ") == 3 and log.rstrip().endswith("stop")
