"""The watch service's journal: every file seen, its state and its result.

A SQLite database on local disk (WAL mode, ``synchronous=FULL``).  One row
per *version* of a file, keyed by ``(path, size, mtime_ns)``; at most one
row per path is *current* (state other than ``superseded``)::

    pending ──begin──▶ measuring ──finish──▶ done | failed
       ▲                  │ (kill -9: reset to pending at the next start)
       └──retry/changed───┘

Every transition is one SQLite transaction, and a result is written in the
same ``UPDATE`` as the state that says it exists, so a process killed at
any moment leaves a consistent journal: after a restart nothing is lost
(pending and in-flight files are measured again) and no result is recorded
twice (one current row per path).  A file replaced by a new version (other
size or mtime, or other sidecar) supersedes its old row; the new version is
measured and its result replaces the old one in the outputs.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import PorometError

__all__ = ["Journal", "JournalEntry", "STATES", "Signature"]

#: Row states.
STATES = ("pending", "measuring", "done", "failed", "superseded")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    sidecar     TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL CHECK (state IN ('pending','measuring','done','failed','superseded')),
    sample      TEXT NOT NULL DEFAULT '',
    field       INTEGER,
    tries       INTEGER NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT '',
    result      TEXT,
    seen_at     REAL NOT NULL,
    changed_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS files_version ON files (path, size, mtime_ns, sidecar);
CREATE UNIQUE INDEX IF NOT EXISTS files_current ON files (path) WHERE state != 'superseded';
CREATE INDEX IF NOT EXISTS files_state ON files (state);
CREATE TABLE IF NOT EXISTS samples (
    name        TEXT PRIMARY KEY,
    complete    INTEGER NOT NULL DEFAULT 0,
    reason      TEXT NOT NULL DEFAULT '',
    changed_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class Signature:
    """What identifies one version of a file: size, mtime and its sidecar."""

    size: int
    mtime_ns: int
    sidecar: str = ""


@dataclass(frozen=True)
class JournalEntry:
    """One row of the journal (a version of a file)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sidecar: str
    state: str
    sample: str
    field: int | None
    tries: int
    message: str
    status: str
    result: dict | None
    seen_at: float
    changed_at: float
    updated_at: float

    @property
    def signature(self) -> Signature:
        return Signature(self.size, self.mtime_ns, self.sidecar)


def _nan_to_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _dumps(result: dict) -> str:
    return json.dumps(_nan_to_none(result), ensure_ascii=False, allow_nan=False)


