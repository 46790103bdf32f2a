"""Helpers of the watch service: sample completion, the instance lock,
quarantine names, the event log and journal results."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path

from ..errors import PorometError

__all__ = ["sample_completion", "InstanceLock", "file_log_handler", "result_from_dict",
           "inside", "safe_name"]

GOOD_STATUSES = ("ok", "flagged")


def _markers(input_dir: Path, sample: str) -> list[Path]:
    return [input_dir / f"{sample}.done", input_dir / sample / f"{sample}.done"]


def sample_completion(entries, *, input_dir: Path, expected: int, quiet_s: float,
                      now: float) -> dict[str, tuple[bool, str]]:
    """Decide which samples are complete.

    A sample is complete when none of its files is still pending and it has
    ``expected`` good (ok/flagged) fields, or a ``<sample>.done`` marker
    exists (in the input folder or the sample folder), or no file of it has
    changed for ``quiet_s`` seconds.

    Returns
    -------
    dict
        ``{sample: (complete, reason)}``.
    """
    info: dict[str, dict] = {}
    for e in entries:
        s = info.setdefault(e.sample, {"good": 0, "pending": 0, "last": 0.0})
        if e.state in ("pending", "measuring"):
            s["pending"] += 1
        elif e.state == "done" and e.status in GOOD_STATUSES:
            s["good"] += 1
        s["last"] = max(s["last"], e.changed_at)
    out = {}
    for name, s in info.items():
        if s["pending"]:
            out[name] = (False, f"{s['pending']} file(s) pending")
        elif s["good"] >= expected:
            out[name] = (True, f"{s['good']} good fields")
        elif any(m.is_file() for m in _markers(input_dir, name)):
            out[name] = (True, f"marker {name}.done ({s['good']} good fields)")
        elif now - s["last"] >= quiet_s:
            out[name] = (True, f"quiet for {quiet_s / 60:g} min ({s['good']} good fields)")
        else:
            out[name] = (False, f"{s['good']} of {expected} good fields")
    return out


class InstanceLock:
    """An exclusive lock on ``path`` (released by the OS if the process dies)."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise PorometError(f"{self.path}: another `poromet watch` is using this journal; "
                               "stop it first, or give this one another -o/--journal") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self.fh = fh

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def result_from_dict(d: dict):
    """A FieldResult from its journal JSON (NaN was stored as null)."""
    from ..records import FieldResult

    nan_fields = {f.name for f in dataclasses.fields(FieldResult)
                  if isinstance(f.default, float) and math.isnan(f.default)}
    return FieldResult.from_dict({k: (math.nan if v is None and k in nan_fields else v)
                                  for k, v in d.items()})


def inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError):
        return False


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")


def file_log_handler(path: Path) -> logging.Handler:
    """Append one line per event to ``path`` (UTF-8, ISO times)."""
    handler = logging.FileHandler(path, encoding="utf-8", delay=False)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S%z"))
    lg = logging.getLogger("poromet.watch")
    lg.addHandler(handler)
    if lg.level == logging.NOTSET or lg.level > logging.INFO:
        lg.setLevel(logging.INFO)
    return handler
