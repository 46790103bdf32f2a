"""Confidence of the automatic trimming decision (:func:`_confidence`)."""

from __future__ import annotations

import numpy as np

from ._params import (_ACCEPT_COVER, _ACCEPT_T, _CONSISTENT, _MISSED_CONF, _ORI_LAYERED,
                      _OUTER_T, _SHALLOW)


def _confidence(stacks: list[StackSide], tmax: dict, shape=None, *,
                missed: bool = False) -> float:
    """Map the decision's clarity to [0, 1].

    ``tmax`` holds, per side examined, the largest interface statistic found
    on it.  Without a stack: how far the strongest candidate stayed below
    acceptance (a field where something almost passed as a stack is unsure:
    at the acceptance level the confidence is 0.45).  With a stack: how far
    the side's strongest interface is above acceptance and how clear the
    outermost one is along the side; if another side shows nearly as strong
    a change, the choice is unsure (at most 0.45).  An outermost interface
    weaker than the acceptance level (taken beyond a strong one) caps the
    confidence at 0.5-0.7, and at 0.45 when it lies deeper than 45 % of the
    field (``shape``: the area above the info bar): such a cut may be a pore
    cluster of the exterior.  A band thinner than ``_SHALLOW`` of the field
    is unsure too (0.45): its outer layers may have been missed.
    ``missed``: no stack was cut, but the strongest side's weaker interface
    bounds a band that shows layers (oriented texture or smooth layers,
    :func:`~poromet.autotrim.evidence._layered`); the field is unsure
    (at most ``_MISSED_CONF``): a stack may have been left in (also set
    when a band on smooth layers alone with an uneven step was not cut).
    """
    if not tmax:
        return 1.0
    if not stacks:
        t = max(tmax.values())
        conf = float(np.clip(1.0 - 0.55 * (t - _OUTER_T) / (_ACCEPT_T - _OUTER_T), 0.3, 1.0))
        return min(conf, _MISSED_CONF) if missed else conf
    c = []
    for st in stacks:
        if st.cue == "orientation":
            # found on orientation alone (strength: the band's excess)
            lvl = np.clip((st.strength - _ORI_LAYERED) / _ORI_LAYERED, 0, 1)
            c.append(0.5 + 0.3 * float(lvl) * st.coverage)
            continue
        t = tmax.get(st.side, st.strength)
        clarity = np.clip((t - _ACCEPT_T) / (1.5 * _ACCEPT_T), 0, 1)
        cover = np.clip((st.coverage - _ACCEPT_COVER) / (1 - _ACCEPT_COVER), 0, 1)
        cons = np.clip((st.consistency - _CONSISTENT) / (1 - _CONSISTENT), 0, 1)
        ci = 0.45 + 0.3 * clarity + 0.1 * cover + 0.15 * cons
        if shape is not None:
            across = shape[0] if st.side in ("top", "bottom") else shape[1]
            if st.depth_px < _SHALLOW * across:
                # only a thin band at the very edge: its outer layers may
                # have been missed (they are often weak against the exterior)
                ci = min(ci, 0.45)
        if st.strength < _ACCEPT_T:
            ci = min(ci, 0.5 + 0.2 * float(np.clip((st.strength - _OUTER_T)
                                                   / (_ACCEPT_T - _OUTER_T), 0, 1)))
            if shape is not None:
                across = shape[0] if st.side in ("top", "bottom") else shape[1]
                if st.depth_px > 0.45 * across:
                    ci = min(ci, 0.45)
        c.append(ci)
    conf = float(min(c))
    kept = {st.side for st in stacks}
    others = [t for side, t in tmax.items() if side not in kept]
    main = max(tmax.get(st.side, st.strength) for st in stacks)
    texture = any(st.cue != "orientation" for st in stacks)
    if texture and others and max(others) >= max(0.8 * main, _OUTER_T + 1.0):
        conf = min(conf, 0.45)
    return conf
