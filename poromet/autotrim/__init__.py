"""Automatic trimming of the exterior unit: find and remove the laminated stack.

In a cross-section of a laminated (all-solid-state) battery the exterior unit
(ceramic cover, side margins) borders the power-storage unit, a stack of
parallel layers (current collectors, active material, solid electrolyte)
that run along the boundary.  :func:`trim_auto` finds, on each image side,
such a band of layers and returns the rest of the field (above the info bar)
minus a safety margin as a :class:`~poromet.records.Region`.

The detector rests on cues that hold for real laminates, not on grey levels
of one material:

* the stack is a set of **parallel bands**: along the side every strip of
  the field shows the same sequence of changes across it, while pores,
  grains and pore clusters of a homogeneous ceramic change from strip to
  strip;
* at each interface the **texture statistics change**: grey-level quantiles
  (the upper one follows the solid phase, the lower one the pores), and the
  gradient energy along and across the side and its anisotropy (pores and
  grains of a layer are drawn out along it);
* the exterior is **wide and homogeneous**, so the change into it is
  measured against a long window on the exterior side, with the linear
  trend of the exterior (shading) removed;
* the stack touches the image edge, so the stack on one side is everything
  between that edge and the **outermost** interface;
* scan-line artefacts (1-3 bright rows from charging) are removed first by a
  vertical median so they are not taken for current collectors (the
  orientation of the top and bottom sides is read without it: the median
  erases thin horizontal layers and the pores drawn out in them).

Method, per side, at reduced resolution (longest side about 512 px): the
field is cut into 8 strips along the side; each strip gives feature profiles
across the side; at every depth a ramp-free step is computed per strip, and
the strips' mean step over its standard error (the spread over strips, pooled
over depths) gives a t statistic per feature, combined as an RMS.  A side
holds a stack when some depth passes ``_ACCEPT_T`` (or, when one side stands
out against all others, a lower level); its boundary is the deepest
significant change that agrees along the side, refined per strip within a
wave tolerance and taken as the upper envelope between strips (a wavy or
slightly tilted boundary is followed on the safe side).  The margin is
applied as a Euclidean distance from the stack at full resolution.

A **pore cluster** of a heterogeneous cover ends in a texture step too, but
of the cover's own material.  An outermost interface weaker than
``_COVER_T`` is passed over for the one before it when the zone between
them (at least ``_COVER_WIDTH`` wide) has the exterior's solid grey level
and varies along the side as much as exterior windows of its width do: a
layer of the stack, its pores fine and even, is uniform along the side
(:func:`~poromet.autotrim.profiles._cover_zone`; every view of a side,
straightened or not, uses this test).

Once a side holds a stack, it is **straightened** along the interface found
(:mod:`poromet.autotrim.straighten`): the interface is tracked along the side
in fine strips (dynamic programming), every line is shifted so that it runs
straight, and the outermost interface is looked for again in that view (same
unit of spread as the original view, same deepest depth in the original
frame).  Every interface of a laminate follows the wave of the boundary, so a
weak outer layer whose step the wave had smeared over many depths (a
low-porosity electrolyte against a porous cover) is found; the boundary is
then given per line and its upper envelope taken over 1/16 of the side.

A very clear band against the opposite edge (an interface with statistic
``_SECOND_T`` in the near half of that side) is not exterior: each side's
profiles end before it, so its layers enter neither the exterior window nor
the shading slope, and bands on two opposite sides are both found.

The exterior is the **wider part** of the field: a band whose boundary lies
beyond the middle of the field is the stack's outer interface seen from the
exterior's edge.  It is dropped when the opposite side holds the stack
already, else the stack is taken on the opposite side up to that interface
(or to the end of that side's band of oriented texture, when deeper).  A
side with a very clear band against its own edge (an interface of
``_SECOND_T`` in its near half) holds the stack itself: its boundary is
looked for only up to the middle, and it is never moved to the opposite
side.  When the reading beyond the middle fails (the band it gives on the
opposite side shows no evidence of layers, see below), the deep change was the cover's own: the
side is analysed again with depths limited to ``_NEAR_HALF`` of the field
(:func:`~poromet.autotrim.detect._near_half`) and its band there is cut
when it shows layers.

A second, independent cue is the **orientation** of the texture: the layers
and the pores drawn out in them run along the boundary, so next to a stack
side the structure tensor shows gradients across the side dominating those
along it, beyond what the far part of the field shows (that difference also
removes the instrument's scan-direction bias).  The band of such oriented
texture starting at the edge (:func:`_layered_band`; its end is where the
excess falls to half the band's own level) is used three ways: a weaker
texture change lying beyond it is not taken as the outermost interface (a
pore-density gradient of the cover), a texture boundary well inside it is
moved out to its end when the zone between is itself oriented like a layer
(an inner interface was found; the cover's drawn-out pores, denser next to
the stack, are not), and when no side passes
the texture statistic but exactly one side holds such a band on most
strips, and that side shows at least some texture change
(``_ORI_SUPPORT_T``: a band of other material does; an excess made by the
far part's own, opposite orientation does not), that band is cut
(``StackSide.cue == 'orientation'``; confidence 0.5-0.8).  Next to a cover
whose pores are drawn out along the side as well the band runs on into the
cover at half the layered level and its level is diluted; it is then
delimited at the layered level itself (and must show twice that).

A **dense outer layer** (an electrolyte: few small pores, its solid of
another grey level) can end in an interface too weak for the tests above;
only the inner layers are then cut.  A weaker interface beyond the band
(``_DENSE_T``) is taken as the outer boundary when the zone between looks
like a layer of other material, not a sparser patch of the cover: uniform
along the side (over the strips it varies less than exterior windows of the
same width, ``_DENSE_UNIFORM``), dense (gradient energy below
``_DENSE_TEXTURE`` x the exterior's) and with a solid grey level (upper
quantile) ``_DENSE_SOLID`` away from the exterior's
(:func:`~poromet.autotrim.detect._dense_outer`).

A step alone is no stack: a cover whose pore density changes sharply shows
one as well.  A band is cut only with **evidence of layers**
(:mod:`poromet.autotrim.evidence`): texture inside it oriented along the
side beyond the exterior's, smooth (pore- and grain-free, uniform along
the side) layers, or an interface statistic of ``_EVIDENCE_T``.  Conversely, when no side
passes at all, the strongest side's weaker outermost interface (at least
``_OUTER_T``) is taken when the band up to it holds a current collector, a
bright dense layer whose whole grey-level distribution lies above the
exterior's solid (:func:`~poromet.autotrim.evidence._collector`).

A field in which no side shows a stack keeps the whole area above the info
bar.  ``Region.confidence`` says how clear the decision was (how far the
statistics are from the acceptance level, and whether another side shows
nearly as strong a change; a "no stack" field whose strongest side's
weaker interface bounds a band with evidence of layers that was not cut is
unsure, ``_MISSED_CONF``); :func:`poromet.measure.measure_field` flags
fields below ``trim.min_confidence``.
"""

