"""Run fields as tasks on a Dask distributed cluster (``poromet batch --scheduler``).

Dask is an optional extra::

    pip install "poromet[dask]"

Each field is one task (``client.map(..., pure=False, retries=...)``): the
task takes a file path, measures it with the same function as a local run
(:func:`poromet.batch.process_field`, which turns bad input into a
``status='error'`` row) and returns a small :class:`~poromet.records.FieldResult`.
Results come back as they complete; at most a few tasks per worker thread
are in flight, so a folder of 10,000 images keeps the client's memory flat.

Running on an existing cluster
------------------------------
Start a scheduler and workers (one thread per worker process: poromet pins
OpenCV and BLAS to one thread, so processes, not threads, give the
parallelism)::

    dask scheduler                                     # on HOST, port 8786
    dask worker tcp://HOST:8786 --nworkers 8 --nthreads 1 --memory-limit 2GB
    poromet batch /shared/run42 -o /shared/run42-out --scheduler tcp://HOST:8786

The workers must see the input files at the same paths as the client
(a shared filesystem: NFS, SMB, Lustre...).  The overlay pictures of the
report are written by the workers into ``OUT_DIR`` when they can see it
(poromet checks this by writing a probe file); when they cannot, each
worker sends back its field's two masks (bit-packed and compressed, a few
hundred kB) and the client draws the overlays itself.

On SLURM (or PBS, SGE...) through dask-jobqueue, start the cluster from a
Python script and pass its address::

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=1, processes=1, memory="2GB", walltime="02:00:00")
    cluster.scale(jobs=16)
    print(cluster.scheduler_address)   # -> poromet batch ... --scheduler <address>

or call the library directly: ``run_fields_dask(tasks, pipeline, out_dir,
scheduler=Client(cluster))``.

Failures
--------
* A worker that dies mid-task (killed, out of memory, node lost) is
  replaced by the scheduler, which re-runs its tasks elsewhere; the result is
  the same as if nothing had happened.  A task on workers that died more
  often than the scheduler allows (``distributed.scheduler.allowed-failures``,
  default 3) is submitted once more (``killed_retries``), then becomes an
  error row ("the worker died while measuring this image").  With
  ``--nthreads 1`` and ``distributed.scheduler.worker-saturation: 1.0`` a
  worker holds only the task it runs, so a dying worker takes no bystander
  with it.
* An exception raised by the task itself (only an internal bug can do that:
  bad input is already an error row) is retried ``retries`` times, then
  becomes an error row.
"""

from __future__ import annotations

import os
import uuid
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import PorometError

__all__ = ["run_fields_dask", "connect", "OVERLAY_MODES"]

#: Where overlays are drawn: ``'auto'`` (workers when they see OUT_DIR,
#: else the client), ``'workers'``, ``'client'``, ``'skip'``.
OVERLAY_MODES = ("auto", "workers", "client", "skip")

_INSTALL_HINT = ("--scheduler needs Dask distributed, which is not installed; "
                 "install it with: pip install \"poromet[dask]\"")


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise PorometError(_INSTALL_HINT) from None
    return distributed


def connect(scheduler, *, timeout: float = 30.0):
    """Return ``(client, owned)`` for a scheduler address or an existing client.

    Parameters
    ----------
    scheduler : str or distributed.Client or cluster object
        ``'tcp://HOST:PORT'`` (or any address ``distributed.Client``
        accepts), a ``Client``, or a cluster object (``LocalCluster``,
        ``SLURMCluster``...).
    timeout : float
        Seconds to wait for the scheduler.

    Returns
    -------
    client : distributed.Client
    owned : bool
        True when this function opened the connection (the caller closes it).

    Raises
    ------
    PorometError
        Dask is not installed, or the scheduler cannot be reached.
    """
    distributed = _import_distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    try:
        client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise PorometError(
            f"--scheduler {scheduler}: cannot connect to the Dask scheduler within "
            f"{timeout:g} s ({type(exc).__name__}: {exc}); allowed: the address of a running "
            "scheduler, e.g. tcp://HOST:8786 (start one with `dask scheduler`)") from None
    except ValueError as exc:
        raise PorometError(f"--scheduler {scheduler!r}: not a scheduler address ({exc}); "
                           "allowed: tcp://HOST:PORT") from None
    return client, True


