"""Tests of poromet.density: hand-worked numbers, properties, errors."""

import math

import numpy as np
import pytest

from poromet import density as dn
from poromet.errors import DensityError, PorometError


# -- hand-worked numbers ---------------------------------------------------------


def test_coating_weight_example_from_brief():
    # 27 mg/cm² = 0.027 g/cm²; 80 µm = 0.008 cm -> 3.375 g/cm³
    rho = dn.density_from_coating_weight(27.0, 80.0)
    assert rho == pytest.approx(3.375, rel=1e-12)
    fr = dn.filling_rate_pct(rho, 4.70)
    assert fr == pytest.approx(71.8085, abs=1e-4)
    assert round(fr, 2) == 71.81
    assert dn.porosity_from_filling_rate_pct(fr) == pytest.approx(28.1915, abs=1e-4)
    assert dn.relative_density(rho, 4.70) == pytest.approx(fr / 100)


def test_mass_area_thickness_matches_coating_weight():
    # 54 mg over 2 cm² is 27 mg/cm²
    assert dn.density_from_area(54.0, 2.0, 80.0) == pytest.approx(3.375)
    assert dn.density_from_area(54.0, 2.0, 80.0) == pytest.approx(
        dn.density_from_coating_weight(54.0 / 2.0, 80.0))


def test_pellet_density_by_hand():
    # 10 mm pellet: area = pi * 0.5² cm² = 0.785398 cm²; 500 µm = 0.05 cm
    # volume 0.0392699 cm³; 0.1 g / 0.0392699 = 2.546479 g/cm³
    assert dn.density_from_pellet(100.0, 10.0, 500.0) == pytest.approx(2.546479, abs=1e-6)


def test_volume_density_by_hand():
    assert dn.density_from_volume(2500.0, 1.0) == pytest.approx(2.5)
    assert dn.density_from_volume(500.0, 0.25) == pytest.approx(2.0)


def test_mixture_by_hand():
    # equal masses of 2 and 4 g/cm³: 1/rho = 0.5/2 + 0.5/4 = 0.375
    assert dn.true_density_from_mass_fractions({"a": 50, "b": 50}, {"a": 2.0, "b": 4.0}) == \
        pytest.approx(1 / 0.375)
    # equal volumes: 3
    assert dn.true_density_from_volume_fractions({"a": 1, "b": 1}, {"a": 2.0, "b": 4.0}) == \
        pytest.approx(3.0)
    # the seed's cathode mixture with explicit densities
    parts = {"NCM622": 80, "SE": 17, "CB": 2, "SBR": 1}
    rho = {"NCM622": 4.77, "SE": 1.86, "CB": 1.9, "SBR": 0.94}
    expect = 1 / (0.80 / 4.77 + 0.17 / 1.86 + 0.02 / 1.9 + 0.01 / 0.94)
    assert dn.true_density_from_mass_fractions(parts, rho) == pytest.approx(expect, rel=1e-12)


def test_parts_are_normalised():
    a = dn.true_density_from_mass_fractions({"x": 80, "y": 20}, {"x": 5.0, "y": 2.0})
    b = dn.true_density_from_mass_fractions({"x": 0.8, "y": 0.2}, {"x": 5.0, "y": 2.0})
    assert a == pytest.approx(b, rel=1e-14)
    assert dn.normalise_parts({"a": 3, "b": 1}) == {"a": 0.75, "b": 0.25}


@pytest.mark.parametrize(
    "before, after, expected",
    [
        (45.0, 2.0, 95.56),   # seed Table 3, Example 1, cathode layer
        (40.0, 2.0, 95.00),   # Example 1, solid electrolyte layer
        (45.0, 9.0, 80.00),   # Comparative Example 3, cathode layer
        (40.0, 5.5, 86.25),   # Comparative Example 3, solid electrolyte layer
        (82.0, 54.0, 34.15),  # intermediate layer
    ],
)
def test_rate_of_decrease_from_table3(before, after, expected):
    assert dn.rate_of_decrease_pct(before, after) == pytest.approx(expected, abs=0.005)


def test_rate_of_decrease_unit_free_and_growth_negative():
    assert dn.rate_of_decrease_pct(0.45, 0.02) == pytest.approx(dn.rate_of_decrease_pct(45, 2))
    assert dn.rate_of_decrease_pct(10.0, 12.0) == pytest.approx(-20.0)
    assert dn.rate_of_decrease_pct(10.0, 0.0) == 100.0


