"""Speed, scaling and memory of poromet, against ImageJ's global-threshold macro.

Measures, on synthetic SEM fields (``poromet.synth.generate_field``, written
as TIFF with a ``.roi.json`` rectangle sidecar that both tools measure):

1. per-field time (median, p90) for 1280x960, 2048x1536 and 4096x3072,
   8- and 16-bit: measurement only, and the overlay rendering apart;
2. whole-process batch times over the same fields (``poromet batch
   --no-report``; Python's start included) with 1 and 2 workers, and the
   report's extra cost (``poromet batch`` with overlays and report.html),
   and the steady-state throughput once each worker has started (fields
   per second from the 10th result on, through the library's
   ``run_fields``): the whole-process 2-worker speed-up is capped by each
   process's fixed start (Python, imports, Numba's registries), which a
   90-field batch cannot hide;
3. ImageJ's global-threshold macro ("Default", %Area in the rectangle) over
   the same fields in one JVM under ``xvfb-run`` (JVM start included), when
   ImageJ is installed (``benchmarks/imagej.py``), and poromet doing the
   same work as the macro (``ij-like`` pipeline: no denoising, no shading
   correction, ImageJ's Default threshold, no speck removal, no band);
4. peak resident memory (RSS, which sees OpenCV's allocations) of one
   process measuring a 4096x3072 16-bit field, and of each worker of the
   2-worker batch.

Targets (printed PASS/FAIL): batch measurement-only <= 3x ImageJ; 2 workers
>= 1.8x the throughput of 1; peak RSS <= 400 MB for 4096x3072 16-bit.  They
are judged on the path this environment takes (the compiled kernels of
``poromet[fast]`` when Numba is installed); the other path's batches are
printed beside them (``POROMET_KERNELS=0``).

Usage::

    python benchmarks/speed.py            # ~8 min on 2 cores (batches 3 times each)
    python benchmarks/speed.py --quick    # ~3 min: fewer sizes and fields
    python benchmarks/speed.py --profile  # + where the time goes (cProfile)

Images are cached in ``--data`` (default ``/tmp/poromet-speed``); results
are also written there as ``speed.json``.  Nothing is written to the
repository.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SIZES = {"1280x960": (1280, 960), "2048x1536": (2048, 1536), "4096x3072": (4096, 3072)}
TARGET_IJ_RATIO = 3.0
TARGET_SCALING = 1.8
TARGET_RSS_MB = 400.0


# -- data ---------------------------------------------------------------------

def write_field(folder: Path, name: str, seed: int, width: int, height: int,
                bit_depth: int | None) -> tuple[Path, tuple[int, int, int, int]]:
    """Generate (or reuse) one synthetic field and its rectangle sidecar."""
    import tifffile

    path = folder / f"{name}.tif"
    side = folder / f"{name}.roi.json"
    if path.is_file() and side.is_file():
        return path, tuple(json.loads(side.read_text())["rect"])
    from poromet.synth import generate_field

    f = generate_field(seed, width=width, height=height, bit_depth=bit_depth)
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, f.image)
    side.write_text(json.dumps({"rect": list(map(int, f.rect))}))
    return path, tuple(map(int, f.rect))


def make_sets(data: Path, sizes: list[str], bits: list[int], per_size: int,
              batch_fields: int) -> tuple[dict, list]:
    sets = {}
    for s in sizes:
        w, h = SIZES[s]
        for b in bits:
            folder = data / f"fields-{s}-{b}bit"
            sets[(s, b)] = [write_field(folder, f"F_{i + 1:02d}", 5000 + 97 * i, w, h, b)
                            for i in range(per_size)]
    folder = data / f"batch-{batch_fields}"
    batch = [write_field(folder, f"S{i // 10 + 1:02d}_f{i % 10 + 1:02d}", 1000 + i, 1280, 960, None)
             for i in range(batch_fields)]
    return sets, batch


# -- in-process per-field timing -----------------------------------------------

def per_field_times(items, pipeline, out: Path) -> dict:
    from poromet.measure import measure_field

    try:
        from poromet.report.overlay import render_field
    except ImportError:
        render_field = None
    measure_field(items[0][0], pipeline=pipeline)          # warm-up (imports, caches)
    meas, rend, ports = [], [], []
    for path, _ in items:
        t0 = time.perf_counter()
        r = measure_field(path, pipeline=pipeline)
        meas.append(time.perf_counter() - t0)
        ports.append(r.porosity)
        if render_field is not None:
            r, arrays = measure_field(path, pipeline=pipeline, return_arrays=True)
            t1 = time.perf_counter()
            render_field(r.replace(sample="S", field=1), arrays, str(out))
            rend.append(time.perf_counter() - t1)
            del arrays
    return {"measure": meas, "render": rend, "porosity": ports}


def q(values, p):
    return float(np.percentile(values, p)) if values else float("nan")


# -- whole-process runs --------------------------------------------------------

def _peak_rss(p) -> int:
    """The process's peak resident memory so far, in bytes: the kernel's
    high-water mark (VmHWM) on Linux, else its current RSS."""
    try:
        with open(f"/proc/{p.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return p.memory_info().rss


def watch_rss(proc: subprocess.Popen, interval: float = 0.25) -> tuple[threading.Thread, dict]:
    """Peak RSS of ``proc`` and its children; returns (thread, {pid: peak bytes}).

    On Linux each process's own high-water mark is read, so the poll can be
    slow (every 0.25 s) and still sees the true peak; polling the RSS every
    50 ms took CPU from the workers of a 2-worker run on 2 cores.
    """
    import psutil

    peaks: dict[int, int] = {}

    def loop():
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while proc.poll() is None:
            try:
                for p in [root] + root.children(recursive=True):
                    try:
                        peaks[p.pid] = max(peaks.get(p.pid, 0), _peak_rss(p))
                    except psutil.Error:
                        continue
            except psutil.Error:
                pass
            time.sleep(interval)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t, peaks


#: The same work as the ImageJ macro: no denoising, no shading correction,
#: ImageJ's Default threshold, no speck removal, no sensitivity band.
IJ_LIKE_TOML = """name = "ij-like"
[preprocess]
denoise = "none"
background = "none"
[threshold]
method = "ij_default"
band = 0
[cleanup]
min_pore_area_px = 0
"""


def run_batch(folder: Path, out: Path, *, workers: int, report: bool,
              extra: tuple[str, ...] = (), env: dict | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "poromet.cli", "batch", str(folder), "-o", str(out),
           "--workers", str(workers), "-q", *extra] + ([] if report else ["--no-report"])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    th, peaks = watch_rss(proc)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    th.join(1)
    info = {}
    results = out / "results.json"
    if results.is_file():
        try:
            info = json.loads(results.read_text()).get("run", {}) or {}
        except (json.JSONDecodeError, AttributeError):
            info = {}
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {stderr[-1500:]}")
    child = sorted((v for k, v in peaks.items() if k != proc.pid), reverse=True)
    return {"wall_s": wall, "returncode": proc.returncode,
            "peak_rss_main_mb": peaks.get(proc.pid, 0) / 2**20,
            "peak_rss_workers_mb": [c / 2**20 for c in child[:workers] if workers > 1],
            "measure_s": info.get("measure_seconds"), "write_s": info.get("write_seconds"),
            "summary": stdout.strip().splitlines()[0] if stdout.strip() else ""}


_RSS_SNIPPET = r"""
import sys, time
def hwm():
    # VmHWM: peak RSS of this process's own address space (ru_maxrss would
    # also count the parent's RSS inherited through fork/exec).
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024
from poromet.batch import pin_threads
pin_threads()
from poromet.measure import measure_field
if sys.argv[2] == "1":
    from poromet.report.overlay import render_field
