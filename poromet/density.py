"""Density side of porosity: apparent and true density, filling rate.

Pure functions on plain numbers; every unit is in the argument or function
name.  The relations (FIELD-NOTES "Density side"; the all-solid-state
battery patents' equation (2))::

    apparent density   rho_a = mass / volume                          [g/cm³]
                       from coating weight: (mg/cm² / 1000) / (µm × 1e-4)
    true density       1/rho_t = Σ w_i / rho_i   (mass fractions w_i)
                       rho_t   = Σ v_i rho_i     (volume fractions v_i)
    filling rate (%)   = rho_a / rho_t × 100
    porosity (%)       = 100 − filling rate (%)
    relative density   = rho_a / rho_t               (a fraction)
    rate of decrease in porosity (%) = (before − after) / before × 100

The patent text as extracted puts the "× 100" of the rate of decrease in the
denominator; that is an extraction error: a rate of 95.6 % for 45 % → 2 %
porosity (the patent's Table 3) needs the form above.

Zero, negative, non-finite and non-numeric inputs raise
:class:`~poromet.errors.DensityError` naming the argument, the value given
and what is allowed.  A filling rate above 100 % (apparent density above the
true density) is returned as computed: it means the mass, the geometry or
the true density is wrong, and the samples sheet reports it as a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

from .errors import DensityError

__all__ = [
    "density_from_coating_weight",
    "density_from_area",
    "density_from_pellet",
    "density_from_volume",
    "true_density_from_mass_fractions",
    "true_density_from_volume_fractions",
    "xray_density_g_cm3",
    "filling_rate_pct",
    "porosity_from_filling_rate_pct",
    "relative_density",
    "rate_of_decrease_pct",
    "normalise_parts",
]

#: Avogadro constant, 1/mol (exact, SI 2019).
AVOGADRO = 6.02214076e23


def _number(name: str, value, *, positive: bool = True, allow_zero: bool = False) -> float:
    """Check one input and return it as a float (DensityError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise DensityError(
            f"{name}: got {value!r} ({type(value).__name__}); allowed: a number"
        )
    x = float(value)
    if not math.isfinite(x):
        raise DensityError(f"{name}: got {value!r}; allowed: a finite number")
    if positive and (x < 0 or (x == 0 and not allow_zero)):
        rel = ">= 0" if allow_zero else "> 0"
        raise DensityError(f"{name}: got {value!r}; allowed: a number {rel}")
    return x


# -- apparent density --------------------------------------------------------


def density_from_coating_weight(coating_weight_mg_cm2: float, thickness_um: float) -> float:
    """Apparent density of a coated layer from its coating weight and thickness.

    Parameters
    ----------
    coating_weight_mg_cm2 : float
        Mass per area of the layer (without current collector), mg/cm².
    thickness_um : float
        Layer thickness, µm.

    Returns
    -------
    float
        Apparent density in g/cm³: ``(mg/cm² / 1000) / (µm × 1e-4)``.

    Examples
    --------
    >>> density_from_coating_weight(27.0, 80.0)
    3.375
    """
    w = _number("coating_weight_mg_cm2", coating_weight_mg_cm2)
    t = _number("thickness_um", thickness_um)
    return (w / 1000.0) / (t * 1e-4)


def density_from_area(mass_mg: float, area_cm2: float, thickness_um: float) -> float:
    """Apparent density from mass, area and thickness (a punched disc or sheet).

    Parameters
    ----------
    mass_mg : float
        Mass of the layer, mg.
    area_cm2 : float
        Area of the piece, cm².
    thickness_um : float
        Thickness, µm.

    Returns
    -------
    float
        Apparent density in g/cm³.

    Examples
    --------
    >>> round(density_from_area(54.0, 2.0, 80.0), 6)
    3.375
    """
    m = _number("mass_mg", mass_mg)
    a = _number("area_cm2", area_cm2)
    t = _number("thickness_um", thickness_um)
    return (m / 1000.0) / (a * t * 1e-4)


def density_from_pellet(mass_mg: float, diameter_mm: float, thickness_um: float) -> float:
    """Apparent density of a cylindrical pellet.

    Parameters
    ----------
    mass_mg : float
        Pellet mass, mg.
    diameter_mm : float
        Pellet diameter, mm (area = π d² / 4).
    thickness_um : float
        Pellet thickness, µm (1 mm = 1000 µm).

    Returns
    -------
    float
        Apparent density in g/cm³.

    Examples
    --------
    A 10 mm pellet, 500 µm thick, weighing 100 mg:

    >>> round(density_from_pellet(100.0, 10.0, 500.0), 4)
    2.5465
    """
    m = _number("mass_mg", mass_mg)
    d = _number("diameter_mm", diameter_mm)
    t = _number("thickness_um", thickness_um)
    area_cm2 = math.pi * (d / 10.0) ** 2 / 4.0
    return (m / 1000.0) / (area_cm2 * t * 1e-4)


def density_from_volume(mass_mg: float, volume_cm3: float) -> float:
    """Apparent density from mass and (envelope) volume.

    Examples
    --------
    >>> density_from_volume(2500.0, 1.0)
    2.5
    """
    m = _number("mass_mg", mass_mg)
    v = _number("volume_cm3", volume_cm3)
    return (m / 1000.0) / v


# -- true density --------------------------------------------------------------


def normalise_parts(parts: Mapping[str, float], *, name: str = "parts") -> dict[str, float]:
    """Parts (by mass or volume) scaled to fractions summing to 1.

    Zero parts are allowed (and kept); negative or non-finite parts, an
    empty mapping, or parts summing to zero raise :class:`DensityError`.

    Examples
    --------
    >>> normalise_parts({"NCM622": 80, "SE": 17, "CB": 2, "SBR": 1})["NCM622"]
    0.8
    """
    if not isinstance(parts, Mapping) or not parts:
        raise DensityError(f"{name}: got {parts!r}; allowed: at least one component with parts > 0")
    checked = {k: _number(f"{name}[{k!r}]", v, allow_zero=True) for k, v in parts.items()}
    total = math.fsum(checked.values())
    if total <= 0:
        raise DensityError(f"{name}: parts sum to 0; allowed: at least one component with parts > 0")
    return {k: v / total for k, v in checked.items()}


def _check_keys(parts: Mapping, densities: Mapping) -> None:
    missing = [k for k in parts if k not in densities]
    if missing:
        raise DensityError(
            f"true density of {', '.join(repr(k) for k in missing)} not given; "
            f"known: {', '.join(repr(k) for k in densities) or '(none)'}"
        )


def true_density_from_mass_fractions(
    parts: Mapping[str, float], densities_g_cm3: Mapping[str, float]
) -> float:
    """True density of a mixture from parts by mass: ``1/ρ = Σ w_i / ρ_i``.

    Parameters
    ----------
    parts : mapping of str to float
        Parts by mass of each component (normalised here, so ``80:17:2:1``
        and ``0.8:0.17:0.02:0.01`` are the same mixture).
    densities_g_cm3 : mapping of str to float
        True density of each component, g/cm³ (may hold more components).

    Returns
    -------
    float
        True density of the mixture, g/cm³ (between the smallest and the
        largest component density).

    Examples
    --------
    Equal masses of densities 1 and 3: ``1/ρ = 0.5/1 + 0.5/3``.

    >>> true_density_from_mass_fractions({"a": 1, "b": 1}, {"a": 1.0, "b": 3.0})
    1.5
    """
    w = normalise_parts(parts, name="mass parts")
    _check_keys(w, densities_g_cm3)
    rho = {k: _number(f"true density of {k!r} (g/cm³)", densities_g_cm3[k]) for k in w}
    return 1.0 / math.fsum(w[k] / rho[k] for k in w)


def true_density_from_volume_fractions(
    parts: Mapping[str, float], densities_g_cm3: Mapping[str, float]
) -> float:
    """True density of a mixture from parts by volume: ``ρ = Σ v_i ρ_i``.

    Examples
    --------
    >>> true_density_from_volume_fractions({"a": 1, "b": 1}, {"a": 1.0, "b": 3.0})
    2.0
    """
    v = normalise_parts(parts, name="volume parts")
    _check_keys(v, densities_g_cm3)
    rho = {k: _number(f"true density of {k!r} (g/cm³)", densities_g_cm3[k]) for k in v}
    return math.fsum(v[k] * rho[k] for k in v)


def xray_density_g_cm3(formula_weight_g_mol: float, cell_volume_a3: float, z: float) -> float:
    """Crystallographic (X-ray) density ``Z·M / (N_A·V)``.

    Parameters
    ----------
    formula_weight_g_mol : float
        Molar mass of one formula unit, g/mol.
    cell_volume_a3 : float
        Unit-cell volume, Å³.
    z : float
        Formula units per cell.

    Examples
    --------
    Cubic Li7La3Zr2O12 (a = 12.97 Å, Z = 8, M = 839.7 g/mol):

    >>> round(xray_density_g_cm3(839.74, 12.97 ** 3, 8), 2)
    5.11
    """
    m = _number("formula_weight_g_mol", formula_weight_g_mol)
    v = _number("cell_volume_a3", cell_volume_a3)
    n = _number("z", z)
    return n * m / (AVOGADRO * v * 1e-24)


# -- filling rate and porosity -----------------------------------------------


def filling_rate_pct(apparent_density_g_cm3: float, true_density_g_cm3: float) -> float:
    """Filling rate (%) = apparent density / true density × 100.

    Values above 100 are returned as computed (they flag a wrong mass,
    geometry or true density).

    Examples
    --------
    >>> round(filling_rate_pct(3.375, 4.70), 2)
    71.81
    """
    a = _number("apparent_density_g_cm3", apparent_density_g_cm3)
    t = _number("true_density_g_cm3", true_density_g_cm3)
    return a / t * 100.0


def porosity_from_filling_rate_pct(filling_rate_pct: float) -> float:
    """Porosity (%) = 100 − filling rate (%) (the patents' equation (2)).

    Examples
    --------
    >>> round(porosity_from_filling_rate_pct(71.80851), 2)
    28.19
    """
    f = _number("filling_rate_pct", filling_rate_pct)
    return 100.0 - f


def relative_density(apparent_density_g_cm3: float, true_density_g_cm3: float) -> float:
    """Relative density (a fraction) = apparent density / true density.

    Examples
    --------
    >>> relative_density(4.0, 5.0)
    0.8
    """
    a = _number("apparent_density_g_cm3", apparent_density_g_cm3)
    t = _number("true_density_g_cm3", true_density_g_cm3)
    return a / t


def rate_of_decrease_pct(porosity_before: float, porosity_after: float) -> float:
    """Rate of decrease in porosity (%) = (before − after) / before × 100.

    Parameters
    ----------
    porosity_before, porosity_after : float
        Porosity before and after a process step, both in the same unit
        (% or fraction: the rate does not depend on it).  ``before`` must
        be > 0, ``after`` >= 0.  A porosity that grew gives a negative rate.

    Examples
    --------
    The cathode layer of the patent's Example 1, 45 % → 2.0 %:

    >>> round(rate_of_decrease_pct(45.0, 2.0), 1)
    95.6
    """
    b = _number("porosity_before", porosity_before)
    a = _number("porosity_after", porosity_after, allow_zero=True)
    return (b - a) / b * 100.0
