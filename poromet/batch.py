"""Folder discovery, grouping of fields into samples, and batch execution.

Grouping rules (``discover``):

* an immediate subfolder of the input folder is a **sample**; the images in
  it (and below it) are its **fields**, numbered by the number at the end of
  their stem, else by name order;
* in the input folder itself, a stem ending in a number splits into sample
  and field at the last ``_`` or ``-``: ``S01_f03`` -> sample ``S01``, field 3;
  ``S01-3`` -> ``S01``, field 3;
* a stem with no trailing number (or no separator) is a one-field sample,
  with a warning.

Sidecars (``*.roi.json``, ``*.mask.png``, ``*.roi``), temporary names
(``~*``, ``*.tmp``, ``*.part``), hidden files and non-image extensions are
never fields.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import PorometError
from .pipeline import Pipeline

__all__ = [
    "IMAGE_EXTENSIONS",
    "FieldTask",
    "discover",
    "is_candidate_image",
    "split_stem",
    "process_field",
    "run_fields",
    "task_for_path",
]

IMAGE_EXTENSIONS = frozenset({".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg"})
_TEMP_PATTERNS = re.compile(r"^(~.*|\..*|.*\.(tmp|part|partial|crdownload|swp))$", re.I)
_TRAILING = re.compile(r"^(?P<sample>.+)[_-](?P<prefix>[A-Za-z]*)(?P<num>\d+)$")


@dataclass(frozen=True)
class FieldTask:
    """One image to measure, with its sample and field number."""

    path: str
    sample: str
    field: int


def is_sidecar_name(name: str) -> bool:
    """Sidecars (``poromet.roi.SIDECAR_SUFFIXES``) and ``<sample>.done`` markers."""
    from .roi import is_sidecar

    return is_sidecar(name) or name.lower().endswith(".done")


def is_candidate_image(path: str | Path) -> bool:
    """True for file names that may be fields (by extension; content checked on reading)."""
    name = Path(path).name
    if _TEMP_PATTERNS.match(name) or is_sidecar_name(name):
        return False
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def image_stem(name: str) -> str:
    """File name without its image suffix (``a.ome.tif`` -> ``a``)."""
    stem = Path(name).stem
    if stem.lower().endswith(".ome"):
        stem = stem[:-4]
    return stem


def split_stem(stem: str) -> tuple[str, int | None]:
    """Split a flat-folder stem into (sample, field).

    Examples
    --------
    >>> split_stem("S01_f03")
    ('S01', 3)
    >>> split_stem("S01-3")
    ('S01', 3)
    >>> split_stem("cover")
    ('cover', None)
    """
    m = _TRAILING.match(stem)
    if not m:
        return stem, None
    return m["sample"], int(m["num"])


def _field_number(stem: str) -> int | None:
    m = re.search(r"(\d+)$", stem)
    return int(m.group(1)) if m else None


def discover(input_dir: str | Path, *, exclude: Iterable[str | Path] = ()) -> tuple[list[FieldTask], list[str]]:
    """List the fields in ``input_dir`` and group them into samples.

    Returns
    -------
    tasks : list of FieldTask
        Sorted by sample, then field number.
    notes : list of str
        Warnings about the grouping (one-field samples, duplicate field numbers).
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise PorometError(f"{root}: not a folder")
    excluded = {Path(e).resolve() for e in exclude}
    notes: list[str] = []
    tasks: list[FieldTask] = []

    def _skip_dir(p: Path) -> bool:
        return p.name.startswith((".", "_")) or p.resolve() in excluded

    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        p = Path(entry.path)
        if entry.is_dir():
            if _skip_dir(p):
                continue
            files = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not _skip_dir(Path(dirpath) / d))
                files += [Path(dirpath) / f for f in sorted(filenames) if is_candidate_image(f)]
            numbers = [_field_number(image_stem(f.name)) for f in files]
            if None in numbers or len(set(numbers)) != len(numbers):
                if files:
                    notes.append(f"{p.name}: field numbers taken from file-name order "
                                 "(not every file name ends in a distinct number)")
                numbers = list(range(1, len(files) + 1))
            tasks += [FieldTask(str(f.resolve()), p.name, n) for f, n in zip(files, numbers)]
        elif entry.is_file() and is_candidate_image(entry.name):
            sample, field = split_stem(image_stem(entry.name))
            if field is None:
                notes.append(f"{entry.name}: no trailing field number; measured as a one-field sample {sample!r}")
                field = 1
            tasks.append(FieldTask(str(p.resolve()), sample, field))
    seen: dict[tuple[str, int], str] = {}
    for t in tasks:
        key = (t.sample, t.field)
        if key in seen:
            notes.append(f"{Path(t.path).name}: sample {t.sample!r} field {t.field} also used by "
                         f"{Path(seen[key]).name}")
        seen.setdefault(key, t.path)
    tasks.sort(key=lambda t: (t.sample, t.field, t.path))
    return tasks, notes


