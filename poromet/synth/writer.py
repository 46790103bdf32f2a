"""Writing synthetic fields and sets: TIFF + metadata, sidecars, truth table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["write_field", "write_set", "set_specs", "fei_ini", "TRUTH_COLUMNS", "METADATA_KINDS"]

METADATA_KINDS = ("fei", "resolution", "none")

#: Columns of ``truth.csv``, in order.
TRUTH_COLUMNS = (
    "path", "sample", "field", "porosity_rect", "porosity_exterior", "porosity_target",
    "sample_porosity", "void_px_rect", "region_px_rect", "void_px_exterior",
    "region_px_exterior", "rect_x", "rect_y", "rect_w", "rect_h", "info_bar_px",
    "pixel_size_um", "stack_side", "bit_depth", "width", "height", "difficulty",
    "metadata", "sidecar", "seed",
)


def _set_error(name, value, allowed):
    from ..errors import PorometError

    return PorometError(f"synth: {name}={value!r} is not allowed; use {allowed}")


def fei_ini(field, *, rng: np.random.Generator | None = None) -> str:
    """FEI/Thermo-style INI metadata text (tag 34682) for a field.

    ``[Scan] PixelWidth`` is in metres; ``[Image] ResolutionY`` is the image
    height without the data bar, as FEI instruments write it.
    """
    H, W = field.image.shape
    p = field.params
    px_m = field.pixel_size_um * 1e-6
    return "\r\n".join([
        "[User]",
        "Date=01/02/2025",
        "Time=10:20:30 AM",
        "User=poromet-synth",
        "",
        "[System]",
        "Type=DualBeam",
        "Dnumber=9922544",
        "Software=poromet synthetic",
        "",
        "[Beam]",
        f"HV={p.get('bar_hv_kv', 10.0) * 1000:g}",
        "Beam=EBeam",
        "",
        "[EBeam]",
        f"HV={p.get('bar_hv_kv', 10.0) * 1000:g}",
        f"WD={p.get('bar_wd_mm', 5.0) / 1000:g}",
        f"HFW={W * px_m!r}",
        "",
        "[Scan]",
        "InternalScan=true",
        f"PixelWidth={px_m!r}",
        f"PixelHeight={px_m!r}",
        f"HorFieldsize={W * px_m!r}",
        f"VerFieldsize={(H - field.info_bar_px) * px_m!r}",
        "Dwelltime=1e-06",
        "",
        "[Detectors]",
        f"Name={p.get('bar_detector', 'ETD')}",
        "Mode=SE",
        "",
        "[Image]",
        f"ResolutionX={W}",
        f"ResolutionY={H - field.info_bar_px}",
        "DigitalContrast=1",
        "DigitalBrightness=0",
        "DigitalGamma=1",
        "",
    ]) + "\r\n"


def write_field(field, path, *, sidecar: str = "rect", metadata: str = "random") -> Path:
    """Write a field as a deflate-compressed TIFF, with calibration and sidecar.

    Parameters
    ----------
    field : SynthField
    path : str or Path
        The ``.tif`` file to write (parent folders are created).
    sidecar : {'rect', 'none'}
        'rect' also writes ``<stem>.roi.json`` = ``{"rect": [x, y, w, h]}``.
    metadata : {'random', 'fei', 'resolution', 'none'}
        'fei': tag 34682 INI text with ``[Scan] PixelWidth`` (m) and
        ``[Image] ResolutionY`` (height without the bar); 'resolution': TIFF
        X/YResolution in pixels per centimetre; 'none': no calibration;
        'random': one of these drawn from the field's seed.

    Returns
    -------
    Path
        The TIFF written.
    """
    import tifffile

    if sidecar not in ("rect", "none"):
        raise _set_error("sidecar", sidecar, "'rect' or 'none'")
    if metadata not in ("random",) + METADATA_KINDS:
        raise _set_error("metadata", metadata, "'random', 'fei', 'resolution' or 'none'")
    if metadata == "random":
        metadata = resolve_metadata(field)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {}
    if metadata == "fei":
        kw["extratags"] = [(34682, "s", 0, fei_ini(field), True)]
    elif metadata == "resolution":
        ppcm = 1e4 / field.pixel_size_um
        kw["resolution"] = (ppcm, ppcm)
        kw["resolutionunit"] = "CENTIMETER"
    tifffile.imwrite(path, field.image, photometric="minisblack", compression="zlib",
                     compressionargs={"level": 6}, metadata=None, **kw)
    if sidecar == "rect":
        roi = path.with_name(_stem(path) + ".roi.json")
        roi.write_text(json.dumps({"rect": [int(v) for v in field.rect]}) + "\n",
                       encoding="utf-8")
    return path


def resolve_metadata(field) -> str:
    """The metadata kind 'random' means for this field (drawn from its seed)."""
    r = np.random.default_rng([int(field.params.get("seed", 0)), 34682])
    return str(r.choice(METADATA_KINDS, p=[0.5, 0.3, 0.2]))


def _stem(path: Path) -> str:
    name = path.name
    for suf in (".tiff", ".tif"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return path.stem


def _per_sample(value, n, name):
    if value is None or isinstance(value, (int, float)):
        return [value] * n
    vals = list(value)
    if len(vals) != n:
        raise _set_error(name, value, f"None, one value or {n} values (one per sample)")
    return vals


def set_specs(*, n_samples: int, fields_per_sample: int, seed: int, stack_fraction: float = 0.3,
              porosities=None, size: tuple[int, int] = (1024, 768), difficulty: str = "mixed",
              bit_depth: int | None = None, metadata: str = "random", info_bar=None,
              field_cv: float | None = None):
    """The fields of a :func:`write_set` set, drawn as it draws them (no files).

    Yields, per field in order, a dict with ``sample`` ('S01', ...), ``k``
    (0-based field index), ``metadata`` (the kind written), ``sample_porosity``,
    ``porosity`` (the field's target) and ``field``: the keyword arguments of
    :func:`~poromet.synth.field.generate_field` that make the field.
    ``porosities``: per sample, None (drawn) or a value; the other
    parameters as in :func:`write_set` (not checked here).
    """
    from .field import _bar_height
    from .noise import log_uniform, uniform

    W, H = (int(v) for v in size)
    porosities = _per_sample(porosities, n_samples, "sample_porosity")
    rng = np.random.default_rng(int(seed))
    for s in range(n_samples):
        sname = f"S{s + 1:02d}"
        sp = porosities[s] if porosities[s] is not None else uniform(rng, 0.03, 0.5)
        cv = field_cv if field_cv is not None else uniform(rng, 0.03, 0.08)
        px_um = log_uniform(rng, 0.06, 0.16)
        bits = bit_depth if bit_depth is not None else (8 if rng.random() < 0.7 else 16)
        bar = info_bar if info_bar is not None else _bar_height(rng, None, H)
        meta = metadata if metadata != "random" else str(
            rng.choice(METADATA_KINDS, p=[0.5, 0.3, 0.2]))
        for k in range(fields_per_sample):
            fseed = int(rng.integers(0, 2**31 - 1))
            fp = float(np.clip(sp * (1.0 + rng.normal(0.0, cv)), 0.0, 0.9))
            with_stack = bool(rng.random() < stack_fraction)
            yield {"sample": sname, "k": k, "metadata": meta, "sample_porosity": sp,
                   "porosity": fp,
                   "field": dict(seed=fseed, width=W, height=H, porosity=fp, bit_depth=bits,
                                 stack=with_stack, info_bar=bar, pixel_size_um=px_um,
                                 difficulty=difficulty)}


def write_set(out_dir, *, n_samples: int, fields_per_sample: int, seed: int,
              layout: str = "samples", sidecar: str = "rect", stack_fraction: float = 0.3,
              sample_porosity: float | Sequence[float] | None = None,
              size: tuple[int, int] = (1024, 768), difficulty: str = "mixed",
              bit_depth: int | None = None, metadata: str = "random", info_bar=None,
              truth_masks: bool = True, field_cv: float | None = None) -> Path:
    """Write a set of samples x fields with their truth.

    Fields of one sample share the microscope settings (pixel size, bit
    depth, data bar, metadata kind) and a sample porosity; each field's
    porosity is the sample's times ``1 + N(0, cv)`` with ``cv`` a few
    percent (``field_cv``, drawn in [0.03, 0.08] when None).

    Parameters
    ----------
    out_dir : str or Path
        Created if missing.
    n_samples, fields_per_sample : int
    seed : int
        Seed of the whole set; each field's own seed is in ``truth.csv``
        (``generate_field(seed, ...)`` with the row's settings remakes it).
    layout : {'samples', 'flat'}
        'samples': ``S01/S01_f01.tif``; 'flat': ``S01_f01.tif``.
    sidecar : {'rect', 'none'}
    stack_fraction : float
        Probability that a field shows the laminated stack band.
    sample_porosity : None, float or sequence of float
        The samples' true mean porosity; None draws each in [0.03, 0.5].
    size : (width, height)
    difficulty : {'easy', 'mixed', 'hard'}
    bit_depth : {None, 8, 16}
        None draws per sample (8-bit 70 %).
    metadata : {'random', 'fei', 'resolution', 'none'}
        'random' draws per sample.
    info_bar : None, bool or int
        As in :func:`generate_field`, but drawn once per sample when None.
    truth_masks : bool
        Also write ``_truth/<stem>.exterior.mask.png`` and
        ``_truth/<stem>.pores.mask.png``.
    field_cv : float or None
        Relative field-to-field porosity spread.

    Returns
    -------
    Path
        ``out_dir/truth.csv``.
    """
    from .field import generate_field
    from .render import DIFFICULTIES

    if layout not in ("samples", "flat"):
        raise _set_error("layout", layout, "'samples' or 'flat'")
    if sidecar not in ("rect", "none"):
        raise _set_error("sidecar", sidecar, "'rect' or 'none'")
    if metadata not in ("random",) + METADATA_KINDS:
        raise _set_error("metadata", metadata, "'random', 'fei', 'resolution' or 'none'")
    if difficulty not in DIFFICULTIES:
        raise _set_error("difficulty", difficulty, f"one of {DIFFICULTIES}")
    if not (0.0 <= stack_fraction <= 1.0):
        raise _set_error("stack_fraction", stack_fraction, "a fraction in [0, 1]")
    if int(n_samples) < 1 or int(fields_per_sample) < 1:
        raise _set_error("n_samples/fields_per_sample", (n_samples, fields_per_sample),
                         "positive ints")
    try:
        W, H = (int(v) for v in size)
    except (TypeError, ValueError):
        raise _set_error("size", size, "(width, height) in pixels") from None
    porosities = _per_sample(sample_porosity, n_samples, "sample_porosity")
    for v in porosities:
        if v is not None and not (0.0 <= v <= 0.85):
            raise _set_error("sample_porosity", v, "fractions in [0, 0.85]")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in set_specs(n_samples=n_samples, fields_per_sample=fields_per_sample, seed=seed,
                          stack_fraction=stack_fraction, porosities=porosities, size=(W, H),
                          difficulty=difficulty, bit_depth=bit_depth, metadata=metadata,
                          info_bar=info_bar, field_cv=field_cv):
        sname, k, meta, sp, fp = (spec[key] for key in ("sample", "k", "metadata",
                                                          "sample_porosity", "porosity"))
        f = generate_field(**spec["field"])
        stem = f"{sname}_f{k + 1:02d}"
        rel = f"{sname}/{stem}.tif" if layout == "samples" else f"{stem}.tif"
        write_field(f, out / rel, sidecar=sidecar, metadata=meta)
        if truth_masks:
            _write_masks(f, out / "_truth", stem)
        x, y, w, h = f.rect
        p = f.params
        rows.append({
            "path": rel, "sample": sname, "field": k + 1,
            "porosity_rect": repr(f.porosity_rect),
            "porosity_exterior": repr(f.porosity_exterior),
            "porosity_target": repr(fp), "sample_porosity": repr(float(sp)),
            "void_px_rect": p["void_px_rect"], "region_px_rect": p["region_px_rect"],
            "void_px_exterior": p["void_px_exterior"],
            "region_px_exterior": p["region_px_exterior"],
            "rect_x": x, "rect_y": y, "rect_w": w, "rect_h": h,
            "info_bar_px": f.info_bar_px, "pixel_size_um": repr(f.pixel_size_um),
            "stack_side": f.stack_side or "", "bit_depth": f.bit_depth,
            "width": W, "height": H, "difficulty": difficulty, "metadata": meta,
            "sidecar": sidecar, "seed": spec["field"]["seed"],
        })
    truth = out / "truth.csv"
    with open(truth, "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(rows)
    return truth


def _write_masks(field, folder: Path, stem: str) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for name, m in (("exterior", field.exterior), ("pores", field.pores)):
        ok = cv2.imwrite(str(folder / f"{stem}.{name}.mask.png"),
                         m.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_COMPRESSION, 6])
        if not ok:
            raise OSError(f"could not write truth mask {folder / f'{stem}.{name}.mask.png'}")


def read_truth(path) -> list[dict]:
    """Read ``truth.csv`` back with numbers as numbers (``stack_side`` '' -> None)."""
    ints = {"field", "void_px_rect", "region_px_rect", "void_px_exterior",
            "region_px_exterior", "rect_x", "rect_y", "rect_w", "rect_h", "info_bar_px",
            "bit_depth", "width", "height", "seed"}
    floats = {"porosity_rect", "porosity_exterior", "porosity_target", "sample_porosity",
              "pixel_size_um"}
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for k in ints & row.keys():
                row[k] = int(row[k])
            for k in floats & row.keys():
                row[k] = float(row[k]) if row[k] else math.nan
            row["stack_side"] = row.get("stack_side") or None
            out.append(row)
    return out
