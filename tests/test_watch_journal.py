"""The watch service's SQLite journal, stability tracking and completeness checks."""

import io
import math
import sqlite3

import numpy as np
import pytest
import tifffile

from poromet.batch import discover, task_for_path
from poromet.errors import PorometError
from poromet.records import FieldResult
from poromet.watch.journal import Journal, Signature, is_network_path
from poromet.watch.stability import StabilityTracker, check_complete, file_signature


def tiff_bytes(seed, shape=(48, 64), **kw):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    tifffile.imwrite(buf, rng.integers(0, 255, shape, dtype=np.uint8), **kw)
    return buf.getvalue()


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    yield j
    j.close()


# -- journal -----------------------------------------------------------------------

def test_observe_new_same_changed_replaced(journal):
    what, e = journal.observe("/a.tif", Signature(10, 1), sample="S", field=1, now=100.0)
    assert what == "new" and e.state == "pending" and e.changed_at == 100.0
    assert journal.observe("/a.tif", Signature(10, 1), sample="S", field=1)[0] == "same"
    # still being written: the pending row follows the file, no history row
    what, e2 = journal.observe("/a.tif", Signature(20, 2), sample="S", field=1, now=101.0)
    assert what == "changed" and e2.id == e.id and e2.size == 20 and e2.changed_at == 101.0
    assert journal.counts()["superseded"] == 0
    e3 = journal.begin(e2.id)
    assert e3.state == "measuring" and e3.tries == 1
    journal.finish(e3.id, "done", FieldResult(path="/a.tif", porosity=0.25).to_dict())
    what, e4 = journal.observe("/a.tif", Signature(30, 3), sample="S", field=1)
    assert what == "replaced" and e4.id != e.id and e4.state == "pending" and e4.tries == 0
    counts = journal.counts()
    assert counts["superseded"] == 1 and counts["pending"] == 1 and counts["done"] == 0
    assert [x.path for x in journal.entries()] == ["/a.tif"]


def test_only_one_current_row_per_path_is_enforced(journal):
    journal.observe("/a.tif", Signature(1, 1))
    with pytest.raises(sqlite3.IntegrityError):
        journal._db.execute("INSERT INTO files (path, size, mtime_ns, state, seen_at, "
                            "changed_at, updated_at) VALUES ('/a.tif', 2, 2, 'done', 0, 0, 0)")


def test_restored_old_version_is_measured_again(journal):
    _, e = journal.observe("/a.tif", Signature(1, 1))
    journal.finish(journal.begin(e.id).id, "done", {"status": "ok"})
    _, e = journal.observe("/a.tif", Signature(2, 2))
    journal.finish(journal.begin(e.id).id, "done", {"status": "ok"})
    what, e = journal.observe("/a.tif", Signature(1, 1))     # the first version is back
    assert what == "replaced" and e.state == "pending"
    assert journal.counts()["superseded"] == 1


def test_finish_stores_result_with_nan_as_null(journal):
    _, e = journal.observe("/a.tif", Signature(1, 1), sample="S", field=3)
    journal.begin(e.id)
    r = FieldResult(path="/a.tif", status="error", message="bad")
    journal.finish(e.id, "failed", r.to_dict(), message="bad")
    (entry, d), = list(journal.results())
    assert entry.state == "failed" and entry.message == "bad" and entry.status == "error"
    assert d["porosity"] is None
    back = FieldResult.from_dict({k: v for k, v in d.items() if v is not None})
    assert back.status == "error" and math.isnan(back.porosity)


def test_transitions_refuse_wrong_state(journal):
    _, e = journal.observe("/a.tif", Signature(1, 1))
    journal.begin(e.id)
    with pytest.raises(PorometError, match="not pending"):
        journal.begin(e.id)
    journal.finish(e.id, "done", {"status": "ok"})
    with pytest.raises(PorometError, match="not being measured"):
        journal.finish(e.id, "done", {"status": "ok"})
    with pytest.raises(ValueError, match="allowed: 'done', 'failed'"):
        journal.finish(e.id, "measuring", {})


def test_recover_after_crash_keeps_tries_and_data(tmp_path):
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    _, a = j.observe("/a.tif", Signature(1, 1))
    _, b = j.observe("/b.tif", Signature(1, 1))
    j.finish(j.begin(a.id).id, "done", {"status": "ok", "porosity": 0.1})
    j.begin(b.id)
    j._db.close()                      # no clean shutdown
    j2 = Journal(path)
    recovered = j2.recover()
    assert [e.path for e in recovered] == ["/b.tif"]
    b2 = j2.current("/b.tif")
    assert b2.state == "pending" and b2.tries == 1 and "interrupted" in b2.message
    assert j2.current("/a.tif").result == {"status": "ok", "porosity": 0.1}
    j2.close()


def test_forget_pending_keeps_measured(journal):
    _, a = journal.observe("/a.tif", Signature(1, 1))
    journal.observe("/b.tif", Signature(1, 1))
    journal.finish(journal.begin(a.id).id, "done", {"status": "ok"})
    assert journal.forget_pending("/b.tif") and not journal.forget_pending("/a.tif")
    assert [e.path for e in journal.entries()] == ["/a.tif"]