# -- executing ----------------------------------------------------------------

#: BLAS/OpenMP thread counts; read once, when NumPy's BLAS loads.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads() -> None:
    """Pin OpenCV and BLAS to one thread (each worker process is one core).

    OpenCV's count and BLAS's (through threadpoolctl: BLAS reads the
    environment only when NumPy loads it, which has happened by now) are
    set in this process; the variables reach its later children.  On a
    busy core, two BLAS threads made the shading fit's small matrix
    products of a 4096x3072 field 25x slower (8 ms instead of 0.3).
    """
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - a dependency; pinning is an optimisation
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - OpenCV missing is an install error
        pass


def process_field(task: FieldTask, pipeline: Pipeline, out_dir: str | None = None, *,
                  roi=None, render: bool = True, save_masks: bool = False,
                  sidecar_wins: bool = True):
    """Measure one field and render its overlay; never raises for bad input.

    ``roi`` is the region for images without a sidecar (a sidecar next to
    the image wins, unless ``sidecar_wins`` is false, as for an explicit
    ``poromet measure --roi``).

    Returns a :class:`~poromet.records.FieldResult` whose ``status`` is
    ``'error'`` (with the message) when the file could not be measured.
    """
    from .measure import error_result, measure_field

    if roi is not None and sidecar_wins and pipeline.trim.mode != "none":
        from .roi import find_sidecar

        if find_sidecar(task.path) is not None:
            roi = None                 # measure_field picks the sidecar up
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if render and out_dir is not None:
                result, arrays = measure_field(task.path, roi=roi, pipeline=pipeline,
                                               return_arrays=True)
            else:
                result, arrays = measure_field(task.path, roi=roi, pipeline=pipeline), None
    except PorometError as exc:
        return error_result(task.path, str(exc), pipeline, sample=task.sample, field=task.field)
    except MemoryError:
        return error_result(task.path, f"{task.path}: not enough memory to measure this image",
                            pipeline, sample=task.sample, field=task.field)
    except Exception as exc:  # a bug, not a user mistake: keep the batch going
        return error_result(task.path, f"{task.path}: internal error ({type(exc).__name__}: {exc})",
                            pipeline, sample=task.sample, field=task.field)
    result = result.replace(sample=task.sample, field=task.field)
    if arrays is not None:
        try:
            from .report.overlay import render_field

            result = render_field(result, arrays, out_dir, save_masks=save_masks)
        except Exception as exc:  # rendering must not lose a measurement
            result = result.replace(warnings=result.warnings + (f"overlay not written: {exc}",))
    return result


#: What a worker needs before its first field (preloaded by the forkserver).
_WORKER_MODULES = ["poromet.batch", "poromet.measure", "poromet.binarize", "poromet.adaptive",
                   "poromet.preprocess", "poromet.io", "poromet.calibrate", "poromet.roi",
                   "poromet.infobar", "poromet.report.overlay"]


def worker_start_method() -> str:
    """How :func:`run_fields` starts its workers.

    * ``'fork'`` on Linux when this process is still plain (no thread of
      its own besides the main one, OpenCV not loaded, as in ``poromet
      batch``): a worker is a copy of it, started at once, with NumPy and
      the package already imported (the pool forks all its workers before
      it starts its own thread);
    * ``'forkserver'`` otherwise on POSIX (OpenCV's thread pool and other
      threads do not survive a fork: a forked worker can hang; macOS's
      system libraries are not safe to fork), preloaded with the chain;
    * ``'spawn'`` on Windows (the only one there).

    The forkserver had been the Linux choice too, but its server starts
    after the caller's own imports and imports NumPy and the chain again
    before it forks the first worker: ~0.4 s before the first field, on the
    critical path of every ``poromet batch -jN`` run.
    """
    import threading

    if os.name == "nt":
        return "spawn"
    if (sys.platform.startswith("linux") and "cv2" not in sys.modules
            and threading.active_count() == 1):
        return "fork"
    return "forkserver"


def start_worker_server() -> None:
    """Start the workers' forkserver now (it preloads the measuring chain),
    so that its imports run beside the caller's own start-up instead of
    after it; :func:`run_fields` then forks its workers from it.  No-op
    where the workers are not started by a forkserver
    (:func:`worker_start_method`)."""
    if worker_start_method() != "forkserver":
        return
    import multiprocessing as mp
    from multiprocessing import forkserver

    mp.get_context("forkserver").set_forkserver_preload(_WORKER_MODULES)
    # the server imports NumPy (its BLAS) from the preload: one thread each
    # from the start (the workers inherit the server's environment)
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        forkserver.ensure_running()
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def _worker_init() -> None:
    pin_threads()


