"""Outputs: tidy tables (CSV/JSON), field overlays and the HTML report.

Every file is replaced atomically (written to a temporary file in the same
folder, then ``os.replace``), so a reader - Excel, a browser, the watch
service rewriting the outputs while samples fill up - never sees half a
file.

Output folder layout (``OUT_DIR``)::

    fields.csv            one row per field (poromet.records.FIELD_COLUMNS)
    samples.csv           one row per sample (poromet.report.tables.SAMPLE_COLUMNS)
    results.json          everything, with provenance
    report.html           self-contained report
    overlays/<sample>/<stem>.png   full-size overlay per field
    thumbs/<sample>/<stem>.png     small overlay (embedded in the report)
    masks/<sample>/<stem>.png      binarized field (--save-masks)

Heavy modules (OpenCV, Jinja2) are imported by the submodules only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import PorometError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_outputs",
    "write_report",
    "render_field",
]


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``).

    Parent folders are created.  Raises :class:`~poromet.errors.PorometError`
    naming the file when it cannot be written (e.g. open in Excel on Windows).
    ``durable=False`` skips the ``fsync`` (still atomic: a reader sees the
    old file or the new one, never a part): for pictures that are redrawn
    from the results, where a sync per file cost as much as drawing them.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PorometError(f"{path}: cannot write output ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PorometError(
            f"{path}: cannot write output ({exc.strerror or exc}); is it open in another program?"
        ) from None
    return path


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def __getattr__(name: str):
    if name == "write_outputs":
        from .tables import write_outputs

        return write_outputs
    if name == "write_report":
        from .html import write_report

        return write_report
    if name == "render_field":
        from .overlay import render_field

        return render_field
    raise AttributeError(f"module 'poromet.report' has no attribute {name!r}")
