"""Synthetic cross-section SEM fields with exactly known porosity.

API (stable; the accuracy benchmarks and tests rely on it)::

    generate_field(seed, *, width=1024, height=768, porosity=None, bit_depth=None,
                   stack=None, info_bar=None, pixel_size_um=None,
                   difficulty="mixed") -> SynthField

    SynthField (frozen): image (H, W) uint8/uint16, pores (bool truth),
        exterior (bool truth: exterior unit, no stack, no info bar),
        info_bar_px, pixel_size_um, rect (x, y, w, h), porosity_rect,
        porosity_exterior, stack_side (None/'top'/'bottom'/'left'/'right'),
        params (dict, JSON-able; every drawn parameter, incl. 'seed');
        properties bit_depth, rect_mask; method counts(region) -> (void, n).

    write_field(field, path, *, sidecar="rect", metadata="random") -> Path
        TIFF (deflate); metadata in {"random", "fei", "resolution", "none"};
        sidecar in {"rect", "none"} writes <stem>.roi.json {"rect": [x, y, w, h]}.

    write_set(out_dir, *, n_samples, fields_per_sample, seed, layout="samples",
              sidecar="rect", stack_fraction=0.3, sample_porosity=None,
              size=(1024, 768), difficulty="mixed", bit_depth=None,
              metadata="random", info_bar=None, truth_masks=True,
              field_cv=None) -> Path
        Writes out_dir/S01/S01_f01.tif ... (layout "samples") or
        out_dir/S01_f01.tif ... ("flat"), out_dir/truth.csv (TRUTH_COLUMNS)
        and, with truth_masks, out_dir/_truth/S01_f01.exterior.mask.png and
        .pores.mask.png (255 = True).

    python -m poromet.synth OUT_DIR --samples 9 --fields 10 --seed 1
        [--flat] [--sidecar none] [--stack-fraction 0.66] [--size 1024x768]

Truth is the pore geometry itself (before blur and noise): bright SE rims
are solid, visible pore bottoms are pore.  For any region ``R`` the true
porosity is ``pores[R].sum() / R.sum()``, exactly (integer counts).

What makes the images hard, as real SEM cross-sections are: irregular and
round pores 0.3-5 um (clustered, elongated, unions of ellipses and
thresholded noise), grain texture with faint boundaries and sometimes a
second darker solid phase, SE edge brightening in the solid at pore rims,
mid-gray floors in large pores with dark walls, probe blur, Poisson shot
noise from low to high dose, brightness gradients up to +-40 %, charging
streaks, scan-line jitter, data bars of varied style and height (or none),
8- and 16-bit output (16-bit using part of the range), and a laminated
electrode stack band on any side with a wavy boundary (outside the
exterior unit).

Examples
--------
>>> from poromet.synth import generate_field
>>> f = generate_field(7, width=320, height=240, porosity=0.3, stack="left")
>>> bool((f.pores & f.exterior).sum() / f.exterior.sum() == f.porosity_exterior)
True
>>> bool(f.exterior[:, :5].any())      # the stack band is outside the exterior unit
False
"""

from __future__ import annotations

__all__ = [
    "SynthField",
    "generate_field",
    "write_field",
    "write_set",
    "TRUTH_COLUMNS",
]

_LAZY = {
    "SynthField": "field",
    "generate_field": "field",
    "write_field": "writer",
    "write_set": "writer",
    "TRUTH_COLUMNS": "writer",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'poromet.synth' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
