"""Reading region files: ``.roi.json``, mask images, ImageJ ``.roi``/``.zip``.

The formats and the pixel convention are described in :mod:`poromet.roi`;
:func:`poromet.roi.trim_region` calls :func:`_from_path` here for a region
given as a file.  Each reader returns ``(mask, description, clip note)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import RoiError
from .roi import _clip_note, _fmt, _from_dict, _shape_polygons, _shape_rect

__all__: list[str] = []

_MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
_ROI_FORMATS = ("a .roi.json file", "a .mask.png file", "an ImageJ .roi (or RoiManager .zip) file")


def _read_json(path: Path, shape):
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text, parse_constant=lambda c: float(c))
    except (OSError, UnicodeDecodeError) as exc:
        raise RoiError(f"{path}: cannot read region file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RoiError(f"{path}: not valid JSON ({exc}); allowed: "
                       '{"rect": [x, y, w, h]} or {"polygon": [[x, y], ...]}') from None
    if not isinstance(data, dict):
        raise RoiError(f"{path}: top level is {type(data).__name__}; allowed: "
                       '{"rect": [x, y, w, h]} or {"polygon": [[x, y], ...]}')
    return _from_dict(data, shape, str(path), f" from {path.name}")


def _read_mask(path: Path, shape):
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile
            arr = tifffile.imread(path)
        else:
            import cv2
            buf = np.fromfile(path, dtype=np.uint8)
            arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
            if arr is None:
                raise ValueError("not a readable image")
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the file's fault
        raise RoiError(f"{path}: cannot read mask image: {exc}") from None
    arr = np.asarray(arr)
    # cv2 gives BGR(A): colour order does not matter, alpha stays last
    if arr.ndim == 3 and arr.shape[2] == 4:
        region = arr[..., :3].any(axis=2) & (arr[..., 3] > 0)
    elif arr.ndim == 3 and arr.shape[2] == 2:
        region = (arr[..., 0] != 0) & (arr[..., 1] > 0)
    elif arr.ndim == 3 and arr.shape[2] == 3:
        region = arr.any(axis=2)
    elif arr.ndim == 2:
        region = arr != 0
    else:
        raise RoiError(f"{path}: mask has shape {arr.shape}; allowed: a single-page 2-D image")
    if region.shape != tuple(shape):
        hint = ""
        if region.shape[1] == shape[1] and region.shape[0] < shape[0]:
            hint = (f" (it is {shape[0] - region.shape[0]} rows shorter: was it drawn on the image "
                    "without its info bar? pad it with zero rows)")
        raise RoiError(f"{path}: mask is {region.shape[1]}x{region.shape[0]} (WxH) but the image is "
                       f"{shape[1]}x{shape[0]}; allowed: a mask of exactly the image's size{hint}")
    return region, f"mask from {path.name}", None


_AREA_TYPES = {"RECT": "rect", "OVAL": "oval", "POLYGON": "polygon",
               "FREEHAND": "freehand", "TRACED": "traced"}


def _imagej_shape(roi, shape, where: str, origin: str):
    """Mask of one ImageJ ROI (an ``roifile.ImagejRoi``)."""
    from roifile import ROI_SUBTYPE, ROI_TYPE

    rtype = ROI_TYPE(roi.roitype)
    tname = rtype.name.lower() if rtype.name != "UNKNOWN" else f"type {int(roi.roitype)}"
    allowed = "allowed: rect, oval, polygon, freehand, traced or composite (area) ROIs"
    name = f" {roi.name!r}" if getattr(roi, "name", "") else ""
    if roi.composite:
        polys = [p for p in roi.coordinates(multi=True) if len(p) >= 3]
        if not polys:
            raise RoiError(f"{where}: ImageJ composite ROI{name} has no outline; {allowed}")
        return _shape_polygons(polys, shape, "ImageJ composite", origin)
    if rtype.name not in _AREA_TYPES or roi.subtype in (ROI_SUBTYPE.TEXT, ROI_SUBTYPE.IMAGE):
        kind = ROI_SUBTYPE(roi.subtype).name.lower() if roi.subtype in (
            ROI_SUBTYPE.TEXT, ROI_SUBTYPE.IMAGE) else tname
        raise RoiError(f"{where}: ImageJ ROI{name} is a {kind} ROI, which has no area; {allowed}")
    label = f"ImageJ {_AREA_TYPES[rtype.name]}"
    if rtype in (ROI_TYPE.RECT, ROI_TYPE.OVAL):
        if roi.subpixelrect and roi.widthd > 0:
            box = (roi.xd, roi.yd, roi.widthd, roi.heightd)
        else:
            box = (roi.left, roi.top, roi.right - roi.left, roi.bottom - roi.top)
        if box[2] <= 0 or box[3] <= 0:
            raise RoiError(f"{where}: ImageJ {tname} ROI{name} has size {box[2]}x{box[3]}; "
                           "allowed: width and height > 0")
        if rtype == ROI_TYPE.RECT and roi.rounded_rect_arc_size > 0:
            return _rounded_rect(box, roi.rounded_rect_arc_size, shape, origin)
        return _shape_rect(box, shape, label, origin)
    coords = np.asarray(roi.coordinates(), float)
    if len(coords) < 3:
        raise RoiError(f"{where}: ImageJ {tname} ROI{name} has {len(coords)} vertices; "
                       "allowed: at least 3")
    return _shape_polygons([coords], shape, label, origin)


def _rounded_rect(box, arc: float, shape, origin: str):
    """ImageJ rounded rectangle: corners are quarter ellipses of diameter ``arc``."""
    x, y, w, h = box
    rx, ry = min(arc, w) / 2.0, min(arc, h) / 2.0
    t = np.linspace(0, np.pi / 2, 16)
    pts = []
    for cx, cy, a0 in ((x + w - rx, y + ry, -np.pi / 2), (x + w - rx, y + h - ry, 0),
                       (x + rx, y + h - ry, np.pi / 2), (x + rx, y + ry, np.pi)):
        pts.append(np.c_[cx + rx * np.cos(a0 + t), cy + ry * np.sin(a0 + t)])
    mask, _, note = _shape_polygons([np.concatenate(pts)], shape, "", "")
    desc = f"ImageJ rounded rect {_fmt(x)},{_fmt(y)},{_fmt(w)},{_fmt(h)}{origin}"
    return mask, desc, note and _clip_note(desc, shape, "; clipped to the image")


def _read_imagej(path: Path, shape):
    import roifile

    try:
        rois = roifile.roiread(path)
    except Exception as exc:  # noqa: BLE001 - roifile raises ValueError/struct.error/...
        raise RoiError(f"{path}: not a readable ImageJ ROI: {exc}; allowed: {', '.join(_ROI_FORMATS)}") \
            from None
    origin = f" from {path.name}"
    if not isinstance(rois, list):
        return _imagej_shape(rois, shape, str(path), origin)
    if not rois:
        raise RoiError(f"{path}: holds no ImageJ ROI")
    mask = np.zeros(shape, bool)
    notes = []
    for roi in rois:
        m, _, note = _imagej_shape(roi, shape, str(path), origin)
        mask |= m
        if note:
            notes.append(note)
    desc = f"union of {len(rois)} ImageJ ROIs{origin}"
    note = f"{desc}: part extends beyond the {shape[1]}x{shape[0]} image; clipped" if notes else None
    return mask, desc, note


def _from_path(path: Path, shape):
    if not path.is_file():
        raise RoiError(f"{path}: region file not found; allowed: {', '.join(_ROI_FORMATS)}")
    name = path.name.lower()
    if name.endswith(".json"):
        return _read_json(path, shape)
    if name.endswith((".roi", ".zip")):
        return _read_imagej(path, shape)
    if name.endswith(_MASK_SUFFIXES):
        return _read_mask(path, shape)
    raise RoiError(f"{path}: unknown region file type {path.suffix!r}; "
                   f"allowed: {', '.join(_ROI_FORMATS)}")
