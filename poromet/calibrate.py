"""Pixel size and info-bar height: from SEM metadata, the pixels, or the user.

Order of trust for the pixel size (source names as in
:data:`poromet.records.PIXEL_SIZE_SOURCES`):

``user``
    ``[image] pixel_size_um`` of the pipeline, always wins.
``fei``
    FEI/Thermo tag 34682 (older 34680): ``[Scan] PixelWidth`` in metres,
    else ``[EScan]``/``[IScan]``; newer files hold XML in that tag, which is
    parsed from the raw tag text.
``zeiss``
    Zeiss tag 34118: ``ap_image_pixel_size`` (units pm/nm/µm/mm).  Where only
    ``ap_pixel_size`` exists it refers to the scan's 1024-pixel reference
    width, not to the stored image; the stored pixel size is then
    ``ap_width / stored width`` (a note says so).
``tiff-resolution``
    X/YResolution with a real unit (inch/cm, or ImageJ's unit); unit NONE
    and screen/print defaults (72, 96, 300 dpi ...) are rejected.
``none``
    Nothing usable: sizes stay in pixels.

The info bar (the SEM data bar at the bottom) comes from FEI metadata
(image height − ``[Image] ResolutionY``), else from the pixels
(:func:`detect_info_bar`, in :mod:`poromet.infobar`), unless the pipeline
forces it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import CalibrationError
from .infobar import INFO_BAR_MAX_FRACTION, _MIN_IMAGE_ROWS, detect_info_bar  # re-exported
from .records import Calibration

__all__ = [
    "calibrate",
    "calibration_from_metadata",
    "detect_info_bar",
    "tiff_metadata",
    "INFO_BAR_MAX_FRACTION",
]

_UNITS_UM = {"fm": 1e-9, "pm": 1e-6, "nm": 1e-3, "um": 1.0, "µm": 1.0, "μm": 1.0,
             "micron": 1.0, "microns": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}
_FEI_TAGS = (34682, 34680)
_ZEISS_KEYS = (
    "ap_image_pixel_size", "ap_pixel_size", "ap_width", "ap_height", "dp_image_store",
    "ap_mag", "ap_actualkv", "ap_wd", "dp_detector_channel", "dp_detector_type", "ap_iprobe",
    "ap_tilt_angle", "dp_tilt_correction", "ap_date", "ap_time", "sv_serial_number",
    "sv_version", "sv_file_name", "ap_brightness", "ap_contrast", "dp_noise_reduction",
    "ap_line_average_count", "ap_frame_average_count", "dp_dwell_time",
)


# -- metadata extraction (called by poromet.io for TIFF files) -----------------

def _jsonable(value: Any, depth: int = 0) -> Any:
    if isinstance(value, dict) and depth < 4:
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and depth < 4:
        return [_jsonable(v, depth + 1) for v in value[:64]]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int)) or value is None:
        return value
    return str(value)[:300]


def _xml_flat(text: str) -> dict[str, str]:
    """Flatten XML into {'A.B.C': text, 'A.B.C@unit': attr}, first 400 leaves."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text.strip().strip("\x00"))
    out: dict[str, str] = {}

    def walk(el, prefix):
        name = el.tag.rsplit("}", 1)[-1]
        key = f"{prefix}.{name}" if prefix else name
        base, n = key, 1
        while key in out or f"{key}#" in out:
            n += 1
            key = f"{base}[{n}]"
        kids = list(el)
        for attr, val in el.attrib.items():
            out[f"{key}@{attr.rsplit('}', 1)[-1]}"] = val[:200]
        if not kids and el.text and el.text.strip():
            out[key] = el.text.strip()[:200]
        elif kids:
            out[f"{key}#"] = ""
        for kid in kids:
            if len(out) < 400:
                walk(kid, key)

    walk(root, "")
    return {k: v for k, v in out.items() if not k.endswith("#")}


