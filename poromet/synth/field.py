"""One synthetic SEM field with its exact truth: :func:`generate_field`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field as dc_field

import numpy as np

from .noise import log_uniform, uniform

__all__ = ["SynthField", "generate_field"]


@dataclass(frozen=True, eq=False)
class SynthField:
    """A synthetic cross-section SEM field and its truth.

    Attributes
    ----------
    image : ndarray of uint8 or uint16, shape (H, W)
        The SEM image, info bar included.
    pores : ndarray of bool, shape (H, W)
        Truth: True for void pixels (the pore geometry before blur and noise;
        bright rims are solid, visible pore bottoms are pore).  Covers the
        exterior unit and the stack layers; False in the info bar.
    exterior : ndarray of bool, shape (H, W)
        Truth: the exterior unit (False in the stack band and the info bar).
    info_bar_px : int
        Height of the data bar at the bottom (0: none).
    pixel_size_um : float
        Pixel edge length in micrometres.
    rect : tuple of int
        ``(x, y, w, h)``: a rectangle inside the exterior unit, above the bar.
    porosity_rect, porosity_exterior : float
        ``pores[R].sum() / R.sum()`` for the rectangle and the exterior unit.
    stack_side : {None, 'top', 'bottom', 'left', 'right'}
        Where the laminated stack band lies.
    params : dict
        Every drawn parameter (JSON-able), including ``seed``.
    """

    image: np.ndarray
    pores: np.ndarray
    exterior: np.ndarray
    info_bar_px: int
    pixel_size_um: float
    rect: tuple[int, int, int, int]
    porosity_rect: float
    porosity_exterior: float
    stack_side: str | None
    params: dict = dc_field(default_factory=dict)

    @property
    def bit_depth(self) -> int:
        """8 or 16."""
        return 8 * self.image.dtype.itemsize

    @property
    def rect_mask(self) -> np.ndarray:
        """Boolean mask of :attr:`rect`, shape (H, W)."""
        x, y, w, h = self.rect
        m = np.zeros(self.image.shape, bool)
        m[y:y + h, x:x + w] = True
        return m

    def counts(self, region: np.ndarray) -> tuple[int, int]:
        """``(void, region)`` integer pixel counts of the truth inside ``region``."""
        region = np.asarray(region, bool)
        return int(np.count_nonzero(self.pores & region)), int(np.count_nonzero(region))


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return round(float(v), 6)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _check(name, value, allowed):
    from ..errors import PorometError

    raise PorometError(f"generate_field: {name}={value!r} is not allowed; use {allowed}")


def _bar_height(rng, info_bar, H):
    """Data-bar height; always consumes the same draws, whatever ``info_bar`` is."""
    none = rng.random() < 0.2
    drawn = int(round(uniform(rng, 40, 120) * min(max(H / 768, 0.6), 4.0)))
    if info_bar is None:
        return 0 if none else drawn
    if isinstance(info_bar, (bool, np.bool_)):
        return drawn if info_bar else 0
    if isinstance(info_bar, (int, np.integer)) and 0 <= int(info_bar) <= H // 2:
        return int(info_bar)
    _check("info_bar", info_bar, f"None, False, True or an int height in 0..{H // 2}")


def _stack_side(rng, stack):
    """Stack side; always consumes the same draws, whatever ``stack`` is."""
    from .laminate import SIDES

    present = rng.random() < 0.3
    drawn = str(SIDES[int(rng.integers(len(SIDES)))])
    if stack is None:
        return drawn if present else None
    if stack is False or stack == "none":
        return None
    if stack is True:
        return drawn
    if stack in SIDES:
        return str(stack)
    _check("stack", stack, f"None, True, False, 'none' or one of {SIDES}")


def _rect(rng, exterior, side):
    """A large rectangle inside the exterior unit, with a small random inset."""
    H, W = exterior.shape
    if side in ("top", "bottom"):
        ok = np.flatnonzero(exterior.all(axis=1))
        y0, y1, x0, x1 = int(ok.min()), int(ok.max()) + 1, 0, W
    elif side in ("left", "right"):
        ok = np.flatnonzero(exterior.all(axis=0))
        y0, y1, x0, x1 = 0, H, int(ok.min()), int(ok.max()) + 1
    else:
        y0, y1, x0, x1 = 0, H, 0, W
    ins = [int(rng.integers(0, max(1, int(0.03 * d)) + 1)) for d in (x1 - x0, y1 - y0) * 2]
    x0, x1 = x0 + ins[0], x1 - ins[2]
    y0, y1 = y0 + ins[1], y1 - ins[3]
    return x0, y0, x1 - x0, y1 - y0


def generate_field(seed, *, width: int = 1024, height: int = 768,
                   porosity: float | None = None, bit_depth: int | None = None,
                   stack=None, info_bar=None, pixel_size_um: float | None = None,
                   difficulty: str = "mixed") -> SynthField:
    """Generate one synthetic cross-section SEM field with exactly known porosity.

    Parameters
    ----------
    seed : int
        All randomness comes from ``np.random.default_rng(seed)``: the same
        seed and options give the same image, bit for bit.
    width, height : int
        Image size in pixels, info bar included (at least 64 x 64).
    porosity : float or None
        Target pore fraction of the exterior unit, in [0, 0.9]; None draws
        one from [0.02, 0.55].  It is met to the pixel in the exterior unit;
        ``porosity_rect`` differs slightly.
    bit_depth : {None, 8, 16}
        None: 8 (70 %) or 16 (30 %).  16-bit images use part of the range.
    stack : {None, True, False, 'none', 'top', 'bottom', 'left', 'right'}
        The laminated stack band: None draws (30 % a band on a random side).
    info_bar : None, bool or int
        Data bar height in pixels; None draws (20 % no bar, else 40-120 px
        scaled with the image height); True draws a height; False/0: none.
    pixel_size_um : float or None
        None draws log-uniformly from [0.06, 0.16] um.
    difficulty : {'easy', 'mixed', 'hard'}
        Range of the gray-level artefacts (noise dose, shading, rims, pore
        floors, streaks, second phase).

    Returns
    -------
    SynthField

    Examples
    --------
    >>> f = generate_field(3, width=256, height=192, porosity=0.2, stack=False)
    >>> f.image.shape
    (192, 256)
    >>> round(f.porosity_exterior, 3)
    0.2
    >>> x, y, w, h = f.rect
    >>> bool(f.pores[y:y + h, x:x + w].sum() / (w * h) == f.porosity_rect)
    True
    """
    from .infobar import draw_bar_style, render_info_bar
    from .laminate import stack_layers
    from .pores import layer_pores, pore_mask
    from .render import DIFFICULTIES, digitize, draw_look, render_scene

    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        _check("seed", seed, "a non-negative int")
    W, H = int(width), int(height)
    if W < 64 or H < 64:
        _check("width x height", f"{width}x{height}", "at least 64 x 64")
    if difficulty not in DIFFICULTIES:
        _check("difficulty", difficulty, f"one of {DIFFICULTIES}")
    if porosity is not None and not (0.0 <= float(porosity) <= 0.9):
        _check("porosity", porosity, "None or a fraction in [0, 0.9]")
    if bit_depth not in (None, 8, 16):
        _check("bit_depth", bit_depth, "None, 8 or 16")
    if pixel_size_um is not None and not (1e-4 <= float(pixel_size_um) <= 100):
        _check("pixel_size_um", pixel_size_um, "None or a size in um in [1e-4, 100]")

    rng = np.random.default_rng(int(seed))
    # draw the scalar choices first, in a fixed order
    # (each draw is made whether or not the option is given, so a field
    # remade from its recorded settings is identical)
    drawn = uniform(rng, 0.02, 0.55)
    target = float(porosity) if porosity is not None else drawn
    drawn = 8 if rng.random() < 0.7 else 16
    bits = int(bit_depth) if bit_depth is not None else drawn
    drawn = log_uniform(rng, 0.06, 0.16)
    px_um = float(pixel_size_um) if pixel_size_um is not None else drawn
    bar = _bar_height(rng, info_bar, H)
    side = _stack_side(rng, stack)
    bar_style = draw_bar_style(rng)
    look = draw_look(rng, difficulty, px_um=px_um)

    Hs = H - bar
    if side is not None:
        layer_map, layers, stack_p = stack_layers(rng, (Hs, W), side, px_um=px_um)
    else:
        layer_map, layers, stack_p = np.zeros((Hs, W), np.uint8), [], {}
    ext_s = layer_map == 0
    pores_s, pore_p = pore_mask(rng, (Hs, W), ext_s, target, px_um=px_um)
    if layers:
        along = 2.5 if side in ("top", "bottom") else 0.4
        pores_s |= layer_pores(rng, layer_map, {k + 1: l["porosity"] for k, l in enumerate(layers)},
                               px_um=px_um, aspect=along)
    signal, render_p = render_scene(rng, pores_s, layer_map, layers, look, px_um=px_um)
    img_s, dig_p = digitize(rng, signal, bits)
    del signal

    dtype = np.uint8 if bits == 8 else np.uint16
    image = np.empty((H, W), dtype)
    image[:Hs] = img_s
    if bar:
        image[Hs:] = render_info_bar(bar_style, height=bar, width=W, px_um=px_um,
                                     top=int(np.iinfo(dtype).max)).astype(dtype)
    pores = np.zeros((H, W), bool)
    pores[:Hs] = pores_s
    exterior = np.zeros((H, W), bool)
    exterior[:Hs] = ext_s
    rect = _rect(rng, exterior[:Hs], side)
    x, y, w, h = rect
    void_r = int(np.count_nonzero(pores[y:y + h, x:x + w]))
    void_e = int(np.count_nonzero(pores & exterior))
    n_e = int(np.count_nonzero(exterior))
    params = {
        "seed": int(seed), "width": W, "height": H, "difficulty": difficulty,
        "porosity_target": target, "bit_depth": bits, "pixel_size_um": px_um,
        "info_bar_px": bar, "stack_side": side,
        "rect": list(rect), "void_px_rect": void_r, "region_px_rect": w * h,
        "void_px_exterior": void_e, "region_px_exterior": n_e,
        **bar_style, **look, **stack_p, **pore_p, **render_p, **dig_p,
    }
    return SynthField(
        image=image, pores=pores, exterior=exterior, info_bar_px=bar,
        pixel_size_um=px_um, rect=tuple(int(v) for v in rect),
        porosity_rect=void_r / (w * h), porosity_exterior=void_e / n_e if n_e else math.nan,
        stack_side=side, params=_jsonable(params),
    )
