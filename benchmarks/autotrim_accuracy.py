"""Automatic exterior-unit trimming against the truth of synthetic fields.

    python benchmarks/autotrim_accuracy.py [--n 30] [--seed 2000] [--size 1024x768]

For each field from :func:`poromet.synth.generate_field` (about two thirds
with a laminated stack band on a random side) it reports

* the intersection-over-union of the auto-trimmed region with the true
  exterior unit (fields with a stack) and with the whole field above the info
  bar (fields without one);
* the porosity error of the full measurement chain (``measure_field``) with
  ``trim = "auto"`` against ``porosity_exterior`` (truth: the whole true
  exterior unit), next to the error with the given rectangle
  (``roi=rect``, truth ``porosity_rect``);
* the error due to trimming alone: the true pore fraction inside the found
  region minus ``porosity_exterior`` (what a perfect segmentation would
  report with the auto-trimmed region).

``run_autotrim(n, seed, size)`` is what ``benchmarks/accuracy.py`` calls.
Targets (issue "Automatic trimming of the exterior unit"): IoU >= 0.9 on
fields with a stack, mean porosity |error| <= 0.8 pp without sidecars.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

TARGET_IOU = 0.9
TARGET_MEAN_PP = 0.8


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def run_autotrim(n: int = 30, seed: int = 2000, size: tuple[int, int] = (1024, 768), *,
                 stack_fraction: float = 0.66, verbose: bool = True) -> dict:
    """Run the auto-trim benchmark and print its figures.

    Parameters
    ----------
    n : int
        Number of fields.
    seed : int
        First field seed (field i uses ``seed + i``).
    size : (width, height)
    stack_fraction : float
        Share of fields drawn with a stack band.

    Returns
    -------
    dict
        ``iou_stack_mean``, ``iou_stack_min``, ``iou_stack_pass_frac`` (share
        of stack fields with IoU >= 0.9), ``iou_nostack_mean``,
        ``err_auto_mean_pp``, ``err_auto_worst_pp``, ``err_rect_mean_pp``,
        ``err_rect_worst_pp``, ``err_trim_mean_pp``, ``err_trim_worst_pp``,
        ``trim_s_mean``, ``n``, ``n_stack``, ``flagged`` and ``rows`` (per field).
    """
    import poromet
    from poromet.autotrim import trim_auto
    from poromet.records import Calibration, Image
    from poromet.pipeline import load_pipeline, override
    from poromet.synth import generate_field
    from poromet.synth.laminate import SIDES

    pipe = override(load_pipeline("exterior-unit"), trim__mode="auto")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        side = str(rng.choice(SIDES)) if rng.random() < stack_fraction else False
        f = generate_field(seed + i, width=size[0], height=size[1], stack=side)
        bar = f.info_bar_px
        t0 = time.perf_counter()
        region = trim_auto(f.image, info_bar_px=bar, pixel_size_um=f.pixel_size_um,
                           settings=pipe.trim)
        dt = time.perf_counter() - t0
        whole = np.zeros(f.image.shape, bool)
        whole[: f.image.shape[0] - bar] = True
        truth_region = f.exterior if f.stack_side else whole
        iou = _iou(region.mask, truth_region)
        img = Image(f.image, bit_depth=f.bit_depth,
                            calibration=Calibration(
                                pixel_size_um=f.pixel_size_um, pixel_size_source="user",
                                info_bar_px=bar, info_bar_source="pipeline"))
        p_pipe = override(pipe, image__info_bar=bar, image__pixel_size_um=f.pixel_size_um)
        res_auto = poromet.measure_field(img, pipeline=p_pipe, sidecar=False)
        res_rect = poromet.measure_field(img, roi=f.rect, pipeline=p_pipe, sidecar=False)
        row = {
            "seed": seed + i, "stack_side": f.stack_side, "iou": iou,
            "err_auto_pp": 100 * (res_auto.porosity - f.porosity_exterior),
            "err_rect_pp": 100 * (res_rect.porosity - f.porosity_rect),
            "err_trim_pp": 100 * (np.count_nonzero(f.pores & region.mask)
                                  / max(np.count_nonzero(region.mask), 1) - f.porosity_exterior),
            "confidence": region.confidence, "status": res_auto.status,
            "trim_s": dt, "region": region.description,
        }
        rows.append(row)
        if verbose:
            print(f"  {seed + i:6d} {str(f.stack_side):6s} IoU {iou:.3f} "
                  f"auto {row['err_auto_pp']:+6.2f} pp  rect {row['err_rect_pp']:+6.2f} pp  "
                  f"trim only {row['err_trim_pp']:+6.2f} pp  "
                  f"conf {region.confidence:.2f} {res_auto.status:7s} {region.description}")
    st = [r for r in rows if r["stack_side"]]
    ns = [r for r in rows if not r["stack_side"]]
    ea = np.abs([r["err_auto_pp"] for r in rows])
    er = np.abs([r["err_rect_pp"] for r in rows])
    et = np.abs([r["err_trim_pp"] for r in rows])
    out = {
        "n": n, "n_stack": len(st),
        "iou_stack_mean": float(np.mean([r["iou"] for r in st])) if st else float("nan"),
        "iou_stack_min": float(np.min([r["iou"] for r in st])) if st else float("nan"),
        "iou_stack_pass_frac": float(np.mean([r["iou"] >= TARGET_IOU for r in st])) if st else float("nan"),
        "iou_nostack_mean": float(np.mean([r["iou"] for r in ns])) if ns else float("nan"),
        "err_auto_mean_pp": float(ea.mean()), "err_auto_worst_pp": float(ea.max()),
        "err_rect_mean_pp": float(er.mean()), "err_rect_worst_pp": float(er.max()),
        "err_trim_mean_pp": float(et.mean()), "err_trim_worst_pp": float(et.max()),
        "trim_s_mean": float(np.mean([r["trim_s"] for r in rows])),
        "flagged": sum(r["status"] == "flagged" for r in rows),
        "rows": rows,
    }
    if verbose:
        print(f"auto trim: IoU (stack fields, n={len(st)}) mean {out['iou_stack_mean']:.3f} "
              f"min {out['iou_stack_min']:.3f}, >= {TARGET_IOU}: {out['iou_stack_pass_frac']:.0%}; "
              f"IoU with whole field (no stack, n={len(ns)}) mean {out['iou_nostack_mean']:.3f}")
        print(f"porosity |error|: auto trim mean {out['err_auto_mean_pp']:.2f} pp "
              f"worst {out['err_auto_worst_pp']:.2f} pp; given rectangle mean "
              f"{out['err_rect_mean_pp']:.2f} pp worst {out['err_rect_worst_pp']:.2f} pp; "
              f"trimming alone mean {out['err_trim_mean_pp']:.2f} pp worst "
              f"{out['err_trim_worst_pp']:.2f} pp; "
              f"flagged {out['flagged']}/{n}; trim time mean {out['trim_s_mean']:.3f} s")
        ok = out["iou_stack_pass_frac"] == 1.0 and out["err_auto_mean_pp"] <= TARGET_MEAN_PP
        print(f"{'PASS' if ok else 'FAIL'} (targets: IoU >= {TARGET_IOU} on stack fields, "
              f"mean |error| <= {TARGET_MEAN_PP} pp)")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--size", default="1024x768")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))
    run_autotrim(a.n, a.seed, (w, h))
    return 0


if __name__ == "__main__":
    sys.exit(main())
