"""Measuring one file and writing the outputs, for the watch service.

:class:`~poromet.watch.service.WatchService` takes these methods from
:class:`_MeasuringMixin`: measuring a stable file into the journal (retries,
failures, quarantine copies) and rewriting the outputs from the journal
(sample completion included).  They use the service's attributes
(``config``, ``input_dir``, ``out_dir``, ``_journal``, ``_tracker``,
``_measure``, ``_known``, ``_dirty``, ...) and its ``_see``/``_gone``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from ..batch import FieldTask
from ..errors import PorometError
from .stability import check_complete, file_signature
from .support import GOOD_STATUSES, result_from_dict, safe_name, sample_completion

__all__: list[str] = []

log = logging.getLogger("poromet.watch")


class _MeasuringMixin:
    """The measuring and output steps of :class:`~poromet.watch.service.WatchService`."""

    # -- measuring ----------------------------------------------------------------

    def _process(self, path: str) -> None:
        j, cfg = self._journal, self.config
        entry = j.current(path)
        if entry is None or entry.state != "pending":
            self._tracker.discard(path)
            return
        sig = file_signature(path)
        if sig is None:
            self._gone(path)
            return
        if sig != entry.signature:
            self._see(FieldTask(path, entry.sample, entry.field))
            return
        if entry.tries >= cfg.max_tries:
            self._fail(entry, None, f"{path}: measuring was interrupted {entry.tries} times "
                                    "(the service stopped or hit an internal error)")
            return
        reason = check_complete(path)
        if reason is not None:
            msg = f"{path}: not a complete image ({reason})"
            tries = j.count_try(entry.id, msg)
            if tries >= cfg.max_tries:
                self._fail(j.current(path), None, f"{msg}; still so after {tries} tries")
            else:
                log.info("not ready %s: %s (try %d of %d)", path, reason, tries, cfg.max_tries)
                self._tracker.defer(path, time.monotonic() + self._backoff(tries))
            return
        entry = j.begin(entry.id)
        task = FieldTask(path, entry.sample, entry.field)
        result = self._measure(task, cfg.pipeline, str(self.out_dir), roi=cfg.roi,
                               render=cfg.report)
        result = result.replace(sample=entry.sample, field=entry.field)
        if file_signature(path) != sig:
            j.retry(entry.id, "changed while being measured")
            log.info("changed %s while being measured: measuring the new version", path)
            self._known.pop(path, None)
            self._see(task)
            return
        if result.status == "error":
            if entry.tries >= cfg.max_tries:
                self._fail(entry, result, result.message)
            else:
                j.retry(entry.id, result.message)
                log.info("retry %s: %s (try %d of %d)", path, result.message, entry.tries,
                         cfg.max_tries)
                self._tracker.defer(path, time.monotonic() + self._backoff(entry.tries))
            return
        j.finish(entry.id, "done", result.to_dict())
        self._tracker.discard(path)
        self._dirty = True
        log.info("measured %s: %s P=%.4f (sample %s, field %s, %.2fs)%s", path, result.status,
                 result.porosity, entry.sample, entry.field,
                 result.elapsed_s if result.elapsed_s == result.elapsed_s else 0.0,
                 f" [{result.message}]" if result.message else "")

    def _process_safely(self, path: str) -> None:
        """:meth:`_process`, turning an internal error into a later retry."""
        try:
            self._process(path)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            log.error("internal error on %s (will retry): %s: %s", path, type(exc).__name__, exc)
            log.debug("internal error", exc_info=True)
            try:
                self._journal.recover()
            except Exception:  # pragma: no cover - the journal itself is broken
                pass
            self._tracker.defer(path, time.monotonic() + self._backoff(3))

    def _backoff(self, tries: int) -> float:
        return max(self.config.settle, 0.5) * tries

    def _fail(self, entry, result, message: str) -> None:
        from ..measure import error_result

        cfg = self.config
        copy = self._quarantine(entry.path, entry.sample, message)
        if result is None:
            result = error_result(entry.path, message, cfg.pipeline, sample=entry.sample,
                                  field=entry.field)
        if copy is not None:
            result = result.replace(warnings=result.warnings + (f"copied to {copy}",))
        self._journal.finish(entry.id, "failed", result.to_dict(), message=message)
        self._tracker.discard(entry.path)
        self._dirty = True
        self._failed_now += 1
        log.error("failed %s: %s%s", entry.path, message,
                  f" (copy in {copy})" if copy is not None else "")

    def _quarantine(self, path: str, sample: str, message: str) -> Path | None:
        """Copy (never move) a failed file into ``OUT_DIR/quarantine/<sample>/``."""
        src = Path(path)
        dest_dir = self.out_dir / "quarantine" / (safe_name(sample) or "_")
        dest = dest_dir / src.name
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            tmp = dest_dir / f".{src.name}.copying"
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
            (dest_dir / f"{src.name}.error.txt").write_text(
                f"{src}\n{message}\n", encoding="utf-8")
        except OSError as exc:
            log.warning("quarantine copy of %s failed: %s", src, exc)
            return None
        return dest

    # -- outputs ----------------------------------------------------------------------

    def _completion(self, entries) -> dict[str, tuple[bool, str]]:
        cfg = self.config
        quiet = cfg.quiet_minutes if cfg.quiet_minutes is not None \
            else cfg.pipeline.sample.quiet_minutes
        return sample_completion(entries, input_dir=self.input_dir,
                                 expected=cfg.pipeline.sample.fields, quiet_s=quiet * 60,
                                 now=time.time())

    def _check_samples(self) -> dict[str, tuple[bool, str]]:
        entries = self._journal.entries()
        status = self._completion(entries)
        for name, (complete, reason) in status.items():
            if self._samples_logged.get(name) != complete:
                self._samples_logged[name] = complete
                self._journal.set_sample(name, complete, reason)
                self._dirty = True
                if complete:
                    log.info("sample %s complete: %s", name, reason)
                else:
                    log.info("sample %s open: %s", name, reason)
        return status

    def _write_outputs(self, *, force: bool = False) -> None:
        from ..report.tables import write_outputs

        status = self._check_samples()
        if not (self._dirty or force):
            return
        fields = [result_from_dict(r).replace(sample=e.sample, field=e.field)
                  for e, r in self._journal.results()]
        try:
            write_outputs(self.out_dir, fields, self.config.pipeline, report=self.config.report,
                          run_info=self._run_info(),
                          complete=lambda s: status.get(s, (False, ""))[0])
        except PorometError as exc:
            log.warning("outputs not written (retrying later): %s", exc)
            self._last_write = time.monotonic()
            return
        except Exception as exc:  # a bug in the writers must not stop the service
            log.error("outputs not written (internal error, retrying later): %s: %s",
                      type(exc).__name__, exc)
            log.debug("outputs not written", exc_info=True)
            self._last_write = time.monotonic()
            return
        self._dirty = False
        self._last_write = time.monotonic()
        n_ok = sum(f.status in GOOD_STATUSES for f in fields)
        log.info("outputs written: %d fields (%d good, %d errors), %d samples (%d complete)",
                 len(fields), n_ok, len(fields) - n_ok, len(status),
                 sum(c for c, _ in status.values()))

    def _run_info(self) -> dict:
        from ..cli import run_info

        c = self._journal.counts()
        return run_info("watch", input_dir=str(self.input_dir), out_dir=str(self.out_dir),
                        journal=str(self._journal.path), settle_s=self.config.settle,
                        interval_s=self.config.interval, polling=self.config.polling,
                        pending=c["pending"] + c["measuring"], failed=c["failed"],
                        done=c["done"])