def tiff_metadata(tif, raw: bytes) -> dict:
    """Small, JSON-able metadata of an open ``tifffile.TiffFile``.

    Keys (when present): ``'pages'``, ``'resolution'`` (``x``, ``y`` in
    pixels per ``unit``), ``'imagej'`` (``unit``), ``'fei'`` (INI sections),
    ``'fei_xml'`` (flattened XML), ``'zeiss'`` (``{key: [label, value,
    unit]}``, a selection) and ``'summary'`` (vendor, instrument, detector,
    kV, WD, date).
    """
    page = tif.pages.first
    tags = page.tags
    md: dict[str, Any] = {"pages": len(tif.pages)}
    if "XResolution" in tags:
        ru = tags.valueof("ResolutionUnit")
        unit = {1: "none", 2: "inch", 3: "centimeter"}.get(2 if ru is None else int(ru), "none")
        try:
            xr, yr = (tags.valueof(n) for n in ("XResolution", "YResolution"))
            x = xr[0] / xr[1] if isinstance(xr, tuple) else float(xr)
            y = yr[0] / yr[1] if isinstance(yr, tuple) else float(yr if yr is not None else x)
            md["resolution"] = {"x": _jsonable(float(x)), "y": _jsonable(float(y)), "unit": unit}
        except (TypeError, ZeroDivisionError, ValueError):
            pass
    if tif.is_imagej and tif.imagej_metadata:
        ij = tif.imagej_metadata
        md["imagej"] = {k: _jsonable(ij[k]) for k in ("unit", "spacing") if k in ij}
    for code in _FEI_TAGS:
        tag = tags.get(code)
        if tag is None:
            continue
        text = raw[tag.valueoffset:tag.valueoffset + tag.count].decode("latin-1", "replace")
        if text.lstrip("\x00 \r\n\t").startswith("<"):
            try:
                md["fei_xml"] = _xml_flat(text)
            except Exception as exc:  # malformed vendor XML: keep the fact, not the crash
                md["fei_xml"] = {"error": f"unparsable XML: {exc}"[:200]}
        elif isinstance(tag.value, dict) and tag.value:
            md["fei"] = _jsonable(tag.value)
    if tif.is_sem:
        sem = tif.sem_metadata or {}
        md["zeiss"] = {k: _jsonable(sem[k]) for k in _ZEISS_KEYS if k in sem}
    md["summary"] = _summary(md)
    return md


