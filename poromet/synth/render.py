"""From pore geometry to a secondary-electron image.

The signal model, in order:

1. solid: a gray level per layer, Voronoi grains with slightly different
   levels, faint dark grain boundaries, fine texture, sometimes a second
   solid phase 8-20 % darker than the main one (a secondary phase in a
   ceramic has some contrast, but far less than a void);
2. pores: dark walls near the rim rising to a mid-gray floor in pores wider
   than the wall (the visible pore bottom);
3. SE edge brightening: a bright halo in the solid just outside each pore,
   brighter on the side facing the detector;
4. shading: a smooth gain field (linear ramp plus low-order terms);
5. probe blur (Gaussian);
6. charging streaks (bright scan lines and line segments with a tail),
   FIB curtaining (faint vertical stripes) and scan-line gain jitter;
7. shot noise (Poisson on the expected signal at a given dose: 12-400
   electrons per pixel at full signal in "mixed", i.e. a solid-phase SNR
   from about 2.5 to 18 -- below that an SEM image is not used for
   measurement) and a little read noise;
8. digitization to 8 or 16 bits.

Only the solid/pore geometry is truth; everything here changes gray levels,
never which pixel is a pore.
"""

from __future__ import annotations

import math

import numpy as np

from .noise import low_order_field, smooth_noise, uniform, log_uniform

__all__ = ["DIFFICULTIES", "draw_look", "render_scene", "digitize"]

DIFFICULTIES = ("easy", "mixed", "hard")

# (lo, hi) per knob and difficulty; "dose" is drawn log-uniformly.
_LOOK = {
    "easy": {
        "dose": (60.0, 400.0), "blur_px": (0.5, 0.9), "shading": (0.0, 0.12),
        "streaks": (0, 0), "rim_amp": (0.05, 0.25), "floor_frac": (0.0, 0.25),
        "phase2_share": (0.0, 0.0), "row_jitter": (0.0, 0.005), "curtain": (0.0, 0.0),
    },
    "mixed": {
        "dose": (12.0, 400.0), "blur_px": (0.5, 1.5), "shading": (0.0, 0.40),
        "streaks": (0, 6), "rim_amp": (0.05, 0.55), "floor_frac": (0.0, 0.65),
        "phase2_share": (0.0, 0.35), "row_jitter": (0.0, 0.02), "curtain": (0.0, 0.08),
    },
    "hard": {
        "dose": (8.0, 30.0), "blur_px": (1.0, 1.5), "shading": (0.25, 0.40),
        "streaks": (2, 8), "rim_amp": (0.3, 0.6), "floor_frac": (0.45, 0.7),
        "phase2_share": (0.15, 0.4), "row_jitter": (0.01, 0.03), "curtain": (0.03, 0.10),
    },
}


def draw_look(rng: np.random.Generator, difficulty: str, *, px_um: float) -> dict:
    """Draw every gray-level parameter of a field for a difficulty level."""
    if difficulty not in _LOOK:
        raise ValueError(f"difficulty {difficulty!r} is not one of {DIFFICULTIES}")
    r = _LOOK[difficulty]
    streak_hi = int(r["streaks"][1])
    n_streaks = int(rng.integers(r["streaks"][0], streak_hi + 1)) if streak_hi else 0
    if difficulty == "mixed" and rng.random() < 0.5:
        n_streaks = 0
    phase2 = uniform(rng, *r["phase2_share"])
    if difficulty == "mixed" and rng.random() < 0.6:
        phase2 = 0.0
    return {
        "difficulty": difficulty,
        "solid_level": uniform(rng, 0.55, 0.80),
        "grain_um": uniform(rng, 0.8, 4.0),
        "grain_amp": uniform(rng, 0.02, 0.08),
        "grain_boundary_amp": uniform(rng, 0.01, 0.05),
        "texture_amp": uniform(rng, 0.005, 0.03),
        "phase2_share": phase2,
        "phase2_drop": uniform(rng, 0.08, 0.20),   # relative to solid_level
        "wall_level": uniform(rng, 0.02, 0.10),
        "wall_px": uniform(rng, 0.25, 0.6) / px_um,
        "floor_ramp_px": uniform(rng, 0.2, 0.8) / px_um,
        "floor_frac": uniform(rng, *r["floor_frac"]),
        "floor_texture": uniform(rng, 0.05, 0.2),
        "rim_amp": uniform(rng, *r["rim_amp"]),
        "rim_px": uniform(rng, 1.0, 3.5),
        "rim_asym": uniform(rng, 0.0, 0.7),
        "rim_dir_deg": uniform(rng, 0.0, 360.0),
        "curtain": uniform(rng, *r["curtain"]) if rng.random() < 0.5 or difficulty == "hard" else 0.0,
        "curtain_px": uniform(rng, 2.0, 8.0),
        "shading": uniform(rng, *r["shading"]),
        "blur_px": uniform(rng, *r["blur_px"]),
        "n_streaks": n_streaks,
        "row_jitter": uniform(rng, *r["row_jitter"]),
        "dose": log_uniform(rng, *r["dose"]),
        "read_noise": uniform(rng, 0.002, 0.02),
    }


