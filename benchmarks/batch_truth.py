"""End to end: generate a synthetic set, run ``poromet batch`` on it, compare with the truth.

    python benchmarks/batch_truth.py [--samples 9] [--fields 10] [--seed 4242]
                                     [--trim sidecar|auto] [--workers N] [--keep DIR]

Prints the per-field |error| (mean, worst, bias) against the truth of the
region that the run measures (the sidecar rectangle, or with ``--trim auto``
and no sidecars the whole true exterior unit), and per sample whether the
95 % confidence interval of ``samples.csv`` contains the mean of its fields'
true porosities (the check of the sample-report issue).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=9)
    ap.add_argument("--fields", type=int, default=10)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--size", default="1024x768")
    ap.add_argument("--trim", choices=["sidecar", "auto"], default="sidecar")
    ap.add_argument("--stack-fraction", type=float, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the set and results here")
    a = ap.parse_args(argv)
    work = a.keep or Path(tempfile.mkdtemp(prefix="poromet-bt-"))
    data, out = work / "images", work / "results"
    sidecar = "rect" if a.trim == "sidecar" else "none"
    stack = a.stack_fraction if a.stack_fraction is not None else (0.66 if a.trim == "auto" else 0.3)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "poromet.synth", str(data), "--samples", str(a.samples),
                    "--fields", str(a.fields), "--seed", str(a.seed), "--size", a.size,
                    "--sidecar", sidecar, "--stack-fraction", str(stack), "--no-truth-masks"],
                   check=True, stdout=subprocess.DEVNULL)
    t1 = time.perf_counter()
    cmd = [sys.executable, "-m", "poromet.cli", "batch", str(data), "-o", str(out), "--quiet",
           "--no-report", "--trim", a.trim]
    if a.workers:
        cmd += ["--workers", str(a.workers)]
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    t2 = time.perf_counter()
    truth = {r["path"]: r for r in read_csv(data / "truth.csv")}
    key = "porosity_rect" if a.trim == "sidecar" else "porosity_exterior"
    errs, by_sample, worst_rows = [], {}, []
    for row in read_csv(out / "fields.csv"):
        rel = Path(row["path"]).resolve().relative_to(data.resolve()).as_posix()
        t = float(truth[rel][key])
        by_sample.setdefault(row["sample"], []).append(t)
        if row["status"] == "error" or not row["porosity"]:
            print(f"  field not measured: {rel}: {row['message']}")
            continue
        errs.append(100 * (float(row["porosity"]) - t))
        worst_rows.append((abs(errs[-1]), errs[-1], rel))
    n_in = 0
    samples = read_csv(out / "samples.csv")
    for s in samples:
        true_mean = sum(by_sample[s["sample"]]) / len(by_sample[s["sample"]])
        lo, hi = float(s["ci95_low"]), float(s["ci95_high"])
        inside = lo <= true_mean <= hi
        n_in += inside
        print(f"  {s['sample']}: n={s['n_fields']} mean {100 * float(s['porosity_mean']):6.2f} % "
              f"CI [{100 * lo:6.2f}, {100 * hi:6.2f}] true {100 * true_mean:6.2f} % "
              f"{'inside' if inside else 'OUTSIDE'}")
    mean = sum(abs(e) for e in errs) / len(errs)
    worst = max(abs(e) for e in errs)
    bias = sum(errs) / len(errs)
    print(f"set: {a.samples} samples x {a.fields} fields, seed {a.seed}, {a.size}, trim {a.trim}; "
          f"generate {t1 - t0:.0f} s, batch {t2 - t1:.0f} s (exit {rc})")
    print(f"fields measured: {len(errs)} of {sum(len(v) for v in by_sample.values())}")
    print(f"per-field |error|: mean {mean:.2f} pp, worst {worst:.2f} pp, bias {bias:+.2f} pp")
    print(f"samples whose 95 % CI contains the true mean: {n_in} of {len(samples)}")
    print("worst fields: " + ", ".join(f"{rel} {e:+.2f} pp" for _, e, rel in sorted(worst_rows)[-3:][::-1]))
    print(f"results in {out}" if a.keep else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
