"""The laminated electrode stack: a band of parallel layers on one side.

In a cross-section of an all-solid-state cell the measured layer (the
exterior unit) borders other layers of the stack: current collectors
(bright, dense, thin), active-material layers, electrolyte layers, each
with its own gray level and pores.  The band lies on one side of the field
(top, bottom, left or right), its boundary is wavy and a little tilted, and
every interface inside it follows the boundary with its own wobble.
"""

from __future__ import annotations

import numpy as np

from .noise import uniform, wobble_1d

__all__ = ["SIDES", "LAYER_KINDS", "stack_layers"]

SIDES = ("top", "bottom", "left", "right")

#: Layer kinds: gray level (signal units), pore fraction, thickness in um.
LAYER_KINDS = {
    "collector": {"level": (0.88, 1.05), "porosity": (0.0, 0.0), "thick_um": (1.0, 3.0),
                  "grain_amp": (0.0, 0.01)},
    "electrolyte": {"level": (0.38, 0.58), "porosity": (0.01, 0.12), "thick_um": (3.0, 14.0),
                    "grain_amp": (0.02, 0.05)},
    "active": {"level": (0.62, 0.90), "porosity": (0.08, 0.35), "thick_um": (5.0, 25.0),
               "grain_amp": (0.04, 0.10)},
    "anode": {"level": (0.28, 0.48), "porosity": (0.03, 0.30), "thick_um": (5.0, 25.0),
              "grain_amp": (0.03, 0.07)},
    "resin": {"level": (0.15, 0.30), "porosity": (0.0, 0.02), "thick_um": (2.0, 10.0),
              "grain_amp": (0.0, 0.01)},
}

_SEQUENCES = (
    ("electrolyte", "active", "collector", "active"),
    ("active", "collector", "active"),
    ("electrolyte", "anode", "collector", "anode"),
    ("collector", "active", "electrolyte"),
    ("electrolyte", "collector", "resin"),
    ("anode", "collector", "anode", "electrolyte"),
)


def stack_layers(rng: np.random.Generator, shape: tuple[int, int], side: str, *,
                 px_um: float) -> tuple[np.ndarray, list[dict], dict]:
    """Draw the layer map of a laminated stack band.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (H, W)
        The image area above the info bar.
    side : {'top', 'bottom', 'left', 'right'}
        The image edge the band lies against.
    px_um : float
        Pixel size in micrometres.

    Returns
    -------
    layer_map : ndarray of uint8, shape (H, W)
        0 in the exterior unit, 1 for the layer touching it, 2, ... towards
        the image edge.
    layers : list of dict
        For layer 1, 2, ...: ``kind``, ``level``, ``porosity``, ``grain_amp``,
        ``thickness_px`` (the last layer runs to the edge).
    params : dict
        The band geometry (JSON-able).
    """
    if side not in SIDES:
        raise ValueError(f"stack side {side!r} is not one of {SIDES}")
    H, W = shape
    along = W if side in ("top", "bottom") else H
    across = H if side in ("top", "bottom") else W
    depth = uniform(rng, 0.12, 0.35) * across
    wave_amp = uniform(rng, 0.0, 0.035) * across
    wave_sigma = uniform(rng, 0.04, 0.25) * along
    tilt = uniform(rng, -0.025, 0.025)
    t = np.arange(along, dtype=np.float64)
    boundary = (depth + wave_amp * wobble_1d(rng, along, wave_sigma)
                + tilt * (t - along / 2))
    boundary = np.clip(boundary, 8.0, across * 0.6)

    seq = list(_SEQUENCES[int(rng.integers(len(_SEQUENCES)))])
    # thicknesses: relative to the kinds' usual thicknesses, scaled so that
    # all layers of the sequence span the band (the last one is cut by the edge)
    raw = [uniform(rng, *LAYER_KINDS[k]["thick_um"]) for k in seq]
    far = float(boundary.max()) + 1
    scale = far * uniform(rng, 1.1, 1.5) / sum(raw)
    layers = []
    interfaces = []            # depth of each interface below the boundary
    cum = 0.0
    for i, (kind, r) in enumerate(zip(seq, raw)):
        spec = LAYER_KINDS[kind]
        thick = max(r * scale, 6.0)
        layers.append({
            "kind": kind,
            "level": round(uniform(rng, *spec["level"]), 4),
            "porosity": round(uniform(rng, *spec["porosity"]), 4),
            "grain_amp": round(uniform(rng, *spec["grain_amp"]), 4),
            "thickness_px": round(thick, 2),
        })
        cum += thick
        if cum >= far or i == len(seq) - 1:
            break
        wob = uniform(rng, 0.0, 0.6 / px_um) * wobble_1d(rng, along, uniform(rng, 0.03, 0.2) * along)
        interfaces.append(boundary - cum + wob)
    # keep interfaces ordered (each at least 3 px nearer the edge than the previous)
    prev = boundary
    for k in range(len(interfaces)):
        interfaces[k] = np.minimum(interfaces[k], prev - 3.0)
        prev = interfaces[k]

    # s: distance from the image edge; the band is s < boundary(t)
    if side in ("top", "bottom"):
        s = np.arange(H, dtype=np.float32)
        s = s if side == "top" else s[::-1].copy()
        s = s[:, None]
        bnd = boundary.astype(np.float32)[None, :]
        ifs = [v.astype(np.float32)[None, :] for v in interfaces]
    else:
        s = np.arange(W, dtype=np.float32)
        s = s if side == "left" else s[::-1].copy()
        s = s[None, :]
        bnd = boundary.astype(np.float32)[:, None]
        ifs = [v.astype(np.float32)[:, None] for v in interfaces]
    inside = s < bnd
    layer_map = inside.astype(np.uint8)
    for v in ifs:
        layer_map += (s < v).astype(np.uint8)
    layer_map = np.broadcast_to(layer_map, (H, W)).copy()
    params = {
        "stack_side": side,
        "stack_depth_px": round(float(depth), 2),
        "stack_wave_amp_px": round(float(wave_amp), 2),
        "stack_wave_sigma_px": round(float(wave_sigma), 2),
        "stack_tilt": round(float(tilt), 5),
        "stack_boundary_max_px": round(float(boundary.max()), 2),
        "stack_layers": layers,
    }
    return layer_map, layers, params
