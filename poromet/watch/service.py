"""The watch-folder service: measure images as they arrive, keep outputs current.

File events (watchdog; a polling observer for network shares) are only
hints: the folder is also scanned at start and every ``interval`` seconds,
so files that arrived while the service was down, or whose events were lost,
are picked up.  A file is measured once it has been stable for ``settle``
seconds and holds a complete image (:mod:`poromet.watch.stability`), by the
same :func:`poromet.batch.process_field` that ``poromet batch`` uses; its
state and result go into the SQLite journal (:mod:`poromet.watch.journal`)
and the outputs (``fields.csv``, ``samples.csv``, ``results.json``,
``report.html``) are rewritten atomically from the journal.  Measuring one
file and writing the outputs are in :mod:`poromet.watch.measuring`.

Everything runs in one thread of one process (measuring included), so the
journal has one writer and a kill at any moment loses nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Callable

from ..batch import FieldTask, discover, is_candidate_image, task_for_path
from ..errors import PorometError
from ..pipeline import Pipeline
from .journal import Journal, default_journal_path, is_network_path
from .measuring import _MeasuringMixin
from .stability import StabilityTracker, file_signature, sidecar_paths
from .support import InstanceLock, file_log_handler, inside, sample_completion

__all__ = ["WatchConfig", "WatchService", "sample_completion", "LOG_NAME"]

log = logging.getLogger("poromet.watch")
LOG_NAME = "watch.log"


@dataclass(frozen=True)
class WatchConfig:
    """Settings of one watch service.

    Attributes
    ----------
    input_dir, out_dir : Path
        Folder watched (never written to) and output folder.
    pipeline : Pipeline
        Measurement settings; ``pipeline.sample.fields`` is the field count
        that completes a sample, ``pipeline.sample.quiet_minutes`` the quiet
        time (unless ``quiet_minutes`` is given).
    journal : Path or None
        SQLite journal; None: ``out_dir/journal.sqlite``.  Must be on local disk.
    polling : bool
        Poll the folder (network shares) instead of native file events.
    interval : float
        Seconds between full rescans (and between polls).
    settle : float
        Seconds a file's size, mtime and sidecar must stay unchanged.
    max_tries : int
        Tries before a file is marked failed and quarantined.
    quiet_minutes : float or None
        A sample with no new file for this long is complete.
    report : bool
        Render overlays and ``report.html``.
    roi : optional
        Region applied to every image (a sidecar still wins).
    write_every : float
        While files keep arriving, outputs are rewritten at least this often
        (seconds); they are always rewritten when the queue runs empty.
    """

    input_dir: Path
    out_dir: Path
    pipeline: Pipeline = dc_field(default_factory=Pipeline)
    journal: Path | None = None
    polling: bool = False
    interval: float = 10.0
    settle: float = 5.0
    max_tries: int = 3
    quiet_minutes: float | None = None
    report: bool = True
    roi: object = None
    write_every: float = 30.0

    @property
    def journal_path(self) -> Path:
        return Path(self.journal) if self.journal else default_journal_path(self.out_dir)


class WatchService(_MeasuringMixin):
    """Watch a folder and measure complete images as they arrive.

    Parameters
    ----------
    config : WatchConfig
    measure : callable, optional
        ``(task, pipeline, out_dir, *, roi, render) -> FieldResult``; default
        :func:`poromet.batch.process_field` (tests may pass a stand-in).

    Examples
    --------
    >>> svc = WatchService(WatchConfig(Path("in"), Path("out")))   # doctest: +SKIP
    >>> svc.run(once=True)                                          # doctest: +SKIP
    0
    """

    def __init__(self, config: WatchConfig, *, measure: Callable | None = None):
        self.config = config
        self.input_dir = Path(config.input_dir).resolve()
        self.out_dir = Path(config.out_dir).resolve()
        if measure is None:
            from ..batch import process_field as measure
        self._measure = measure
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._signals = 0
        self._tracker = StabilityTracker(settle=config.settle)
        self._known: dict[str, tuple] = {}      # path -> (signature, sample, field)
        self._dirty = False
        self._rescan = False
        self._notes: set[str] = set()
        self._journal: Journal | None = None
        self._failed_now = 0
        self._last_write = 0.0
        self._samples_logged: dict[str, bool] = {}

    # -- public ---------------------------------------------------------------

    def stop(self) -> None:
        """Ask the service to stop after the current file (thread-safe)."""
        self._stop.set()
        self._events.put(None)

    def run(self, *, once: bool = False) -> int:
        """Run until stopped (or, with ``once``, until the stable files are done).

        Returns an exit code: 0, or 1 when files failed (``once``).

        Raises
        ------
        PorometError
            Input folder missing, journal on a network share or inside the
            input folder, journal locked by another service.
        """
        cfg = self.config
        if not self.input_dir.is_dir():
            raise PorometError(f"{cfg.input_dir}: no such folder to watch")
        jpath = cfg.journal_path.absolute()
        if inside(jpath, self.input_dir):
            raise PorometError(f"journal {jpath}: inside the watched folder; the journal must "
                               "be on local disk outside it (use --journal or another -o)")
        if is_network_path(jpath):
            raise PorometError(f"journal {jpath}: on a network file system, where SQLite "
                               "locking is unsafe; give --journal a path on local disk")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lock = InstanceLock(jpath.with_name(jpath.name + ".lock"))
        lock.acquire()
        handler = file_log_handler(self.out_dir / LOG_NAME)
        observer = None
        old_handlers = self._install_signals()
        try:
            self._journal = Journal(jpath)
            self._start_journal()
            self._scan()
            self._write_outputs(force=True)
            if once:
                return self._run_once()
            observer = self._start_observer()
            self._loop()
            return 0
        except KeyboardInterrupt:
            log.warning("stop: abandoned the file being measured; it is measured again at "
                        "the next start")
            return 0
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)
            if self._journal is not None:
                try:
                    self._journal.recover()
                    if self._dirty:
                        self._write_outputs(force=True)
                except Exception as exc:  # pragma: no cover - shutting down anyway
                    log.error("stop: could not write outputs: %s", exc)
                self._journal.close()
                self._journal = None
            log.info("stop")
            self._restore_signals(old_handlers)
            logging.getLogger("poromet.watch").removeHandler(handler)
            handler.close()
            lock.release()

    # -- start-up ---------------------------------------------------------------

    def _start_journal(self) -> None:
        j, cfg = self._journal, self.config
        known_input = j.get_meta("input_dir")
        if known_input and known_input != str(self.input_dir):
            raise PorometError(f"journal {j.path}: belongs to input folder {known_input}, not "
                               f"{self.input_dir}; use another -o or --journal")
        j.set_meta("input_dir", str(self.input_dir))
        old_hash = j.get_meta("pipeline_hash")
        if old_hash and old_hash != cfg.pipeline.hash:
            n = j.requeue_all()
            log.warning("pipeline changed (%s -> %s): %d file(s) will be measured again",
                        old_hash, cfg.pipeline.hash, n)
        j.set_meta("pipeline_hash", cfg.pipeline.hash)
        j.set_meta("pipeline", cfg.pipeline.to_toml())
        for e in j.recover():
            log.warning("recovered %s: interrupted while measuring (try %d); measuring again",
                        e.path, e.tries)
        self._samples_logged = {k: v[0] for k, v in j.sample_states().items()}
        c = j.counts()
        log.info("start: watching %s -> %s (journal %s; %d done, %d failed, %d pending; "
                 "settle %gs, interval %gs, %s)", self.input_dir, self.out_dir, j.path,
                 c["done"], c["failed"], c["pending"], cfg.settle, cfg.interval,
                 "polling" if cfg.polling else "native events")

    def _start_observer(self):
        from watchdog.events import FileSystemEventHandler

        if self.config.polling:
            from watchdog.observers.polling import PollingObserver

            observer = PollingObserver(timeout=self.config.interval)
        else:
            from watchdog.observers import Observer

            observer = Observer()
        events = self._events

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if event.is_directory:
                    events.put("")            # a folder moved in: rescan
                    return
                events.put(os.fsdecode(event.src_path))
                dest = getattr(event, "dest_path", "")
                if dest:
                    events.put(os.fsdecode(dest))

        try:
            observer.schedule(Handler(), str(self.input_dir), recursive=True)
            observer.start()
        except OSError as exc:
            log.warning("file events unavailable (%s); relying on rescans every %gs",
                        exc, self.config.interval)
            return None
        return observer

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}

        def handler(signum, frame):
            self._signals += 1
            if self._signals > 1:
                raise KeyboardInterrupt
            log.info("stop requested (signal %d): finishing the current file", signum)
            self.stop()

        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    old[sig] = signal.signal(sig, handler)
                except (ValueError, OSError):  # pragma: no cover
                    pass
        return old

    @staticmethod
    def _restore_signals(old) -> None:
        for sig, h in old.items():
            try:
                signal.signal(sig, h)
            except (ValueError, OSError, TypeError):  # pragma: no cover
                pass

    # -- seeing files -------------------------------------------------------------

    def _scan(self) -> None:
        """Full rescan: every image in the folder, with its sample and field."""
        try:
            tasks, notes = discover(self.input_dir, exclude=[self.out_dir])
        except (PorometError, OSError) as exc:
            log.error("scan of %s failed: %s", self.input_dir, exc)
            return
        for n in notes:
            if n not in self._notes:
                self._notes.add(n)
                log.warning("grouping: %s", n)
        present = set()
        for t in tasks:
            present.add(t.path)
            self._see(t)
        for path in [p for p in list(self._known) if p not in present]:
            self._gone(path)
        for e in self._journal.entries("pending"):
            if e.path not in present and e.path not in self._tracker:
                self._gone(e.path)

    def _see(self, task: FieldTask) -> None:
        sig = file_signature(task.path)
        if sig is None:
            self._gone(task.path)
            return
        key = (sig, task.sample, task.field)
        if self._known.get(task.path) == key:
            return                  # nothing changed since the journal saw it
        what, entry = self._journal.observe(task.path, sig, sample=task.sample, field=task.field)
        self._known[task.path] = key
        if what == "new":
            log.info("seen %s (sample %s, field %s, %d bytes)", task.path, task.sample,
                     task.field, sig.size)
        elif what == "replaced":
            log.info("replaced %s: new version (%d bytes) will be measured; its result "
                     "replaces the old one", task.path, sig.size)
            self._dirty = True
        elif what == "same" and entry.state in ("done", "failed") and \
                (entry.sample, entry.field) != (task.sample, task.field):
            self._dirty = True
        if entry.state == "pending":
            self._tracker.update(task.path, sig, now=time.monotonic())
        else:
            self._tracker.discard(task.path)

    def _gone(self, path: str) -> None:
        self._known.pop(path, None)
        self._tracker.discard(path)
        if self._journal.forget_pending(path):
            log.info("gone %s: removed before it was measured", path)

    def _event(self, path: str) -> None:
        if not path:
            self._rescan = True
            return
        p = Path(path)
        try:
            p = p.resolve()
        except OSError:
            return
        if inside(p, self.out_dir):
            return
        name = p.name.lower()
        if name.endswith(".done"):
            self._dirty = True            # sample completion may change
            return
        if is_candidate_image(p):
            task = task_for_path(self.input_dir, p)
            if task is not None:
                self._see(task)
            elif str(p) in self._known:
                self._gone(str(p))
            return
        # a sidecar: re-check the images it may belong to
        for known in list(self._known):
            if Path(known).parent == p.parent and p in sidecar_paths(known):
                task = task_for_path(self.input_dir, known)
                if task is not None:
                    self._see(task)

    def _drain_events(self, timeout: float = 0.0) -> None:
        try:
            item = self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
        except queue.Empty:
            return
        seen = set()
        while True:
            if item is not None and item not in seen:
                seen.add(item)
                self._event(item)
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return

    def _restat_tracked(self) -> None:
        for path in self._tracker.waiting():
            known = self._known.get(path)
            if known is None:
                continue
            self._see(FieldTask(path, known[1], known[2]))

    # -- loops --------------------------------------------------------------------------

    def _loop(self) -> None:
        cfg = self.config
        tick = min(0.5, max(0.05, cfg.settle / 4))
        last_scan = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._rescan or now - last_scan >= cfg.interval:
                self._rescan = False
                self._scan()
                last_scan = now
                self._write_outputs()       # quiet samples may have become complete
            else:
                self._restat_tracked()
            for path in self._tracker.ready(now=time.monotonic()):
                if self._stop.is_set():
                    break
                self._process_safely(path)
                self._drain_events()
                if self._dirty and time.monotonic() - self._last_write >= cfg.write_every:
                    self._write_outputs()
            if self._dirty and not self._tracker.ready(now=time.monotonic()):
                self._write_outputs()
            if self._stop.is_set():
                break
            due = self._tracker.next_due(now=time.monotonic())
            wait = tick if due is None else min(tick, max(due, 0.02))
            self._drain_events(timeout=wait)

    def _run_once(self) -> int:
        """Scan, wait one settle time, measure what did not change, write, exit."""
        self._stop.wait(self.config.settle)
        self._restat_tracked()
        self._scan()
        for path in self._tracker.ready(now=time.monotonic() + 1e-9):
            if self._stop.is_set():
                break
            self._process_safely(path)
        self._write_outputs(force=True)
        c = self._journal.counts()
        log.info("once: %d done, %d failed, %d pending", c["done"], c["failed"],
                 c["pending"] + c["measuring"])
        return 1 if self._failed_now else 0