from __future__ import annotations

import numpy as np

from ..records import Region
from ._params import SIDES, _MAX_DEPTH
from .detect import StackSide, _detect, find_stack, stack_mask  # noqa: F401  (re-exported)
from .profiles import _as_float, _steps  # noqa: F401  (_steps: used by the tests)

__all__ = ["StackSide", "find_stack", "stack_mask", "trim_auto", "SIDES"]


# -- the region -----------------------------------------------------------------

def _margin_px(settings, pixel_size_um: float | None) -> float:
    if pixel_size_um and pixel_size_um > 0:
        return float(settings.margin_um) / float(pixel_size_um)
    return float(settings.margin_px)


def trim_auto(image, *, info_bar_px: int = 0, pixel_size_um: float | None = None,
              settings=None) -> Region:
    """The exterior-unit region of an SEM field, found without a sidecar.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Raw monochrome image (uint8, uint16 or float), info bar included.
    info_bar_px : int
        Height of the data bar at the bottom; those rows are outside the region.
    pixel_size_um : float or None
        Pixel size, used to convert ``settings.margin_um`` to pixels; None:
        ``settings.margin_px`` is used.
    settings : poromet.pipeline.TrimSettings or None
        ``margin_um`` / ``margin_px``: distance kept from the stack.

    Returns
    -------
    Region
        ``source='auto'``; ``mask`` True in the exterior unit (whole area
        above the info bar when no stack is found); ``confidence`` in [0, 1];
        ``description`` names the sides removed and the margin.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> img = rng.normal(120, 10, (192, 256)).astype(np.float32)
    >>> r = trim_auto(img, info_bar_px=20)
    >>> r.description, float(r.mask[:172].mean()), bool(r.mask[172:].any())
    ('auto: no stack found, whole field above info bar', 1.0, False)
    """
    import cv2
    from ..pipeline import TrimSettings

    settings = settings if settings is not None else TrimSettings()
    a = _as_float(image)
    H, W = a.shape
    bar = int(info_bar_px)
    stacks, conf = _detect(a, bar, SIDES, _MAX_DEPTH)
    mask = np.zeros((H, W), bool)
    mask[: H - bar] = True
    warnings = []
    if not stacks:
        return Region(mask=mask, description="auto: no stack found, whole field above info bar",
                      source="auto", confidence=round(conf, 4))
    margin = _margin_px(settings, pixel_size_um)
    st_mask = stack_mask((H, W), stacks, info_bar_px=bar)
    if margin > 0:
        free = np.ascontiguousarray((~st_mask[: H - bar]).astype(np.uint8))
        dist = cv2.distanceTransform(free, cv2.DIST_L2, 5)
        mask[: H - bar] = dist > margin
    else:
        mask[: H - bar] &= ~st_mask[: H - bar]
    if len(stacks) > 1:
        warnings.append(f"auto trimming: stack found on {len(stacks)} sides "
                        f"({', '.join(s.side for s in stacks)})")
    sides = ", ".join(f"{s.side} (depth {s.depth_px:.0f} px)" for s in stacks)
    desc = f"auto: stack on {sides} removed, margin {margin:.0f} px"
    return Region(mask=mask, description=desc, source="auto", confidence=round(conf, 4),
                  warnings=tuple(warnings))