# -- worker side --------------------------------------------------------------

def _worker_probe(path: str) -> bool:
    return os.path.exists(path)


def _pack(mask) -> bytes:
    import numpy as np

    return zlib.compress(np.packbits(mask, axis=None).tobytes(), 1)


def _unpack(blob: bytes, shape: tuple[int, int]):
    import numpy as np

    bits = np.frombuffer(zlib.decompress(blob), np.uint8)
    return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).view(bool)


def _measure_task(task, pipeline, out_dir, roi, render, save_masks, ship_masks):
    """The Dask task: measure one field (never raises for bad input).

    ``ship_masks``: measure only, and return the region and pore masks
    (bit-packed, zlib) so the client can draw the overlay.
    """
    from .batch import pin_threads, process_field

    pin_threads()
    if not ship_masks:
        return process_field(task, pipeline, out_dir, roi=roi, render=render,
                             save_masks=save_masks), None
    import warnings

    from .measure import measure_field

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, arrays = measure_field(task.path, roi=roi, pipeline=pipeline,
                                           return_arrays=True)
    except Exception:
        # process_field turns the failure into the same error row as a local run
        return process_field(task, pipeline, None, roi=roi, render=False), None
    result = result.replace(sample=task.sample, field=task.field)
    return result, (arrays.region.shape, _pack(arrays.region), _pack(arrays.pores))


def _render_on_client(result, masks, out_dir, save_masks):
    """Draw a field's overlay in the client from the image and shipped masks."""
    import warnings

    from .io import read_image
    from .measure import FieldArrays, _to_gray8
    from .report.overlay import render_field

    shape, region, pores = masks
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = read_image(result.path).data
        arrays = FieldArrays(gray8=_to_gray8(data), region=_unpack(region, shape),
                             pores=_unpack(pores, shape))
        return render_field(result, arrays, out_dir, save_masks=save_masks)
    except Exception as exc:  # rendering must not lose a measurement
        return result.replace(warnings=result.warnings + (f"overlay not written: {exc}",))


# -- client side --------------------------------------------------------------

def _workers_see(client, out_dir: str) -> bool:
    """True when every current worker sees ``out_dir`` (probe file)."""
    probe = Path(out_dir) / f".poromet-probe-{uuid.uuid4().hex}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("poromet: can the Dask workers see this folder?\n")
    except OSError:
        return False
    try:
        seen = client.run(_worker_probe, str(probe))
        return bool(seen) and all(seen.values())
    except Exception:
        return False
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def _killed_message(task) -> str:
    return (f"{task.path}: the Dask worker died while measuring this image "
            "(out of memory or killed) more often than the scheduler allows")


