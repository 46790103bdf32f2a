"""The SEM data bar drawn at the bottom of a field: text and a scale bar."""

from __future__ import annotations

import numpy as np

from .noise import uniform

__all__ = ["draw_bar_style", "render_info_bar"]

_DETECTORS = ("ETD", "TLD", "SE2", "InLens", "BSED", "CBS")
_NICE_UM = (0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100)


def draw_bar_style(rng: np.random.Generator) -> dict:
    """Draw the look of a data bar (polarity, separator line, text)."""
    return {
        "bar_polarity": "black" if rng.random() < 0.6 else "white",
        "bar_separator": bool(rng.random() < 0.4),
        "bar_hv_kv": float(rng.choice([2.0, 3.0, 5.0, 10.0, 15.0, 20.0])),
        "bar_wd_mm": round(uniform(rng, 3.0, 12.0), 1),
        "bar_detector": str(rng.choice(_DETECTORS)),
        "bar_scale_frac": uniform(rng, 0.08, 0.22),
        "bar_font_scale": uniform(rng, 0.8, 1.2),
        "bar_scale_left": bool(rng.random() < 0.35),
    }


def render_info_bar(style: dict, *, height: int, width: int, px_um: float,
                    top: int) -> np.ndarray:
    """Render a data bar of ``height`` x ``width`` with values 0..``top``.

    The bar holds microscope text (HV, WD, magnification, field width,
    detector) and a scale bar with its length label.  With
    ``bar_separator`` the first row is a one-pixel line of the opposite
    polarity, as some microscopes draw.
    """
    import cv2

    fg, bg = (top, 0) if style["bar_polarity"] == "black" else (0, top)
    if height <= 0:
        return np.zeros((0, width), np.uint16)
    hfw_um = width * px_um
    mag = 1.27e5 / hfw_um            # 127 mm display width convention
    mag_txt = f"{mag:,.0f} x".replace(",", " ")
    fs = max(0.3, min(height / 110.0, width / 1500.0) * 1.4 * style["bar_font_scale"])
    thick = max(1, int(round(fs * 1.6)))
    canvas = np.zeros((height, width), np.uint8)     # ink coverage 0..255
    line1 = (f"HV {style['bar_hv_kv']:.2f} kV   WD {style['bar_wd_mm']:.1f} mm   "
             f"mag {mag_txt}   HFW {hfw_um:.1f} um   det {style['bar_detector']}")
    (tw, th), _ = cv2.getTextSize(line1, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
    if tw > width * 0.62:
        fs *= width * 0.62 / tw
        thick = max(1, int(round(fs * 1.6)))
        (tw, th), _ = cv2.getTextSize(line1, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
    ytxt = int(height * 0.45 + th / 2)
    left = style.get("bar_scale_left", False)
    xtxt = int(width * (0.30 if left else 0.015))
    cv2.putText(canvas, line1, (xtxt, ytxt), cv2.FONT_HERSHEY_SIMPLEX,
                fs, 255, thick, cv2.LINE_AA)
    cv2.putText(canvas, "poromet synthetic", (xtxt, min(height - 3, ytxt + th + 8)),
                cv2.FONT_HERSHEY_SIMPLEX, fs * 0.7, 255, max(1, thick - 1), cv2.LINE_AA)
    # scale bar: a nice length close to the wanted fraction of the width
    want_um = style["bar_scale_frac"] * hfw_um
    room_px = width * (0.25 if left else 0.32)
    fits = [v for v in _NICE_UM if v / px_um <= room_px] or [min(_NICE_UM)]
    length_um = min(fits, key=lambda v: abs(np.log(v / want_um)))
    length_px = max(2, int(round(length_um / px_um)))     # true to scale
    if left:
        x0 = int(width * 0.02)
        x1 = x0 + length_px
    else:
        x1 = width - int(width * 0.02)
        x0 = x1 - length_px
    yb = int(height * 0.62)
    bh = max(2, height // 14)
    canvas[yb:yb + bh, x0:x1] = 255
    lab = f"{length_um:g} um"
    (lw, lh), _ = cv2.getTextSize(lab, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
    cv2.putText(canvas, lab, (max(0, int((x0 + x1 - lw) / 2)), max(lh + 2, yb - 6)),
                cv2.FONT_HERSHEY_SIMPLEX, fs, 255, thick, cv2.LINE_AA)
    if style["bar_separator"]:
        canvas[0, :] = 255 if style["bar_polarity"] == "black" else 128
    ink = canvas.astype(np.float64) / 255.0
    return np.rint(bg + (fg - bg) * ink).astype(np.uint16)