def test_requeue_all_and_samples(journal):
    _, a = journal.observe("/a.tif", Signature(1, 1))
    journal.finish(journal.begin(a.id).id, "done", {"status": "ok"})
    assert journal.requeue_all() == 1
    assert journal.current("/a.tif").state == "pending"
    journal.set_sample("S01", True, "10 good fields")
    journal.set_sample("S01", False, "reopened")
    assert journal.sample_states() == {"S01": (False, "reopened")}


def test_readonly_and_bad_files(tmp_path):
    with pytest.raises(PorometError, match="no journal here"):
        Journal(tmp_path / "missing.sqlite", readonly=True)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PorometError, match="not a usable poromet journal"):
        Journal(bad)
    Journal(tmp_path / "ok.sqlite").close()
    with Journal(tmp_path / "ok.sqlite", readonly=True) as j:
        assert j.counts()["pending"] == 0


def test_is_network_path_local_tmp(tmp_path):
    assert is_network_path(tmp_path) is False


# -- stability ------------------------------------------------------------------------

def test_tracker_settle_change_and_defer():
    t = StabilityTracker(settle=2.0)
    assert t.update("a", Signature(1, 1), now=0.0)
    assert not t.update("a", Signature(1, 1), now=1.0)
    assert t.ready(now=1.9) == [] and t.ready(now=2.0) == ["a"]
    assert t.update("a", Signature(2, 2), now=2.1)          # grew: wait again
    assert t.ready(now=3.0) == [] and t.ready(now=4.2) == ["a"]
    t.defer("a", 10.0)
    assert t.ready(now=5.0) == [] and t.next_due(now=5.0) == pytest.approx(5.0)
    assert t.ready(now=10.0) == ["a"]
    assert t.update("a", None, now=11.0) and len(t) == 0


def test_file_signature_follows_sidecar(tmp_path):
    p = tmp_path / "a.tif"
    p.write_bytes(tiff_bytes(1))
    s1 = file_signature(p)
    assert s1.size == p.stat().st_size and s1.sidecar == ""
    (tmp_path / "a.roi.json").write_text('{"rect": [0, 0, 10, 10]}')
    s2 = file_signature(p)
    assert s2.size == s1.size and s2.sidecar.startswith("a.roi.json:") and s2 != s1
    assert file_signature(tmp_path / "gone.tif") is None


@pytest.mark.parametrize("cut", [8, 100, 0.5, -1])
def test_check_complete_truncated_tiff(tmp_path, cut):
    data = tiff_bytes(2, compression="zlib")
    n = int(len(data) * cut) if isinstance(cut, float) else (len(data) + cut if cut < 0 else cut)
    p = tmp_path / "a.tif"
    p.write_bytes(data[:n])
    assert check_complete(p) is not None
    p.write_bytes(data)
    assert check_complete(p) is None


def test_check_complete_multipage_and_bad_offset(tmp_path):
    p = tmp_path / "a.tif"
    with tifffile.TiffWriter(p) as w:
        for k in range(3):
            w.write(np.full((32, 32), k, np.uint8))
    assert check_complete(p) is None
    data = bytearray(tiff_bytes(3))
    data[4:8] = (10_000_000).to_bytes(4, "little")          # first IFD beyond the file
    p.write_bytes(bytes(data))
    assert check_complete(p) is not None


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_check_complete_other_formats(tmp_path, ext):
    import cv2

    rng = np.random.default_rng(4)
    ok, enc = cv2.imencode(ext, rng.integers(0, 255, (40, 60), dtype=np.uint8))
    data = enc.tobytes()
    p = tmp_path / f"a{ext}"
    p.write_bytes(data)
    assert check_complete(p) is None
    p.write_bytes(data[: len(data) * 2 // 3])
    assert check_complete(p) is not None


def test_check_complete_rubbish(tmp_path):
    p = tmp_path / "a.tif"
    p.write_bytes(b"")
    assert check_complete(p) == "empty file"
    p.write_bytes(bytes(range(256)) * 2)
    assert "not an image" in check_complete(p)


# -- batch.task_for_path ------------------------------------------------------------------

def test_task_for_path_agrees_with_discover(tmp_path):
    files = ["S01_f01.tif", "S01_f02.tif", "cover.png", "A/x_1.tif", "A/x_3.tif",
             "B/first.tif", "B/second.tif", "B/deep/third.tif", "C/c_2.tif", "C/d_2.tif"]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"x")
    for f in ["S01_f01.roi.json", "~S01_f03.tif", "S01_f04.tif.part", "_skip/z_1.tif",
              ".hidden/z_2.tif", "A/.x_4.tif", "A/x_5.tmp"]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"x")
    tasks, _ = discover(tmp_path)
    assert len(tasks) == len(files)
    for t in tasks:
        assert task_for_path(tmp_path, t.path) == t
    for f in ["S01_f01.roi.json", "~S01_f03.tif", "S01_f04.tif.part", "_skip/z_1.tif",
              ".hidden/z_2.tif", "A/.x_4.tif", "A/x_5.tmp"]:
        assert task_for_path(tmp_path, tmp_path / f) is None
    assert task_for_path(tmp_path / "A", tmp_path / "S01_f01.tif") is None
