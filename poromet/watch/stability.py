"""When is a file in a watch folder ready to measure?

Watch folders fire early: an event arrives when a copy *starts*, a slow
writer can stall for seconds mid-file, and on network shares no event
arrives at all.  A file is therefore measured only when

1. its size, mtime and sidecar (:func:`file_signature`) have not changed for
   the settle time, as seen by this process's own clock
   (:class:`StabilityTracker`; the share's clock may be off), and
2. its content is a complete image (:func:`check_complete`): a TIFF with at
   least one page whose strips/tiles all lie inside the file, a PNG that
   reaches its ``IEND`` chunk, a JPEG with its end-of-image marker, a BMP as
   long as its header says.
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..roi import SIDECAR_SUFFIXES as _SIDECAR_SUFFIXES  # region sidecars next to an image
from .journal import Signature

__all__ = ["StabilityTracker", "check_complete", "file_signature", "sidecar_paths"]


def sidecar_paths(image: str | Path) -> list[Path]:
    """Every name a region sidecar of ``image`` may have (existing or not)."""
    p = Path(image)
    name = p.name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    stems = [stem]
    if stem.lower().endswith(".ome") and len(stem) > 4:
        stems.append(stem[:-4])
    return [p.with_name(s + suf) for s in stems for suf in _SIDECAR_SUFFIXES]


def file_signature(path: str | Path) -> Signature | None:
    """Size, mtime (ns) and sidecar fingerprint of ``path``; None if it is gone.

    The sidecar fingerprint (``name:size:mtime_ns`` of each existing sidecar)
    makes a sidecar that arrives or changes count as a change of the image.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    parts = []
    for sc in sidecar_paths(path):
        try:
            s = os.stat(sc)
        except OSError:
            continue
        parts.append(f"{sc.name}:{s.st_size}:{s.st_mtime_ns}")
    return Signature(int(st.st_size), int(st.st_mtime_ns), ";".join(parts))


@dataclass
class _Watch:
    sig: Signature
    since: float           # monotonic time the signature was first seen
    not_before: float = 0.0


@dataclass
class StabilityTracker:
    """Track files until their signature has been unchanged for ``settle`` seconds.

    Times are this process's monotonic clock, never the file's mtime, so
    a share whose clock is off does not matter.

    Examples
    --------
    >>> from poromet.watch.journal import Signature
    >>> t = StabilityTracker(settle=2.0)
    >>> t.update("a.tif", Signature(10, 1), now=0.0)
    True
    >>> t.ready(now=1.0), t.ready(now=2.5)
    ([], ['a.tif'])
    """

    settle: float = 2.0
    _files: dict[str, _Watch] = field(default_factory=dict)

    def update(self, path: str, sig: Signature | None, *, now: float) -> bool:
        """Record the current signature; True when it is new or changed."""
        if sig is None:
            return self._files.pop(path, None) is not None
        w = self._files.get(path)
        if w is not None and w.sig == sig:
            return False
        self._files[path] = _Watch(sig, now, w.not_before if w else 0.0)
        return True

    def defer(self, path: str, until: float) -> None:
        """Do not offer ``path`` before ``until`` (a retry back-off)."""
        if path in self._files:
            self._files[path].not_before = until

    def discard(self, path: str) -> None:
        self._files.pop(path, None)

    def signature(self, path: str) -> Signature | None:
        w = self._files.get(path)
        return w.sig if w else None

    def ready(self, *, now: float) -> list[str]:
        """Paths stable for ``settle`` seconds and past their back-off, oldest first."""
        out = [(w.since, p) for p, w in self._files.items()
               if now - w.since >= self.settle and now >= w.not_before]
        return [p for _, p in sorted(out)]

    def waiting(self) -> list[str]:
        """Every tracked path."""
        return list(self._files)

    def next_due(self, *, now: float) -> float | None:
        """Seconds until the next file may become ready (None: nothing tracked)."""
        if not self._files:
            return None
        return max(0.0, min(max(w.since + self.settle, w.not_before) - now
                            for w in self._files.values()))

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, path: str) -> bool:
        return path in self._files


# -- content completeness --------------------------------------------------------

def _check_tiff(path: Path, size: int) -> str | None:
    import tifffile

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import logging

        log = logging.getLogger("tifffile")
        level = log.level
        log.setLevel(logging.CRITICAL)
        try:
            with tifffile.TiffFile(path) as tif:
                pages = tif.pages
                n = len(pages)
                if n == 0:
                    return "TIFF with no readable page (truncated, or a bad first-page offset)"
                ends = []
                for i in range(min(n, 64)):
                    page = pages[i]
                    offsets = getattr(page, "dataoffsets", ()) or ()
                    counts = getattr(page, "databytecounts", ()) or ()
                    if not offsets and page.shape:
                        return f"TIFF page {i} has no image data"
                    ends += [o + c for o, c in zip(offsets, counts)]
        except Exception as exc:  # tifffile raises many types on partial files
            return f"not a complete TIFF ({type(exc).__name__}: {exc})"
        finally:
            log.setLevel(level)
    if caught and not ends:
        return f"TIFF not readable ({caught[0].message})"
    if ends and max(ends) > size:
        return f"TIFF image data ends at byte {max(ends):,} but the file has {size:,} bytes"
    return None


def _check_png(fh, size: int) -> str | None:
    pos = 8
    while True:
        fh.seek(pos)
        head = fh.read(8)
        if len(head) < 8:
            return f"PNG cut short at byte {size:,} (no IEND chunk)"
        length, ctype = struct.unpack(">I4s", head)
        if ctype == b"IEND":
            return None
        pos += 12 + length


def _check_jpeg(fh, size: int) -> str | None:
    fh.seek(max(0, size - 4096))
    tail = fh.read().rstrip(b"\x00")
    if not tail.endswith(b"\xff\xd9"):
        return "JPEG without its end-of-image marker (cut short)"
    return None


def _check_bmp(fh, size: int) -> str | None:
    fh.seek(0)
    head = fh.read(14)
    if len(head) < 14:
        return "BMP header cut short"
    declared = struct.unpack("<I", head[2:6])[0]
    if declared and declared > size:
        return f"BMP declares {declared:,} bytes but the file has {size:,}"
    return None


def check_complete(path: str | Path) -> str | None:
    """Check that a file holds a complete image, without decoding pixels.

    Returns
    -------
    str or None
        None when complete; else why not (for the log and, after the last
        try, the error row).  A file that cannot be opened (on Windows: still
        locked by the writer) is reported incomplete, not broken.
    """
    p = Path(path)
    try:
        size = os.path.getsize(p)
        with open(p, "rb") as fh:
            head = fh.read(16)
            if size == 0:
                return "empty file"
            if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
                fmt = "tiff"
            elif head.startswith(b"\x89PNG\r\n\x1a\n"):
                return _check_png(fh, size)
            elif head.startswith(b"\xff\xd8\xff"):
                return _check_jpeg(fh, size)
            elif head.startswith(b"BM"):
                return _check_bmp(fh, size)
            else:
                return "not an image file (unknown content)"
    except PermissionError as exc:
        return f"cannot open yet ({exc.strerror or exc}; still locked by the writer?)"
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if fmt == "tiff":
        return _check_tiff(p, size)
    return None