def _get(d: dict, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def _summary(md: dict) -> dict:
    s: dict[str, Any] = {}
    if "fei" in md:
        f = md["fei"]
        s = {"vendor": "FEI/Thermo Fisher", "instrument": _get(f, "System", "SystemType"),
             "detector": _get(f, "Detectors", "Name"), "mode": _get(f, "Detectors", "Mode"),
             "hv_kv": _num(_get(f, "Beam", "HV"), 1e-3), "wd_mm": _num(_get(f, "Stage", "WorkingDistance"), 1e3),
             "hfw_um": _num(_get(f, "Scan", "HorFieldsize"), 1e6),
             "date": " ".join(str(v) for v in (_get(f, "User", "Date"), _get(f, "User", "Time")) if v)}
    elif "fei_xml" in md:
        s = {"vendor": "FEI/Thermo Fisher (XML)"}
    elif "zeiss" in md:
        z = md["zeiss"]

        def val(k):
            v = z.get(k)
            return v[1] if isinstance(v, list) and len(v) > 1 else None

        s = {"vendor": "Zeiss", "instrument": val("sv_serial_number"), "detector": val("dp_detector_channel"),
             "hv_kv": _num(val("ap_actualkv")), "wd_mm": _num(val("ap_wd")), "magnification": val("ap_mag"),
             "date": " ".join(str(v) for v in (val("ap_date"), val("ap_time")) if v)}
    return {k: v for k, v in s.items() if v not in (None, "")}


def _num(value, scale: float = 1.0) -> float | None:
    try:
        v = float(value) * scale
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# -- pixel size from metadata ---------------------------------------------------

def _fei_pixel_size(md: dict, shape, notes: list[str]) -> float | None:
    fei = md.get("fei")
    if fei:
        for section in ("Scan", "EScan", "IScan"):
            v = _num(_get(fei, section, "PixelWidth"))
            if v is not None and 0 < v < 1:
                resx = _num(_get(fei, "Image", "ResolutionX"))
                if resx and int(resx) != shape[1]:
                    notes.append(f"FEI [Image] ResolutionX {int(resx)} differs from the image width "
                                 f"{shape[1]}: the image was resized or cropped, the pixel size may not apply")
                return v * 1e6
        return None
    xml = md.get("fei_xml") or {}
    for key, val in xml.items():
        leaf = key.rsplit(".", 1)[-1].lower()
        parent = key.rsplit(".", 2)[-2].lower() if key.count(".") >= 1 else ""
        if "@" in leaf:
            continue
        if leaf in ("pixelwidth", "pixelsizex") or (parent == "pixelsize" and leaf in ("x", "width")) \
                or (parent == "pixelwidth" and leaf == "value"):
            v = _num(val)
            if v is None or v <= 0:
                continue
            unit = (xml.get(f"{key}@unit") or xml.get(f"{key}@Unit") or xml.get(f"{key.rsplit('.', 1)[0]}.unit")
                    or xml.get(f"{key.rsplit('.', 2)[0]}.PixelUnitX") or "m")
            factor = _UNITS_UM.get(str(unit).strip())
            if factor is None:
                notes.append(f"FEI XML {key}: unknown unit {unit!r}; pixel size ignored")
                continue
            return v * factor
    return None


def _zeiss_length_um(entry) -> float | None:
    if not isinstance(entry, list) or len(entry) < 2:
        return None
    v = _num(entry[1])
    unit = entry[2] if len(entry) > 2 else "m"
    factor = _UNITS_UM.get(str(unit).strip())
    if v is None or v <= 0 or factor is None:
        return None
    return v * factor


def _zeiss_pixel_size(md: dict, shape, notes: list[str]) -> float | None:
    z = md.get("zeiss") or {}
    v = _zeiss_length_um(z.get("ap_image_pixel_size"))
    if v is not None:
        return v
    scan = _zeiss_length_um(z.get("ap_pixel_size"))
    if scan is None:
        return None
    width = _zeiss_length_um(z.get("ap_width"))
    if width is not None:
        px = width / shape[1]
        how = f"ap_width {width:g} µm / stored width {shape[1]} px"
    else:
        px = scan * 1024 / shape[1]
        how = f"ap_pixel_size x 1024 / stored width {shape[1]} px"
    notes.append(f"Zeiss metadata has no ap_image_pixel_size; ap_pixel_size ({scan * 1e3:g} nm) refers to "
                 f"the scan's 1024-px reference width, so the stored-image pixel size is {how} "
                 f"= {px * 1e3:.4g} nm")
    return px


def _resolution_pixel_size(md: dict, notes: list[str]) -> float | None:
    res = md.get("resolution")
    if not res or not res.get("x"):
        return None
    x, unit = float(res["x"]), res.get("unit", "none")
    ij_unit = str(_get(md, "imagej", "unit", default="") or "").strip()
    if unit == "none":
        factor = _UNITS_UM.get(ij_unit)
        if factor is None:
            return None  # unit NONE: an aspect ratio, not a calibration
        px = factor / x
        label = f"ImageJ calibration {x:g} px/{ij_unit}"
    else:
        dpi = x if unit == "inch" else x * 2.54
        if dpi <= 4800 and abs(dpi - round(dpi)) < 1e-3 * max(1.0, dpi):
            notes.append(f"TIFF resolution {dpi:g} dpi looks like a screen/print default, "
                         "not a calibration; ignored")
            return None
        px = 25400.0 / dpi
        label = f"TIFF resolution {x:g} px/{unit}"
    if not 1e-5 <= px <= 100:
        notes.append(f"{label} gives {px:g} µm/px, implausible for an SEM image; ignored")
        return None
    y = float(res.get("y") or x)
    if abs(y - x) > 1e-3 * x:
        notes.append(f"{label}: X and Y resolutions differ ({x:g} vs {y:g}); X used")
    return px


def _fei_info_bar(md: dict, shape, notes: list[str]) -> int | None:
    h = shape[0]
    xml = md.get("fei_xml") or {}
    for key, val in xml.items():
        if key.rsplit(".", 1)[-1].lower() == "databarheight":
            v = _num(val)
            if v is not None and 0 <= v < h - _MIN_IMAGE_ROWS:
                return int(v)
    resy = _num(_get(md.get("fei") or {}, "Image", "ResolutionY"))
    if resy is None:
        for key, val in xml.items():
            if key.lower().endswith(("image.resolutiony", "scansize.height", "scan.resolutiony")):
                resy = _num(val)
                break
    if resy is None:
        return None
    bar = h - int(resy)
    if not 0 <= bar < h - _MIN_IMAGE_ROWS:
        notes.append(f"FEI [Image] ResolutionY {int(resy)} does not fit the image height {h}; "
                     "info bar not taken from metadata")
        return None
    return bar


def calibration_from_metadata(metadata: dict, shape: tuple[int, ...]) -> Calibration:
    """What the file's metadata says: pixel size (+ source) and FEI info bar.

    Parameters
    ----------
    metadata : dict
        ``Image.metadata`` as made by :func:`poromet.io.read_image`.
    shape : tuple
        ``(H, W)`` of the stored image.

    Examples
    --------
    >>> md = {"fei": {"Scan": {"PixelWidth": 5e-9}, "Image": {"ResolutionY": 1024}}}
    >>> cal = calibration_from_metadata(md, (1094, 1536))
    >>> round(cal.pixel_size_um, 6), cal.pixel_size_source, cal.info_bar_px
    (0.005, 'fei', 70)
    """
    notes: list[str] = []
    px, source = None, "none"
    for name, fn in (("fei", lambda: _fei_pixel_size(metadata, shape, notes)),
                     ("zeiss", lambda: _zeiss_pixel_size(metadata, shape, notes)),
                     ("tiff-resolution", lambda: _resolution_pixel_size(metadata, notes))):
        px = fn()
        if px is not None:
            source = name
            break
    bar = _fei_info_bar(metadata, shape, notes) if ("fei" in metadata or "fei_xml" in metadata) else None
    if px is not None:
        px = float(f"{px:.10g}")  # 7.70833e-09 m -> 0.00770833 µm, not ...29999
    return Calibration(pixel_size_um=px, pixel_size_source=source,
                       info_bar_px=bar or 0, info_bar_source="metadata" if bar is not None else "none",
                       notes=tuple(notes))


# -- the final calibration -------------------------------------------------------

def calibrate(image, settings) -> Calibration:
    """Final pixel size and info bar of an image under a pipeline's settings.

    Parameters
    ----------
    image : poromet.records.Image
        As read by :func:`poromet.io.read_image` (its ``calibration`` holds
        what the metadata says).
    settings : poromet.pipeline.ImageSettings
        ``pixel_size_um`` (overrides metadata; source ``'user'``) and
        ``info_bar``: ``'auto'`` (metadata, else :func:`detect_info_bar`),
        ``'none'`` (0) or a height in px (source ``'pipeline'``).

    Returns
    -------
    Calibration

    Raises
    ------
    CalibrationError
        A forced info bar leaves fewer than 16 image rows.

    Examples
    --------
    >>> from poromet.io import as_image
    >>> from poromet.pipeline import ImageSettings
    >>> img = as_image(np.random.default_rng(1).integers(0, 255, (64, 64)).astype(np.uint8))
    >>> cal = calibrate(img, ImageSettings(info_bar=10, pixel_size_um=0.25))
    >>> cal.pixel_size_um, cal.pixel_size_source, cal.info_bar_px, cal.info_bar_source
    (0.25, 'user', 10, 'pipeline')
    """
    meta = image.calibration
    notes = list(meta.notes)
    h = int(image.data.shape[0])
    where = image.path or "<array>"
    if settings.pixel_size_um is not None:
        px, source = float(settings.pixel_size_um), "user"
        if meta.pixel_size_um and abs(meta.pixel_size_um - px) > 0.01 * px:
            notes.append(f"image.pixel_size_um {px:g} µm overrides the {meta.pixel_size_source} "
                         f"metadata value {meta.pixel_size_um:g} µm")
    else:
        px, source = meta.pixel_size_um, meta.pixel_size_source
    mode = settings.info_bar
    if isinstance(mode, bool) or not (mode in ("auto", "none") or isinstance(mode, int)):
        raise CalibrationError(f"image.info_bar: got {mode!r}; allowed: 'auto', 'none' or a height in px")
    if mode == "none":
        bar, bar_source = 0, "none"
    elif mode == "auto":
        if meta.info_bar_source == "metadata" and 0 <= meta.info_bar_px <= h - _MIN_IMAGE_ROWS:
            bar, bar_source = int(meta.info_bar_px), "metadata"
        else:
            bar = detect_info_bar(image.data)
            bar_source = "detected" if bar else "none"
    else:
        bar, bar_source = int(mode), "pipeline"
        if not 0 <= bar <= h - _MIN_IMAGE_ROWS:
            raise CalibrationError(
                f"image.info_bar: got {bar} px but {where} is {h} px high; allowed: 0 to "
                f"{h - _MIN_IMAGE_ROWS} (at least {_MIN_IMAGE_ROWS} image rows must remain)")
        if meta.info_bar_source == "metadata" and meta.info_bar_px != bar:
            notes.append(f"image.info_bar {bar} px overrides the metadata value {meta.info_bar_px} px")
    return Calibration(pixel_size_um=px, pixel_size_source=source, info_bar_px=bar,
                       info_bar_source=bar_source, notes=tuple(notes))