class Journal:
    """The SQLite journal of a watch service (see the module docstring).

    Parameters
    ----------
    path : str or Path
        Database file (created with its folder).  Keep it on local disk:
        SQLite's locking is unreliable on SMB/NFS shares.
    readonly : bool
        Open for reading only (``poromet watch-status``).

    Raises
    ------
    PorometError
        The file cannot be opened or is not a poromet journal.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.is_file():
                    raise PorometError(f"{self.path}: no journal here (has `poromet watch` run "
                                       "with this output folder?)")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                with self.transaction():
                    for stmt in _SCHEMA.strip().split(";"):
                        if stmt.strip():
                            self._db.execute(stmt)
                    self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                                     (_SCHEMA_VERSION,))
            self._db.row_factory = sqlite3.Row
            self._db.execute("SELECT count(*) FROM files").fetchone()
        except sqlite3.DatabaseError as exc:
            raise PorometError(f"{self.path}: not a usable poromet journal ({exc}); "
                               "move it away to start a new one") from None

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    class _Tx:
        def __init__(self, db):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb):
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            return False

    def transaction(self):
        """Context manager: one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction."""
        return self._Tx(self._db)

    @staticmethod
    def _entry(row: sqlite3.Row) -> JournalEntry:
        d = dict(row)
        d["result"] = json.loads(d["result"]) if d["result"] else None
        return JournalEntry(**d)

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                       "SET value = excluded.value", (key, value))

    # -- queries ------------------------------------------------------------

    def current(self, path: str) -> JournalEntry | None:
        """The current (not superseded) row of ``path``."""
        row = self._db.execute("SELECT * FROM files WHERE path = ? AND state != 'superseded'",
                               (path,)).fetchone()
        return self._entry(row) if row else None

    def entries(self, *states: str) -> list[JournalEntry]:
        """Current rows (or rows in ``states``), ordered by sample, field, path."""
        states = states or ("pending", "measuring", "done", "failed")
        marks = ",".join("?" * len(states))
        rows = self._db.execute(f"SELECT * FROM files WHERE state IN ({marks}) "
                                "ORDER BY sample, field, path", states).fetchall()
        return [self._entry(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of rows in each state."""
        out = dict.fromkeys(STATES, 0)
        for state, n in self._db.execute("SELECT state, count(*) FROM files GROUP BY state"):
            out[state] = n
        return out

    def results(self) -> Iterator[tuple[JournalEntry, dict]]:
        """``(entry, result dict)`` of every current done or failed row."""
        for e in self.entries("done", "failed"):
            if e.result is not None:
                yield e, e.result

    # -- transitions --------------------------------------------------------

    def observe(self, path: str, sig: Signature, *, sample: str = "",
                field: int | None = None, now: float | None = None) -> tuple[str, JournalEntry]:
        """Record that ``path`` exists with signature ``sig``.

        Returns ``(what, entry)`` where ``what`` is ``'new'`` (first seen),
        ``'changed'`` (a pending row got a new signature: still being
        written), ``'replaced'`` (a measured version superseded by a new
        one), or ``'same'``.
        """
        now = time.time() if now is None else now
        with self.transaction() as db:
            row = db.execute("SELECT * FROM files WHERE path = ? AND state != 'superseded'",
                             (path,)).fetchone()
            if row is not None:
                old = self._entry(row)
                if old.signature == sig:
                    if (sample, field) != (old.sample, old.field) and sample:
                        db.execute("UPDATE files SET sample = ?, field = ? WHERE id = ?",
                                   (sample, field, old.id))
                    return "same", old
                if old.state in ("pending", "measuring"):
                    # the previous version was never measured: this is the same
                    # pending record, still being written
                    db.execute("DELETE FROM files WHERE path = ? AND size = ? AND mtime_ns = ? "
                               "AND sidecar = ? AND state = 'superseded'",
                               (path, sig.size, sig.mtime_ns, sig.sidecar))
                    db.execute("UPDATE files SET size = ?, mtime_ns = ?, sidecar = ?, "
                               "state = 'pending', tries = 0, message = '', sample = ?, "
                               "field = ?, changed_at = ?, updated_at = ? WHERE id = ?",
                               (sig.size, sig.mtime_ns, sig.sidecar, sample or old.sample,
                                field if sample else old.field, now, now, old.id))
                    what = "changed"
                else:
                    db.execute("UPDATE files SET state = 'superseded', updated_at = ? "
                               "WHERE id = ?", (now, old.id))
                    what = "replaced"
            else:
                what = "new"
            if what != "changed":
                # a version seen before (file restored to an old version): drop that
                # old superseded row so the key stays unique
                db.execute("DELETE FROM files WHERE path = ? AND size = ? AND mtime_ns = ? "
                           "AND sidecar = ?", (path, sig.size, sig.mtime_ns, sig.sidecar))
                db.execute("INSERT INTO files (path, size, mtime_ns, sidecar, state, sample, "
                           "field, seen_at, changed_at, updated_at) "
                           "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                           (path, sig.size, sig.mtime_ns, sig.sidecar, sample, field,
                            now, now, now))
            row = db.execute("SELECT * FROM files WHERE path = ? AND state != 'superseded'",
                             (path,)).fetchone()
        return what, self._entry(row)

    def forget_pending(self, path: str) -> bool:
        """Drop the row of a file that vanished before it was measured.

        Measured rows are kept (operators delete originals after measuring).
        Returns True when a row was dropped.
        """
        with self.transaction() as db:
            cur = db.execute("DELETE FROM files WHERE path = ? AND state = 'pending'", (path,))
            return cur.rowcount > 0

    def begin(self, entry_id: int, *, now: float | None = None) -> JournalEntry:
        """pending -> measuring, counting a try (kept across crashes)."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            cur = db.execute("UPDATE files SET state = 'measuring', tries = tries + 1, "
                             "updated_at = ? WHERE id = ? AND state = 'pending'", (now, entry_id))
            if cur.rowcount != 1:
                raise PorometError(f"journal row {entry_id} is not pending")
            row = db.execute("SELECT * FROM files WHERE id = ?", (entry_id,)).fetchone()
        return self._entry(row)

    def finish(self, entry_id: int, state: str, result: dict, *, message: str = "",
               now: float | None = None) -> None:
        """measuring -> done/failed with its result, in one statement."""
        if state not in ("done", "failed"):
            raise ValueError(f"state: got {state!r}; allowed: 'done', 'failed'")
        now = time.time() if now is None else now
        with self.transaction() as db:
            cur = db.execute("UPDATE files SET state = ?, result = ?, status = ?, message = ?, "
                             "updated_at = ? WHERE id = ? AND state IN ('measuring', 'pending')",
                             (state, _dumps(result), str(result.get("status", "")), message,
                              now, entry_id))
            if cur.rowcount != 1:
                raise PorometError(f"journal row {entry_id} is not being measured")

    def retry(self, entry_id: int, message: str, *, now: float | None = None) -> None:
        """measuring -> pending after a failed try (the try stays counted)."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute("UPDATE files SET state = 'pending', message = ?, updated_at = ? "
                       "WHERE id = ? AND state = 'measuring'", (message, now, entry_id))

    def count_try(self, entry_id: int, message: str, *, now: float | None = None) -> int:
        """Count a try that did not reach measuring (e.g. an incomplete file)."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute("UPDATE files SET tries = tries + 1, message = ?, updated_at = ? "
                       "WHERE id = ? AND state = 'pending'", (message, now, entry_id))
            row = db.execute("SELECT tries FROM files WHERE id = ?", (entry_id,)).fetchone()
        return int(row[0]) if row else 0

    def recover(self, *, now: float | None = None) -> list[JournalEntry]:
        """After a crash: rows left ``measuring`` go back to ``pending``.

        Their tries stay counted, so a file that kills the process every
        time ends up failed.  Returns the rows reset.
        """
        now = time.time() if now is None else now
        with self.transaction() as db:
            rows = [self._entry(r) for r in
                    db.execute("SELECT * FROM files WHERE state = 'measuring'").fetchall()]
            db.execute("UPDATE files SET state = 'pending', message = 'interrupted while "
                       "measuring (service stopped)', updated_at = ? WHERE state = 'measuring'",
                       (now,))
        return rows

    def requeue_all(self, *, now: float | None = None) -> int:
        """Measure every current file again (the pipeline changed)."""
        now = time.time() if now is None else now
        with self.transaction() as db:
            cur = db.execute("UPDATE files SET state = 'pending', tries = 0, message = "
                             "'pipeline changed: measured again', updated_at = ? "
                             "WHERE state IN ('done', 'failed')", (now,))
            return cur.rowcount

    # -- samples --------------------------------------------------------------

    def sample_states(self) -> dict[str, tuple[bool, str]]:
        """``{sample: (complete, reason)}`` as last recorded."""
        return {r[0]: (bool(r[1]), r[2])
                for r in self._db.execute("SELECT name, complete, reason FROM samples")}

    def set_sample(self, name: str, complete: bool, reason: str,
                   *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute("INSERT INTO samples VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                       "complete = excluded.complete, reason = excluded.reason, "
                       "changed_at = excluded.changed_at", (name, int(complete), reason, now))


def default_journal_path(out_dir: str | Path) -> Path:
    """``OUT_DIR/journal.sqlite``."""
    return Path(out_dir) / "journal.sqlite"


_NETWORK_FS = {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs",
               "fuse.sshfs", "9p", "davfs", "fuse.davfs2", "glusterfs", "ceph", "lustre",
               "gpfs", "fuse.rclone", "fuse.s3fs", "afpfs", "webdav"}


def is_network_path(path: str | Path) -> bool:
    """Best-effort: True when ``path`` lies on a network file system.

    Windows: UNC paths and mapped network drives (``GetDriveTypeW``);
    Linux: the file-system type of the mount holding the path
    (``/proc/self/mounts``); macOS/BSD: ``mount`` is not consulted (False).
    """
    p = Path(path).absolute()
    if os.name == "nt":
        text = str(p)
        if text.startswith(("\\\\", "//")):
            return True
        try:
            import ctypes

            drive = os.path.splitdrive(text)[0] + "\\"
            return ctypes.windll.kernel32.GetDriveTypeW(drive) == 4  # DRIVE_REMOTE
        except Exception:
            return False
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            mounts = [line.split()[:3] for line in fh]
    except OSError:
        return False
    # resolve the longest existing parent
    q = p
    while not q.exists() and q != q.parent:
        q = q.parent
    q = q.resolve()
    best, fstype = "", ""
    for fields in mounts:
        if len(fields) < 3:
            continue
        mnt = fields[1].replace("\\040", " ")
        if (str(q) == mnt or str(q).startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best, fstype = mnt, fields[2]
    return fstype.lower() in _NETWORK_FS