def run_fields_dask(tasks: Iterable, pipeline, out_dir: str | None = None, *, scheduler,
                    roi=None, render: bool = True, save_masks: bool = False,
                    retries: int = 2, overlays: str = "auto", max_in_flight: int | None = None,
                    killed_retries: int = 1, connect_timeout: float = 30.0,
                    field_fn: Callable | None = None) -> Iterator:
    """Measure ``tasks`` on a Dask distributed cluster; yield results as they complete.

    Parameters
    ----------
    tasks : iterable of FieldTask
        The fields to measure (consumed lazily).
    pipeline : Pipeline
        Measurement settings (sent with every task).
    out_dir : str or None
        Output folder for overlays (see ``overlays``); None: no overlays.
    scheduler : str, distributed.Client or cluster
        ``'tcp://HOST:PORT'`` of a running scheduler, or a client/cluster.
        A connection opened here is closed when the iteration ends.
    roi, render, save_masks
        As for :func:`poromet.batch.process_field`.
    retries : int
        Times a task that raised is re-run (``client.map(retries=...)``).
    overlays : {'auto', 'workers', 'client', 'skip'}
        Who draws the overlays when ``render``: ``'auto'`` lets the workers
        draw them when they all see ``out_dir`` (shared filesystem), else the
        client (from shipped masks); ``'skip'`` writes none (results carry a
        warning).
    max_in_flight : int or None
        Tasks submitted but not yet collected (default: 4 per worker
        thread, at least 8).  Bounds the client's memory on huge folders.
    killed_retries : int
        Times a task that the scheduler gave up on (``KilledWorker``: it was
        on workers that died ``allowed-failures + 1`` times) is submitted
        again before it becomes an error row.  A task merely queued on a
        dying worker is then not lost with the one that killed it.
    connect_timeout : float
        Seconds to wait for the scheduler.
    field_fn : callable or None
        Replaces the task function ``(task, pipeline, out_dir, roi, render,
        save_masks, ship_masks) -> (FieldResult, masks or None)``; for tests
        and extensions.

    Yields
    ------
    FieldResult
        One per task, in completion order (sort them for a stable table).

    Raises
    ------
    PorometError
        Dask is not installed, the scheduler cannot be reached, or
        ``overlays`` is not an allowed value.
    """
    if overlays not in OVERLAY_MODES:
        raise PorometError(f"overlays: got {overlays!r}; allowed: "
                           + ", ".join(repr(m) for m in OVERLAY_MODES))
    distributed = _import_distributed()
    from .measure import error_result

    from .batch import pin_threads

    client, owned = connect(scheduler, timeout=connect_timeout)
    try:
        try:  # pin the workers present now; each task pins its own worker too
            client.run(pin_threads)
        except Exception:  # pragma: no cover - a worker leaving meanwhile
            pass
        draw = bool(render and out_dir is not None and overlays != "skip")
        ship = False
        skip_note = None
        if draw and overlays in ("auto", "client"):
            if overlays == "client" or not _workers_see(client, str(out_dir)):
                ship = True
        elif render and out_dir is not None and overlays == "skip":
            skip_note = "overlay not written: overlays='skip' on the Dask cluster"
        fn = field_fn or _measure_task
        queue = iter(tasks)
        ac = distributed.as_completed([], loop=client.loop, with_results=False)
        owner: dict = {}

        def _limit() -> int:
            if max_in_flight:
                return max(1, int(max_in_flight))
            threads = sum(client.nthreads().values())
            return max(8, 4 * threads)

        again: list = []            # tasks to resubmit after a KilledWorker
        killed: dict[str, int] = {}

        def _submit(n: int) -> None:
            batch = []
            while again and len(batch) < n:
                batch.append(again.pop())
            for _ in range(n - len(batch)):
                t = next(queue, None)
                if t is None:
                    break
                batch.append(t)
            if not batch:
                return
            futs = client.map(fn, batch, pipeline=pipeline, out_dir=out_dir, roi=roi,
                              render=draw and not ship, save_masks=save_masks,
                              ship_masks=ship, pure=False, retries=retries)
            for f, t in zip(futs, batch):
                owner[f.key] = t
                ac.add(f)

        limit = _limit()
        _submit(limit)
        done = 0
        for fut in ac:
            task = owner.pop(fut.key)
            try:
                result, masks = fut.result()
            except distributed.KilledWorker:
                fut.release()
                killed[task.path] = killed.get(task.path, 0) + 1
                if killed[task.path] <= killed_retries:
                    again.append(task)
                    _submit(max(0, limit - len(owner)))
                    continue
                result, masks = error_result(task.path, _killed_message(task), pipeline,
                                             sample=task.sample, field=task.field), None
            except Exception as exc:
                result, masks = error_result(
                    task.path, f"{task.path}: internal error on the Dask worker "
                    f"({type(exc).__name__}: {exc})", pipeline,
                    sample=task.sample, field=task.field), None
            fut.release()
            if masks is not None:
                result = _render_on_client(result, masks, out_dir, save_masks)
            elif skip_note and result.status != "error":
                result = result.replace(warnings=result.warnings + (skip_note,))
            yield result
            done += 1
            if done % 32 == 0:
                limit = _limit()
            killed.pop(task.path, None)
            _submit(max(0, limit - len(owner)))
    finally:
        if owned:
            client.close()