path, render, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
base = hwm()
t = time.perf_counter()
if render:
    r, a = measure_field(path, return_arrays=True)
    render_field(r.replace(sample="S", field=1), a, out)
else:
    r = measure_field(path)
print(base, hwm(), time.perf_counter() - t, r.status, r.porosity)
"""


def peak_rss(path: Path, *, render: bool, out: Path) -> dict:
    """Peak RSS (``VmHWM``) of a fresh process measuring ``path``."""
    proc = subprocess.run([sys.executable, "-c", _RSS_SNIPPET, str(path), "1" if render else "0",
                           str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    base, peak, secs, st, _ = proc.stdout.split()
    return {"peak_rss_mb": float(peak), "after_imports_mb": float(base),
            "seconds": float(secs), "status": st}


_STEADY_SNIPPET = r"""
import sys, time
t0 = time.perf_counter()
from poromet.batch import discover, run_fields
from poromet.pipeline import load_pipeline
tasks, _ = discover(sys.argv[1])
done = [time.perf_counter() - t0 for _ in run_fields(tasks, load_pipeline(None), None,
                                                      workers=int(sys.argv[2]), render=False)]
print(" ".join(f"{t:.4f}" for t in done))
"""


def steady_state(folder: Path, *, workers: int, skip: int = 10) -> dict:
    """Throughput once every worker runs: fields per second between the
    ``skip``-th and the last result of a library run (``run_fields``, no
    tables), which leaves out each process's start (Python, imports, Numba's
    registries in the first field) that the whole-process walls include."""
    proc = subprocess.run([sys.executable, "-c", _STEADY_SNIPPET, str(folder), str(workers)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    done = sorted(float(t) for t in proc.stdout.split())
    if len(done) <= skip + 1:
        return {"error": f"too few fields ({len(done)}) for a steady state"}
    span = done[-1] - done[skip]
    return {"wall_s": span, "fields_per_s": (len(done) - 1 - skip) / span,
            "first_result_s": done[0]}


def run_imagej(items) -> dict:
    try:
        from imagej import imagej_available, imagej_default
    except ImportError as exc:
        return {"error": f"benchmarks/imagej.py not importable ({exc})"}
    if not imagej_available():
        return {"error": "ImageJ not installed (Debian package imagej, xvfb-run)"}
    t0 = time.perf_counter()
    try:
        res = imagej_default([(str(p), r) for p, r in items], timeout=1800)
    except Exception as exc:  # report, do not crash the benchmark
        return {"error": str(exc)[:300]}
    return {"wall_s": time.perf_counter() - t0, "porosity": [r.porosity for r in res]}


def _median_run(trials: list[dict]) -> dict:
    """The trial with the median wall time (an error if every trial failed)."""
    ok = sorted((t for t in trials if "wall_s" in t), key=lambda t: t["wall_s"])
    return ok[(len(ok) - 1) // 2] if ok else trials[-1]


# -- profile -------------------------------------------------------------------

def profile(path: Path, pipeline, top: int = 18) -> str:
    from poromet.measure import measure_field

    measure_field(path, pipeline=pipeline)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        measure_field(path, pipeline=pipeline)
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# -- main ----------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes and fields (~3 min)")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "poromet-speed")
    ap.add_argument("--fields", type=int, default=None, help="fields per size for per-field times")
    ap.add_argument("--batch-fields", type=int, default=90)
    ap.add_argument("--sizes", default=None, help="comma list of " + ", ".join(SIZES))
    ap.add_argument("--no-imagej", action="store_true")
    ap.add_argument("--no-report-run", action="store_true", help="skip the batch with report")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--repeat", type=int, default=None,
                    help="whole-process runs of each batch, alternated; the median counts "
                         "(default 3, 1 with --quick): a shared VM moves single runs by ~10 %%")
    a = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)

    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    from poromet.batch import pin_threads
    from poromet.pipeline import load_pipeline

    pin_threads()
    sizes = a.sizes.split(",") if a.sizes else (["1280x960", "4096x3072"] if a.quick else list(SIZES))
    per_size = a.fields or (4 if a.quick else 8)
    bits = [8, 16]
    a.data.mkdir(parents=True, exist_ok=True)
    t_gen = time.perf_counter()
    sets, batch = make_sets(a.data, sizes, bits, per_size, a.batch_fields)
    print(f"data: {a.data} (ready in {time.perf_counter() - t_gen:.0f} s)")
    pipeline = load_pipeline(None)
    scratch = Path(tempfile.mkdtemp(prefix="speed-", dir=a.data))
    out: dict = {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "per_field": {}, "batch": {}}

    from poromet import kernels

    path = kernels.describe()
    kernels_on = path.startswith("numba")
    print(f"segmentation: {path}" + ("" if kernels_on else
                                      " (pip install poromet[fast] for the compiled kernels)"))
    print("\nper-field time, in process (seconds; median / p90; the overlay is timed apart)")
    print(f"{'size':>10} {'bits':>4} {'n':>3} {'measure':>16} {'overlay alone':>16} {'MPx/s':>6}")
    for (s, b), items in sets.items():
        tm = per_field_times(items, pipeline, scratch / f"ov-{s}-{b}")
        w, h = SIZES[s]
        med = statistics.median(tm["measure"])
        out["per_field"][f"{s}-{b}"] = {
            "measure_median": med, "measure_p90": q(tm["measure"], 90),
            "render_median": q(tm["render"], 50), "render_p90": q(tm["render"], 90), "n": len(items)}
        rend = (f"{q(tm['render'], 50):7.3f} / {q(tm['render'], 90):6.3f}" if tm["render"]
                else f"{'n/a':>16}")
        print(f"{s:>10} {b:>4} {len(items):>3} {med:7.3f} / {q(tm['measure'], 90):6.3f} "
              f"{rend} {w * h / 1e6 / med:6.1f}")

    big = sets.get(("4096x3072", 16), [None])[0]
    if big is None:
        big = write_field(a.data / "fields-4096x3072-16bit", "F_01", 5000, 4096, 3072, 16)
    print("\npeak resident memory, one process measuring one 4096x3072 16-bit field")
    rss = {"measure": peak_rss(big[0], render=False, out=scratch / "rss"),
           "measure+overlay": peak_rss(big[0], render=True, out=scratch / "rss")}
    out["rss_4096x3072_16bit"] = rss
    for k, v in rss.items():
        if "error" in v:
            print(f"  {k:16s} error: {v['error']}")
        else:
            print(f"  {k:16s} peak {v['peak_rss_mb']:6.0f} MB (after imports {v['after_imports_mb']:.0f} MB),"
                  f" {v['seconds']:.2f} s")

    folder = a.data / f"batch-{a.batch_fields}"
    n = len(batch)
    print(f"\nwhole-process batch over {n} fields of 1280x960 (mixed 8/16-bit), Python start included")
    ij_like = scratch / "ij-like.toml"
    ij_like.write_text(IJ_LIKE_TOML)
    jobs = {"poromet -j1 measure": lambda: run_batch(folder, scratch / "b1", workers=1,
                                                     report=False),
            "poromet -j2 measure": lambda: run_batch(folder, scratch / "b2", workers=2,
                                                     report=False)}
    if not a.no_report_run:
        jobs["poromet -j1 +report"] = lambda: run_batch(folder, scratch / "b1r", workers=1,
                                                        report=True)
    jobs["poromet -j1 ij-like"] = lambda: run_batch(folder, scratch / "bij", workers=1,
                                                    report=False, extra=("-p", str(ij_like)))
    if kernels_on:
        # the same batches on the reference path (what an install without
        # the [fast] extra runs)
        ref = {"POROMET_KERNELS": "0"}
        jobs["reference -j1 measure"] = lambda: run_batch(folder, scratch / "r1", workers=1,
                                                          report=False, env=ref)
        jobs["reference -j2 measure"] = lambda: run_batch(folder, scratch / "r2", workers=2,
                                                          report=False, env=ref)
    jobs["steady -j1"] = lambda: steady_state(folder, workers=1)
    jobs["steady -j2"] = lambda: steady_state(folder, workers=2)
    if not a.no_imagej:
        jobs["ImageJ"] = lambda: run_imagej(batch)
    repeat = a.repeat if a.repeat is not None else (1 if a.quick else 3)
    trials: dict[str, list] = {k: [] for k in jobs}
    for _ in range(max(1, repeat)):          # alternated, so drifts in load hit all alike
        for k, job in jobs.items():
            trials[k].append(job())
    steady = {k: _median_run(trials.pop(k)) for k in ("steady -j1", "steady -j2")}
    runs = {k: _median_run(v) for k, v in trials.items() if k != "ImageJ"}
    ij = _median_run(trials["ImageJ"]) if "ImageJ" in trials else {"error": "skipped (--no-imagej)"}
    if repeat > 1:
        print(f"(each the median of {repeat} alternated runs; walls: "
              + "; ".join(f"{k} " + "/".join(f"{t['wall_s']:.1f}" for t in v if "wall_s" in t)
                          for k, v in trials.items()) + ")")
    out["batch"] = {k: v for k, v in runs.items()}
    out["steady_state"] = steady
    out["imagej"] = {k: v for k, v in ij.items() if k != "porosity"}
    print(f"{'run':>22} {'wall s':>8} {'fields/s':>9} {'ms/field':>9} {'peak RSS MB':>14}")
    for k, v in runs.items():
        peaks = v["peak_rss_workers_mb"] or [v["peak_rss_main_mb"]]
        print(f"{k:>22} {v['wall_s']:8.1f} {n / v['wall_s']:9.2f} {1000 * v['wall_s'] / n:9.0f} "
              f"{'/'.join(f'{p:.0f}' for p in peaks):>14}")
        if k.endswith("+report") and v.get("write_s") is not None:
            print(f"{'':>22} (measure {v['measure_s']:.1f} s, tables+report {v['write_s']:.1f} s)")
    for k, v in steady.items():
        if "error" in v:
            print(f"{k:>22} {'n/a':>8}   ({v['error']})")
        else:
            print(f"{k:>22} {'':>8} {v['fields_per_s']:9.2f} {1000 / v['fields_per_s']:9.0f}"
                  f"   (from the 10th result on; first result after {v['first_result_s']:.2f} s)")
    if "error" in ij:
        print(f"{'ImageJ Default macro':>22} {'n/a':>8}   ({ij['error']})")
    else:
        print(f"{'ImageJ Default macro':>22} {ij['wall_s']:8.1f} {n / ij['wall_s']:9.2f} "
              f"{1000 * ij['wall_s'] / n:9.0f}")

    if a.profile:
        p = sets.get(("2048x1536", 16), sets[next(iter(sets))])[0][0]
        print(f"\nprofile: 3 x measure_field({p.name}), by own time")
        print(profile(p, pipeline))

    print("\ntargets")
    verdicts = []
    j1, j2 = runs["poromet -j1 measure"]["wall_s"], runs["poromet -j2 measure"]["wall_s"]
    if "error" not in ij:
        ratio = j1 / ij["wall_s"]
        verdicts.append((f"batch measure-only / ImageJ macro = {ratio:.2f} (<= {TARGET_IJ_RATIO:g})",
                         ratio <= TARGET_IJ_RATIO))
        like = runs["poromet -j1 ij-like"]["wall_s"] / ij["wall_s"]
        verdicts.append((f"  (information) same work as the macro (ij-like pipeline) / ImageJ = "
                         f"{like:.2f}", None))
    else:
        verdicts.append(("batch / ImageJ: ImageJ not run", None))
    if kernels_on and "error" not in ij:
        r1 = runs["reference -j1 measure"]["wall_s"]
        verdicts.append((f"  (information) reference path (POROMET_KERNELS=0) / ImageJ = "
                         f"{r1 / ij['wall_s']:.2f}; compiled kernels {j1:.1f} s vs reference "
                         f"{r1:.1f} s", None))
    scale = j1 / j2
    verdicts.append((f"throughput 2 workers / 1 worker = {scale:.2f} (>= {TARGET_SCALING:g}; "
                     f"{os.cpu_count()} cores, shared)", scale >= TARGET_SCALING))
    if all("error" not in v for v in steady.values()):
        ss = steady["steady -j2"]["fields_per_s"] / steady["steady -j1"]["fields_per_s"]
        verdicts.append((f"  (information) steady state, each process started: 2 workers / "
                         f"1 worker = {ss:.2f}", None))
    if kernels_on:
        rs = runs["reference -j1 measure"]["wall_s"] / runs["reference -j2 measure"]["wall_s"]
        verdicts.append((f"  (information) reference path: 2 workers / 1 worker = {rs:.2f}", None))
    m = rss["measure"].get("peak_rss_mb")
    verdicts.append((f"peak RSS 4096x3072 16-bit = {m:.0f} MB (<= {TARGET_RSS_MB:g})" if m
                     else "peak RSS: measurement failed", bool(m and m <= TARGET_RSS_MB)))
    wk = runs["poromet -j2 measure"]["peak_rss_workers_mb"]
    if wk:
        verdicts.append((f"peak RSS per worker, 2-worker batch 1280x960 = {max(wk):.0f} MB "
                         f"(<= {TARGET_RSS_MB:g}; kernel high-water mark, read every 0.25 s)", max(wk) <= TARGET_RSS_MB))
    for text, ok in verdicts:
        print(f"  {'PASS' if ok else ('    ' if ok is None else 'FAIL')}  {text}")
    out["targets"] = [{"target": t, "pass": ok} for t, ok in verdicts]
    (a.data / "speed.json").write_text(json.dumps(out, indent=2, default=str))
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nwritten: {a.data / 'speed.json'}")
    return 0 if all(ok is not False for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