def test_xray_density_ncm622():
    # R-3m, a = 2.868 Å, c = 14.21 Å, Z = 3, M = 96.93 g/mol: about 4.77 g/cm³
    v = math.sqrt(3) / 2 * 2.868 ** 2 * 14.21
    assert dn.xray_density_g_cm3(96.929, v, 3) == pytest.approx(4.770, abs=0.002)


# -- properties --------------------------------------------------------------------


def test_filling_rate_and_porosity_sum_to_100():
    rng = np.random.default_rng(1)
    for _ in range(200):
        app = float(rng.uniform(0.1, 8.0))
        true = float(rng.uniform(0.5, 9.0))
        fr = dn.filling_rate_pct(app, true)
        assert fr + dn.porosity_from_filling_rate_pct(fr) == pytest.approx(100.0, abs=1e-9)
        assert fr == pytest.approx(100 * dn.relative_density(app, true))


def test_mixture_between_components_and_bases_consistent():
    rng = np.random.default_rng(2)
    for _ in range(200):
        n = int(rng.integers(1, 6))
        names = [f"m{i}" for i in range(n)]
        rho = {k: float(rng.uniform(0.5, 10.0)) for k in names}
        parts = {k: float(rng.uniform(0.01, 100.0)) for k in names}
        by_mass = dn.true_density_from_mass_fractions(parts, rho)
        by_vol = dn.true_density_from_volume_fractions(parts, rho)
        lo, hi = min(rho.values()), max(rho.values())
        assert lo - 1e-9 <= by_mass <= hi + 1e-9
        assert lo - 1e-9 <= by_vol <= hi + 1e-9
        # harmonic mean <= arithmetic mean with the same weights
        assert by_mass <= by_vol + 1e-9
        # mass fractions converted to volume fractions give the same density
        w = dn.normalise_parts(parts)
        vol = {k: w[k] / rho[k] for k in names}
        assert dn.true_density_from_volume_fractions(vol, rho) == pytest.approx(by_mass, rel=1e-12)


def test_pure_material_is_its_own_density():
    assert dn.true_density_from_mass_fractions({"a": 3}, {"a": 2.5}) == pytest.approx(2.5)


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "3", None, True])
def test_bad_inputs_are_clear_errors(bad):
    with pytest.raises(DensityError, match=r"mass_mg: got"):
        dn.density_from_area(bad, 1.0, 80.0)
    with pytest.raises(DensityError, match=r"thickness_um: got"):
        dn.density_from_coating_weight(27.0, bad)
    with pytest.raises(DensityError, match=r"true_density_g_cm3: got"):
        dn.filling_rate_pct(3.0, bad)


def test_error_is_a_porometerror_and_says_what_is_allowed():
    with pytest.raises(PorometError, match=r"got -5.0; allowed: a number > 0"):
        dn.density_from_volume(-5.0, 1.0)


def test_rate_needs_positive_before_and_nonnegative_after():
    with pytest.raises(DensityError, match="porosity_before"):
        dn.rate_of_decrease_pct(0.0, 0.0)
    with pytest.raises(DensityError, match="porosity_after"):
        dn.rate_of_decrease_pct(10.0, -1.0)


def test_mixture_errors():
    with pytest.raises(DensityError, match="'c' not given"):
        dn.true_density_from_mass_fractions({"a": 1, "c": 1}, {"a": 2.0})
    with pytest.raises(DensityError, match="sum to 0"):
        dn.true_density_from_mass_fractions({"a": 0}, {"a": 2.0})
    with pytest.raises(DensityError, match=r"mass parts\['a'\]"):
        dn.true_density_from_mass_fractions({"a": -1, "b": 2}, {"a": 2.0, "b": 1.0})
    with pytest.raises(DensityError, match="true density of 'a'"):
        dn.true_density_from_volume_fractions({"a": 1}, {"a": 0.0})
    with pytest.raises(DensityError, match="at least one"):
        dn.normalise_parts({})


def test_filling_rate_above_100_is_returned_not_hidden():
    assert dn.filling_rate_pct(5.0, 4.0) == pytest.approx(125.0)
    assert dn.porosity_from_filling_rate_pct(125.0) == pytest.approx(-25.0)