def run_fields(tasks: list[FieldTask], pipeline: Pipeline, out_dir: str | None = None, *,
               workers: int | None = None, roi=None, render: bool = True,
               save_masks: bool = False) -> Iterator:
    """Measure ``tasks`` with a pool of local worker processes.

    Yields results as they complete (order not guaranteed); memory stays
    bounded because at most ``4 * workers`` tasks are in flight.
    ``workers=1`` runs in this process.
    """
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(tasks) <= 1:
        pin_threads()
        for t in tasks:
            yield process_field(t, pipeline, out_dir, roi=roi, render=render, save_masks=save_masks)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from .measure import error_result

    ctx = mp.get_context(worker_start_method())
    if ctx.get_start_method() == "forkserver":
        # the server imports the measuring chain once and every worker is
        # forked from it ready to measure: with ~0.15 s per field, each
        # worker's own imports (~0.5 s) had become a tenth of a 2-worker run
        start_worker_server()          # (already running when the CLI started it)
    queue = list(reversed(tasks))          # pop() from the end keeps the order
    # When a worker dies (out of memory, killed, a crash in a library), any
    # task in flight may have killed it.  Those tasks are run again one at a
    # time, so that a death names its task: a task whose worker dies three
    # times becomes an error row, and every other task gives its result.
    suspects: list = []
    alone: set = set()                     # paths of suspects run alone
    tries: dict[str, int] = {}
    while queue or suspects:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_worker_init) as pool:
            pending: dict = {}
            broken = False
            while (queue or suspects or pending) and not broken:
                isolate = bool(suspects) or any(t.path in alone for t in pending.values())
                while (queue or suspects) and len(pending) < (1 if isolate else 4 * workers):
                    t = suspects.pop() if suspects else queue.pop()
                    fut = pool.submit(process_field, t, pipeline, out_dir, roi=roi,
                                      render=render, save_masks=save_masks)
                    pending[fut] = t
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for f in finished:
                    if isinstance(f.exception(), BrokenProcessPool):
                        broken = True
                        continue                 # stays pending: judged below
                    t = pending.pop(f)
                    alone.discard(t.path)
                    try:
                        yield f.result()
                    except Exception as exc:
                        yield error_result(t.path, f"{t.path}: internal error ({exc})", pipeline,
                                           sample=t.sample, field=t.field)
            if not broken:
                continue
            # the futures a dead pool did not finish: its victims
            lost = [t for f, t in pending.items()
                    if f.cancelled() or not f.done() or f.exception() is not None]
            for f, t in pending.items():
                if t not in lost:
                    alone.discard(t.path)
                    yield f.result()             # finished before the pool broke
            for t in lost:
                if len(lost) == 1:               # nothing else ran: it died with its worker
                    tries[t.path] = tries.get(t.path, 0) + 1
                    if tries[t.path] > 2:
                        alone.discard(t.path)
                        yield error_result(t.path, f"{t.path}: the worker process died while "
                                           "measuring this image (out of memory?)", pipeline,
                                           sample=t.sample, field=t.field)
                        continue
                alone.add(t.path)
                suspects.append(t)


def task_for_path(input_dir: str | Path, path: str | Path) -> FieldTask | None:
    """The :class:`FieldTask` that :func:`discover` would make for one file.

    Applies the same rules as :func:`discover` (sample subfolders, flat-folder
    stems, skipped hidden/``_`` folders, temporary names and sidecars) to a
    single ``path`` inside ``input_dir``, so a watch service can place a new
    file without rescanning the whole folder.  In a sample folder whose file
    names do not all end in distinct numbers the field number depends on the
    other files (name order), so that folder is listed.

    Returns
    -------
    FieldTask or None
        None when ``path`` is not a field: outside ``input_dir``, not a
        candidate image name, or inside a skipped folder.

    Examples
    --------
    >>> task_for_path("/data/in", "/data/in/S01_f03.tif")    # doctest: +SKIP
    FieldTask(path='/data/in/S01_f03.tif', sample='S01', field=3)
    """
    root = Path(input_dir).resolve()
    p = Path(path)
    p = (root / p if not p.is_absolute() else p).resolve()
    try:
        rel = p.relative_to(root)
    except ValueError:
        return None
    if not rel.parts or not is_candidate_image(p.name):
        return None
    if len(rel.parts) == 1:
        sample, field = split_stem(image_stem(p.name))
        return FieldTask(str(p), sample, 1 if field is None else field)
    if any(part.startswith((".", "_")) for part in rel.parts[:-1]):
        return None
    sample_dir = root / rel.parts[0]
    files = []
    for dirpath, dirnames, filenames in os.walk(sample_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        files += [Path(dirpath) / f for f in sorted(filenames) if is_candidate_image(f)]
    if p not in files:
        files.append(p)        # not on disk (any more): number it by its own name
    numbers = [_field_number(image_stem(f.name)) for f in files]
    if None in numbers or len(set(numbers)) != len(numbers):
        numbers = list(range(1, len(files) + 1))
    return FieldTask(str(p), rel.parts[0], numbers[files.index(p)])
