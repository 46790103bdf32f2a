"""Run ImageJ 1.x headless to get its "Default" threshold on many images.

The naive method the benchmark compares against is what users do by hand:
open the image, draw the rectangle, ``Image > Adjust > Threshold``
("Default", dark objects), read ``%Area``.  :func:`imagej_default` runs that
as one batch macro over all images (one JVM start) under ``xvfb-run``.

Usage as a script::

    python benchmarks/imagej.py IMAGE X Y W H [IMAGE X Y W H ...]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IJ_JAR", "imagej_available", "imagej_default", "IJResult"]

IJ_JAR = Path(os.environ.get("POROMET_IJ_JAR", "/usr/share/java/ij.jar"))

_MACRO = r"""
setBatchMode(true);
list = File.openAsString("%(list)s");
lines = split(list, "\n");
run("Set Measurements...", "area_fraction redirect=None decimal=9");
for (i = 0; i < lines.length; i++) {
    f = split(lines[i], "\t");
    if (f.length < 5) continue;
    open(f[0]);
    makeRectangle(parseInt(f[1]), parseInt(f[2]), parseInt(f[3]), parseInt(f[4]));
    setAutoThreshold("Default");
    getThreshold(lower, upper);
    run("Measure");
    pa = getResult("%%Area", nResults - 1);
    print("POROMET\t" + i + "\t" + d2s(lower, 6) + "\t" + d2s(upper, 6) + "\t" + d2s(pa, 9) + "\t" + bitDepth());
    close();
}
run("Clear Results");
eval("script", "java.lang.System.exit(0);");
"""


@dataclass(frozen=True)
class IJResult:
    """ImageJ's answer for one image."""

    lower: float          # lower threshold (raw units)
    upper: float          # upper threshold (raw units): voids are <= upper
    porosity: float       # %Area / 100 inside the rectangle
    bit_depth: int


def imagej_available() -> bool:
    """True when ``ij.jar``, ``java`` and ``xvfb-run`` are all installed."""
    return IJ_JAR.is_file() and shutil.which("java") is not None \
        and shutil.which("xvfb-run") is not None


def imagej_default(items, *, timeout: float = 600.0) -> list[IJResult]:
    """ImageJ "Default" threshold and %Area for each ``(path, (x, y, w, h))``.

    Parameters
    ----------
    items : iterable of (str or Path, tuple of 4 int)
        Image files (TIFF) and the rectangle to measure in each.
    timeout : float
        Seconds for the whole batch.

    Returns
    -------
    list of IJResult, in the order of ``items``.

    Raises
    ------
    RuntimeError
        ImageJ missing, failed, or answered for fewer images than given.
    """
    items = [(str(Path(p).resolve()), tuple(int(v) for v in r)) for p, r in items]
    if not imagej_available():
        raise RuntimeError(f"ImageJ not available ({IJ_JAR}, java, xvfb-run needed)")
    with tempfile.TemporaryDirectory(prefix="poromet-ij-") as tmp:
        lst = Path(tmp) / "list.tsv"
        lst.write_text("".join(f"{p}\t{x}\t{y}\t{w}\t{h}\n" for p, (x, y, w, h) in items))
        macro = Path(tmp) / "run.ijm"
        macro.write_text(_MACRO % {"list": str(lst)})
        cmd = ["xvfb-run", "-a", "java", "-Xmx2g", "-Djava.awt.headless=false",
               "-jar", str(IJ_JAR), "-ijpath", tmp, "-batch", str(macro)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=tmp)
    out: dict[int, IJResult] = {}
    for line in proc.stdout.splitlines():
        f = line.split("\t")
        if len(f) == 6 and f[0] == "POROMET":
            out[int(f[1])] = IJResult(lower=float(f[2]), upper=float(f[3]),
                                      porosity=float(f[4]) / 100.0, bit_depth=int(f[5]))
    if len(out) != len(items):
        raise RuntimeError(
            f"ImageJ answered for {len(out)} of {len(items)} images "
            f"(exit {proc.returncode}): {proc.stderr[-800:]}")
    return [out[i] for i in range(len(items))]


if __name__ == "__main__":  # pragma: no cover
    args = sys.argv[1:]
    if not args or len(args) % 5:
        sys.exit(__doc__)
    its = [(args[i], tuple(int(v) for v in args[i + 1:i + 5])) for i in range(0, len(args), 5)]
    for (p, r), res in zip(its, imagej_default(its)):
        print(p, r, res)