def _shot_noise(rng, lam):
    """Electron counts for expected counts ``lam`` (float32).

    Exact Poisson draws where ``lam < 12``; above, the normal approximation
    ``lam + sqrt(lam) * N(0, 1)`` rounded to integers (indistinguishable at
    these counts, and about ten times faster on large images).
    """
    small = lam < 12
    out = rng.standard_normal(lam.shape, dtype=np.float32)
    out *= np.sqrt(lam)
    out += lam
    np.rint(out, out=out)
    np.maximum(out, 0, out=out)
    n_small = int(np.count_nonzero(small))
    if n_small:
        out[small] = rng.poisson(lam[small]).astype(np.float32)
    return out


def _voronoi_labels(rng, shape, cell_px):
    """Voronoi grain labels (int32, 1..n) from random seeds, via cv2."""
    import cv2

    H, W = shape
    n = max(4, int(H * W / (cell_px * cell_px)))
    img = np.ones((H, W), np.uint8)
    img[rng.integers(0, H, n), rng.integers(0, W, n)] = 0
    _, labels = cv2.distanceTransformWithLabels(img, cv2.DIST_L2, 3,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    return labels


def render_scene(rng: np.random.Generator, pores: np.ndarray, layer_map: np.ndarray,
                 layers: list[dict], look: dict, *, px_um: float) -> tuple[np.ndarray, dict]:
    """Render the expected-signal image of the area above the info bar.

    Parameters
    ----------
    pores : ndarray of bool, shape (H, W)
    layer_map : ndarray of uint8, shape (H, W)
        0 = exterior unit, k = stack layer ``layers[k - 1]``.
    layers : list of dict
        Stack layers (``level``, ``grain_amp``).
    look : dict
        From :func:`draw_look`.

    Returns
    -------
    signal : ndarray of float32, shape (H, W)
        Noisy signal, about 0 (black) to 1 (bright solid), may exceed 1.
    extra : dict
        Parameters drawn here (streak positions).
    """
    import cv2

    H, W = pores.shape
    lv = look
    # -- solid ----------------------------------------------------------------
    labels = _voronoi_labels(rng, (H, W), lv["grain_um"] / px_um)
    n_lab = int(labels.max()) + 1
    grain_off = rng.normal(0, 1, n_lab).astype(np.float32)
    phase2 = rng.random(n_lab) < lv["phase2_share"]
    level = np.empty(len(layers) + 1, np.float32)
    amp = np.empty(len(layers) + 1, np.float32)
    level[0], amp[0] = lv["solid_level"], lv["grain_amp"]
    for k, layer in enumerate(layers, start=1):
        level[k], amp[k] = layer["level"], layer["grain_amp"]
    base = level[layer_map]
    ext = layer_map == 0
    p2 = phase2[labels] & ext
    floor_level = lv["solid_level"] * lv["floor_frac"]
    drop = min(lv["phase2_drop"] * lv["solid_level"], lv["solid_level"] - floor_level - 0.12)
    if drop > 0:
        base -= np.float32(drop) * p2
    sig = base * (1.0 + amp[layer_map] * grain_off[labels])
    gb = np.zeros((H, W), bool)
    gb[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    gb[1:, :] |= labels[1:, :] != labels[:-1, :]
    sig -= np.float32(lv["grain_boundary_amp"] * lv["solid_level"]) * gb
    sig *= 1.0 + np.float32(lv["texture_amp"]) * smooth_noise(rng, (H, W), 1.2)
    del labels, gb, base

    # -- SE edge brightening in the solid just outside pores -----------------
    pu8 = pores.view(np.uint8)
    d_out = cv2.distanceTransform(1 - pu8, cv2.DIST_L2, 3)
    halo = np.exp(-(d_out - 1.0) / np.float32(lv["rim_px"]))
    halo[d_out > 6 * lv["rim_px"]] = 0
    if lv["rim_asym"] > 0:
        # rims facing the detector are brighter: weight by the edge direction
        gx = cv2.Sobel(d_out, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(d_out, cv2.CV_32F, 0, 1, ksize=3)
        t = math.radians(lv["rim_dir_deg"])
        norm = np.sqrt(gx * gx + gy * gy) + np.float32(1e-6)
        halo *= 1.0 + np.float32(lv["rim_asym"]) * (np.float32(math.cos(t)) * gx
                                                     + np.float32(math.sin(t)) * gy) / norm
        del gx, gy, norm
    sig *= 1.0 + np.float32(lv["rim_amp"]) * halo
    del d_out, halo

    # -- pore interiors: dark walls, mid-gray floor in wide pores -----------
    d_in = cv2.distanceTransform(pu8, cv2.DIST_L2, 3)
    ramp = np.clip((d_in - np.float32(lv["wall_px"])) / np.float32(lv["floor_ramp_px"]), 0, 1)
    floor = floor_level * (1.0 + np.float32(lv["floor_texture"]) * smooth_noise(rng, (H, W), 0.6 / px_um))
    pore_sig = np.float32(lv["wall_level"]) + (floor - np.float32(lv["wall_level"])) * ramp
    np.copyto(sig, pore_sig, where=pores)
    del d_in, ramp, floor, pore_sig

    # -- shading, probe blur ------------------------------------------------
    gain, shade_p = low_order_field(rng, (H, W), lv["shading"],
                                    smooth_share=uniform(rng, 0.0, 1.0))
    sig *= gain
    del gain
    sig = cv2.GaussianBlur(sig, (0, 0), sigmaX=lv["blur_px"], sigmaY=lv["blur_px"],
                           borderType=cv2.BORDER_REFLECT)

    # -- charging streaks, scan-line jitter ----------------------------------
    streaks = []
    for _ in range(lv["n_streaks"]):
        y = int(rng.integers(0, H))
        rows = int(rng.integers(1, 4))
        full = rng.random() < 0.4
        x0 = 0 if full else int(rng.integers(0, max(W - 8, 1)))
        length = W - x0 if full else int(rng.integers(min(20, W), max(W // 3, 21)))
        a = uniform(rng, 0.1, 0.6)
        tail = uniform(rng, 0.05, 0.5) * W
        xs = np.arange(min(length, W - x0), dtype=np.float32)
        prof = a * np.exp(-xs / tail)
        sig[y:y + rows, x0:x0 + xs.size] += prof[None, :]
        streaks.append([y, rows, x0, int(xs.size), round(a, 4)])
    if lv["curtain"] > 0:
        # FIB curtaining: vertical stripes fading away from the milled edge
        from .noise import wobble_1d

        prof = wobble_1d(rng, W, lv["curtain_px"]).astype(np.float32)
        fade = np.exp(-np.arange(H, dtype=np.float32) / np.float32(uniform(rng, 0.3, 2.0) * H))
        sig *= 1.0 + np.float32(lv["curtain"]) * prof[None, :] * fade[:, None]
    if lv["row_jitter"] > 0:
        sig *= 1.0 + rng.normal(0, lv["row_jitter"], (H, 1)).astype(np.float32)

    # -- shot noise and read noise ----------------------------------------------
    dose = lv["dose"]
    np.maximum(sig, 0, out=sig)
    lam = sig * np.float32(dose)
    del sig
    sig = _shot_noise(rng, lam) * np.float32(1.0 / dose)
    del lam
    sig += np.float32(lv["read_noise"]) * rng.standard_normal((H, W), dtype=np.float32)
    extra = {"streaks": streaks, "floor_level": round(float(floor_level), 5),
             "phase2_drop_applied": round(float(max(drop, 0.0)), 5), **shade_p}
    return sig, extra


def digitize(rng: np.random.Generator, signal: np.ndarray, bit_depth: int) -> tuple[np.ndarray, dict]:
    """Map signal to detector numbers: 8-bit full-ish range, 16-bit part of it.

    Returns the integer image and the drawn ``black_dn`` / ``white_dn`` (the
    numbers for signal 0 and 1; values above the dtype maximum clip).
    """
    if bit_depth == 8:
        black = uniform(rng, 0.0, 20.0)
        white = uniform(rng, 215.0, 290.0)
        top, dtype = 255, np.uint8
    elif bit_depth == 16:
        # detectors fill only part of a 16-bit range: the brightest pixel
        # lands at 15-90 % of it, never clipped
        black = uniform(rng, 0.0, 2500.0)
        peak = uniform(rng, 0.15, 0.9) * 65535
        white = black + (peak - black) / max(float(signal.max()), 1.0)
        top, dtype = 65535, np.uint16
    else:
        raise ValueError(f"bit_depth {bit_depth!r} is not one of (8, 16)")
    out = signal * np.float32(white - black) + np.float32(black + 0.5)
    np.clip(out, 0, top, out=out)
    img = out.astype(dtype)
    return img, {"black_dn": round(black, 3), "white_dn": round(white, 3)}
